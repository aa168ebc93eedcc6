"""Real-browser harness: a tiny model in a temp home, a `streamlit run` server, headless Chromium.

Shared by the end-to-end tests (tests/e2e/) and the latency benchmark (bench/ui_latency.py); it has no
pytest dependency. Chromium is Debian's (`apt-get install chromium`), never a `playwright install` one.

Waiting, never sleeping: every helper waits on something the page says.
- Streamlit marks its root `[data-testid="stApp"]` with `data-test-script-state` (`running` /
  `notRunning` / ...) and `data-test-connection-state` (`CONNECTED`). An init script counts every run
  that ends (`window.__e2e.runsDone`), so "wait for the rerun this action caused" has no race between
  the action and the state flip.
- Images are followed by their `src`: Streamlit serves each new `st.image` under a new `/media/...` URL.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", ROOT / "artifacts" / "e2e"))
TINY_E2E = dict(epochs=1, limit=1000)

# Counts Streamlit runs as the page reports them (installed before any page script runs).
INIT_SCRIPT = """
(() => {
  const s = window.__e2e = {runsStarted: 0, runsDone: 0, state: null, lastDone: null};
  const ATTR = 'data-test-script-state';
  const seen = (v) => {
    if (v === s.state) return;
    if (v === 'running') s.runsStarted += 1;
    if (s.state === 'running' && v !== 'running') { s.runsDone += 1; s.lastDone = performance.now(); }
    s.state = v;
  };
  new MutationObserver((muts) => {
    for (const m of muts) if (m.target.getAttribute) seen(m.target.getAttribute(ATTR));
  }).observe(document, {subtree: true, attributes: true, attributeFilter: [ATTR]});
})();
"""

# Upper bounds only (every wait returns as soon as its condition holds): generous, because a shared
# 2-core machine under load can take minutes for a first run (TensorFlow import, model load, encoding).
WAIT_MS = 60_000
FIRST_RUN_MS = 240_000

APP_IDLE = (
    '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'
)


class HarnessError(RuntimeError):
    """The harness could not set up (no Chromium, server did not start...); the message says why."""


# ----------------------------------------------------------------------------- processes


def group_processes(pgid: int) -> list[tuple[int, str, str]]:
    """Live processes (not zombies) in process group or session `pgid`: [(pid, state, command line)].

    Reads /proc (Linux), so it needs no psutil."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses
            state, _ppid, pgrp, session = stat[stat.rindex(")") + 2 :].split()[:4]
            if state in ("Z", "X") or pgid not in (int(pgrp), int(session)):
                continue
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError):
            continue  # gone meanwhile
        out.append((int(d.name), state, cmd))
    return out


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


_RUNNING: set = set()  # servers started and not yet stopped: stopped at exit, so none is left behind


@atexit.register
def _stop_leftovers() -> None:
    for srv in list(_RUNNING):
        with contextlib.suppress(Exception):
            srv.stop()


# ----------------------------------------------------------------------------- model home


def prepare_home(
    home: Path,
    *,
    epochs: int = TINY_E2E["epochs"],
    limit: int = TINY_E2E["limit"],
    data_from: Path | None = None,
) -> Path:
    """Fill `home` (a LATENT_EXPLORER_HOME) with the MNIST cache and one tiny trained model.

    Trains in this process with `model.train.train` (1 epoch on `limit` images: a few seconds). If
    `data_from` is another home, its data cache is copied instead of converting MNIST again.
    """
    from model import paths
    from model.store import ModelStore
    from model.train import train
    from model.vae import VAEConfig

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    if data_from is not None and (Path(data_from) / "data").is_dir() and not (home / "data").exists():
        shutil.copytree(Path(data_from) / "data", home / "data")
    with paths.using_home(home):
        train(VAEConfig(epochs=epochs, limit=limit), store=ModelStore(), verbose=0)
    return home


# ----------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`streamlit run streamlit_app.py` on 127.0.0.1:<free port> with its own LATENT_EXPLORER_HOME.

    Use as a context manager, or call `start()` / `stop()`. `start()` on a running server does nothing
    (so `with StreamlitServer(...).start() as srv:` runs one server, not two). The server runs in its
    own process group, so `stop()` also ends anything it started (e.g. a training subprocess in the same
    group) and then checks that nothing of the group survived (SIGKILL for stragglers; HarnessError
    naming any process that outlived even that). A server still running when Python exits is stopped.
    Its output goes to `log_path`.
    """

    def __init__(
        self,
        home: Path,
        *,
        app: str | Path = "streamlit_app.py",
        port: int | None = None,
        log_path: Path | None = None,
        extra_env: dict | None = None,
    ):
        self.home, self.app, self.port = Path(home), Path(app), port or free_port()
        self.log_path = Path(log_path) if log_path else self.home / "streamlit.log"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.started_at = self.healthy_at = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(self.app),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(self.port),
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 120.0) -> StreamlitServer:
        if self.running:
            return self  # already started: a second start is a no-op (it leaked a server before)
        app = self.app if self.app.is_absolute() else ROOT / self.app
        if not app.is_file():
            raise HarnessError(f"Expected the app entry {app}; it does not exist.")
        env = {
            **os.environ,
            "LATENT_EXPLORER_HOME": str(self.home),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        _RUNNING.add(self)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise HarnessError(
                    f"streamlit exited with code {self.proc.returncode} before it was "
                    f"healthy. Its log ({self.log_path}):\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        self.healthy_at = time.perf_counter()
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise HarnessError(
                    f"streamlit was not healthy at {self.url}/_stcore/health after "
                    f"{timeout:.0f} s. Its log:\n{self.log_tail()}"
                )
            time.sleep(0.1)  # polling an HTTP endpoint: there is nothing to wait on

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 10.0) -> None:
        """End the server and its whole process group; raise HarnessError if any process survives."""
        if self.proc is None:
            return
        _RUNNING.discard(self)
        pgid = self.proc.pid  # start_new_session: the server leads its own group and session
        if self.proc.poll() is None:
            _kill_group(pgid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _kill_group(pgid, signal.SIGKILL)
                self.proc.wait(10)
        # The leader is gone; anything else of its group (a child ignoring SIGTERM, a grandchild) is not.
        deadline = time.monotonic() + min(grace, 3.0)
        while (left := group_processes(pgid)) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling /proc: a process ending has nothing to wait on from here
        if left:
            _kill_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while (left := group_processes(pgid)) and time.monotonic() < deadline:
                time.sleep(0.1)
        if left:
            raise HarnessError(
                f"After stopping streamlit (pid {pgid}) these processes of its group "
                f"survive even SIGKILL: {left}"
            )

    def __enter__(self):
        return self.start()  # a no-op if start() was called already

    def __exit__(self, *exc):
        self.stop()


# ----------------------------------------------------------------------------- browser


def launch_browser(playwright):
    """Headless Debian Chromium with the flags CI needs (no sandbox as root, no GPU, no phoning home)."""
    if not Path(CHROMIUM).exists():
        raise HarnessError(
            f"Chromium not found at {CHROMIUM}. Fix: sudo apt-get install chromium "
            "(or set E2E_CHROMIUM to its path; never `playwright install`). To run the "
            "other tests without a browser: pytest -m 'not browser'."
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def new_page(browser, viewport=(1400, 1000), init_scripts=()):
    """A page in a fresh context (a fresh Streamlit session) with the run counter installed and its
    console watched (`console_log(page)`)."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    for script in (INIT_SCRIPT, *init_scripts):
        context.add_init_script(script)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    watch_console(page)
    return page


# ----------------------------------------------------------------------------- console


class ConsoleLog:
    """What went wrong in a page (and its frames) as its console tells it: console errors, uncaught
    exceptions (`pageerror`), failed requests and HTTP error responses (a `/media/*.png` 404...).

    Filled by playwright's events, which arrive only while playwright waits on something: `problems()`
    lets pending events in first. `mark()` + `problems(since=...)` looks at one stretch of a walk."""

    def __init__(self):
        self.entries: list[str] = []

    def add(self, text: str) -> None:
        self.entries.append(text)

    def mark(self) -> int:
        return len(self.entries)

    def problems(self, page=None, since: int = 0, settle_ms: int = 300) -> list[str]:
        if page is not None and not page.is_closed():
            page.wait_for_timeout(settle_ms)  # let playwright deliver pending events
        return self.entries[since:]

    def assert_clean(self, page=None, since: int = 0, what: str = "the walk") -> None:
        problems = self.problems(page, since)
        assert not problems, f"{len(problems)} browser console problem(s) during {what}:\n" + "\n".join(
            problems[:20]
        )


_LOGS: dict = {}


def watch_console(page) -> ConsoleLog:
    """Start collecting `page`'s console errors, page errors, failed requests and HTTP >= 400 responses
    (idempotent; `new_page` does it for every page). Returns the page's `ConsoleLog`."""
    if id(page) in _LOGS and _LOGS[id(page)][0] is page:
        return _LOGS[id(page)][1]
    log = ConsoleLog()
    _LOGS[id(page)] = (page, log)

    def on_console(msg):
        if msg.type == "error":
            loc = msg.location or {}
            where = f" ({loc.get('url', '')}:{loc.get('lineNumber', '')})" if loc.get("url") else ""
            log.add(f"console error: {msg.text[:500]}{where}")

    def on_response(resp):
        if resp.status >= 400:
            log.add(f"HTTP {resp.status}: {resp.request.method} {resp.url}")

    def on_failed(req):
        log.add(f"request failed ({req.failure}): {req.method} {req.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: log.add(f"page error: {e}"))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("close", lambda _p: _LOGS.pop(id(page), None))
    return log


def console_log(page) -> ConsoleLog:
    """The `ConsoleLog` of a page made by `new_page` (or passed to `watch_console`)."""
    entry = _LOGS.get(id(page))
    if entry is None or entry[0] is not page:
        raise HarnessError(
            "This page's console is not watched. Fix: create it with new_page() or call "
            "watch_console(page) before opening the app."
        )
    return entry[1]


def open_app(page, url: str, timeout: float = FIRST_RUN_MS) -> None:
    """Load the app and wait until its first run has finished and nothing is stale."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("window.__e2e && window.__e2e.runsDone >= 1", timeout=timeout)
    wait_idle(page, timeout)


def wait_idle(page, timeout: float = WAIT_MS) -> None:
    """Wait until Streamlit is connected, no script run is going, and no element is stale."""
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout)
    page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')", timeout=timeout)


def runs_done(page) -> int:
    return page.evaluate("window.__e2e.runsDone")


def wait_runs(page, after: int, timeout: float = WAIT_MS) -> None:
    """Wait for a run that ends after the counter read `after`, then for the page to be idle."""
    page.wait_for_function(f"window.__e2e.runsDone > {after}", timeout=timeout)
    wait_idle(page, timeout)


# ----------------------------------------------------------------------------- websocket


def is_auto_rerun(payload) -> bool:
    """True for a frame the page sends on a timer (a `st.fragment(run_every=...)` rerun), not for a user's
    action. `payload` is what playwright's `framesent` event gives (bytes; str for a text frame)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    if isinstance(payload, str):
        return False
    msg = BackMsg()
    try:
        msg.ParseFromString(bytes(payload))
    except Exception:  # not a BackMsg: count it as the user's
        return False
    return msg.WhichOneof("type") == "rerun_script" and msg.rerun_script.is_auto_rerun


# ----------------------------------------------------------------------------- images


def image_srcs(scope) -> list[str]:
    """The `src` of every `st.image` in `scope` (a page or a locator), in page order."""
    return scope.locator('[data-testid="stImage"] img').evaluate_all("els => els.map(e => e.src)")


def wait_image_loaded(img, timeout: float = WAIT_MS) -> None:
    """Wait until an <img> locator has a decoded, non-empty image."""
    img.wait_for(state="visible", timeout=timeout)
    img.evaluate(
        "e => e.complete && e.naturalWidth > 0 ? true : "
        "new Promise((ok, err) => { e.addEventListener('load', () => ok(true), {once: true});"
        " e.addEventListener('error', () => err(new Error('image failed: ' + e.src)), {once: true}); })"
    )


def fetch_image(page, src: str):
    """Download an image the page shows and return it as a numpy array (H, W) or (H, W, C) uint8."""
    import numpy as np
    from PIL import Image

    if src.startswith("data:"):
        import base64

        raw = base64.b64decode(src.split(",", 1)[1])
    else:
        resp = page.request.get(src)
        if not resp.ok:
            raise HarnessError(f"GET {src} gave HTTP {resp.status}")
        raw = resp.body()
    return np.asarray(Image.open(io.BytesIO(raw)))


def server_z(page):
    """The z of the server's last run, as the address bar says (`?z=...`, written by every run), (d,)."""
    import numpy as np

    z = page.evaluate("() => new URL(location.href).searchParams.get('z')")
    if not z:
        raise HarnessError(f"No z in the page's address: {page.url}")
    return np.array([float(v) for v in z.split(",")], np.float32)


def downloaded_image(page, label: str, timeout: float = WAIT_MS):
    """Press the download button labelled `label` and return the image it saves, as a numpy array."""
    import numpy as np
    from PIL import Image

    with page.expect_download(timeout=timeout) as info:
        page.get_by_role("button", name=label, exact=True).click()
    return np.asarray(Image.open(info.value.path()))


def to_grey28(img):
    """An upscaled (nearest-neighbour) digit image -> (28, 28) float in [0, 1], sampled at cell centres."""
    import numpy as np

    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=-1) if a.shape[-1] >= 3 else a[..., 0]
    h, w = a.shape
    rows = ((np.arange(28) + 0.5) * h / 28).astype(int)
    cols = ((np.arange(28) + 0.5) * w / 28).astype(int)
    return a[np.ix_(rows, cols)] / 255.0


# ----------------------------------------------------------------------------- Plotly scatter

# Every visible point of the scattergl traces in the chart, in page pixels (viewport coordinates).
PLOT_POINTS_JS = """
(root) => {
  const gd = root.querySelector('.js-plotly-plot');
  if (!gd || !gd._fullLayout) return null;
  const L = gd._fullLayout, box = gd.getBoundingClientRect(), out = [];
  gd._fullData.forEach((t, ti) => {
    if (!t.type || !t.type.startsWith('scatter') || t.visible !== true || !t.x) return;
    const xa = L[(t.xaxis || 'x').replace('x', 'xaxis')], ya = L[(t.yaxis || 'y').replace('y', 'yaxis')];
    const n = Math.min(t.x.length, t.y.length);
    for (let i = 0; i < n; i++) {
      const px = box.left + xa._offset + xa.l2p(t.x[i]), py = box.top + ya._offset + ya.l2p(t.y[i]);
      let cd = t.customdata ? t.customdata[i] : null;
      if (cd && typeof cd === 'object') cd = Array.from(cd);  // a typed-array row of a 2-D customdata
      out.push([ti, i, px, py, cd === undefined ? null : cd, n]);
    }
  });
  const xa = L.xaxis, ya = L.yaxis;
  return {points: out, plot: [box.left + xa._offset, box.top + ya._offset, xa._length, ya._length],
          traces: gd._fullData.map(t => ({type: t.type, n: t.x ? t.x.length : 0, name: t.name || null,
                                          mode: t.mode || null}))};
}
"""


def scatter_points(chart):
    """(points, plot_box, traces) of a Plotly chart locator.

    points = [trace, index, px, py, customdata, n]."""
    info = chart.evaluate(PLOT_POINTS_JS)
    if info is None:
        raise HarnessError("The Plotly chart has no rendered plot (no .js-plotly-plot with a layout).")
    return info["points"], info["plot"], info["traces"]


def isolated_point(
    points,
    plot_box,
    *,
    min_trace_points: int = 100,
    margin: float = 12.0,
    rng_seed: int = 0,
    candidates: int = 400,
):
    """A point of the big scatter whose nearest neighbour (any trace) is farthest away, in pixels.

    Clicking its pixel picks it and nothing else. Only traces with at least `min_trace_points` points
    count as the data (the slider marker and other overlays are single points).
    """
    import numpy as np

    pts = np.array([[p[2], p[3]] for p in points], dtype=np.float64)
    big = np.array([p[5] >= min_trace_points for p in points])
    x0, y0, w, h = plot_box
    inside = (
        (pts[:, 0] > x0 + margin)
        & (pts[:, 0] < x0 + w - margin)
        & (pts[:, 1] > y0 + margin)
        & (pts[:, 1] < y0 + h - margin)
    )
    idx = np.flatnonzero(big & inside)
    if idx.size == 0:
        raise HarnessError("No scatter point lies inside the plot area.")
    rng = np.random.default_rng(rng_seed)
    cand = rng.choice(idx, size=min(candidates, idx.size), replace=False)
    d = np.linalg.norm(pts[cand, None, :] - pts[None, :, :], axis=-1)
    d[np.arange(len(cand)), cand] = np.inf
    # Duplicate coordinates of the very same point (e.g. a marker on it) still make it ambiguous.
    best = int(cand[np.argmax(d.min(axis=1))])
    return points[best], float(d.min(axis=1).max())


def dump_debug(page, name: str, server: StreamlitServer | None = None) -> list[Path]:
    """Save a full-page screenshot (and the server log) under ARTIFACTS; returns the paths written."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]
    out = []
    with contextlib.suppress(Exception):
        p = ARTIFACTS / f"{safe}.png"
        page.screenshot(path=str(p), full_page=True, timeout=10_000)
        out.append(p)
    with contextlib.suppress(Exception):
        p = ARTIFACTS / f"{safe}.html"
        p.write_text(page.content())
        out.append(p)
    if server is not None:
        with contextlib.suppress(Exception):
            p = ARTIFACTS / f"{safe}.server.log"
            shutil.copyfile(server.log_path, p)
            out.append(p)
    return out
