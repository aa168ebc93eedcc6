"""How the test-set scatter copes with more points, in headless Chromium (a benchmark, not a test).

    python bench/scatter_scale.py                         # 10k (MNIST test), 70k (+ train), 200k (user .npz)
    python bench/scatter_scale.py --sizes 10k 70k --clicks 6 --json scale.json

For each size, one fresh `streamlit run` server and one browser page:
  load      page opened -> the scatter drawn with every point (Plotly's data holds all N)
  ws_load   bytes the server sent over the websocket for that load (Chrome DevTools Protocol frames)
  click     mouse press on a scatter point -> the pick's reconstruction painted (p50/p95), and the
            websocket bytes of one click's reruns
  box       a box selection over the middle of the plot: mouse release -> the run it causes is over and
            the page idle (p50 over --boxes drags), with the number of points selected
The 200k case is a user .npz (MNIST's 70,000 images, shifted by a pixel or two, to 200,000 test images)
with a tiny model trained on it. The machine's load is printed beside the figures: compare sizes within
one run, never absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["LATENT_EXPLORER_BUNDLE"] = "0"

from browser_harness import (  # noqa: E402
    StreamlitServer,
    launch_browser,
    new_page,
    prepare_home,
    runs_done,
    scatter_points,
    wait_idle,
    wait_runs,
)
from ui_latency import PROBE_JS, RECON_CAPTION, load, samples, summary, wait_sample  # noqa: E402

from explorer.scatter import OVERVIEW_POINTS  # noqa: E402

SIZES = {"10k": 10_000, "70k": 70_000, "200k": 200_000, "200k-points": 200_000}
# 200k-points: the same 200,000 as WebGL points (the overview threshold raised past them)
EXTRA_ENV = {"200k-points": {"LATENT_EXPLORER_SCATTER_POINTS": "1000000"}}
CHART = '[data-testid="stPlotlyChart"]'


def _npz_200k(path: Path, data_home: Path) -> Path:
    """A user .npz whose test split is 200,000 images: MNIST's 70,000, shifted by up to 2 px."""
    from model.data import load_dataset
    from model.paths import using_home

    with using_home(data_home):
        d = load_dataset("mnist")
    x = np.concatenate([d.x_test, d.x_train])
    y = np.concatenate([d.y_test, d.y_train])
    rng = np.random.default_rng(0)
    reps = -(-200_000 // len(x))
    xs, ys = [], []
    for k in range(reps):
        shift = (0, 0) if k == 0 else tuple(int(v) for v in rng.integers(-2, 3, 2))
        xs.append(np.roll(x, shift, axis=(1, 2)))
        ys.append(y)
    np.savez(
        path,
        x_train=d.x_train[:2000],
        y_train=d.y_train[:2000],
        x_test=np.concatenate(xs)[:200_000],
        y_test=np.concatenate(ys)[:200_000],
    )
    return path


def _home_200k(tmp: Path, data_home: Path) -> Path:
    home = tmp / "home200k"
    home.mkdir()
    npz = _npz_200k(tmp / "mnist200k.npz", data_home)
    env = {**os.environ, "LATENT_EXPLORER_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "model.train", "--npz", str(npz), "--epochs", "1", "--limit", "1000"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return home


class Frames:
    """Bytes the server sent to the page over its websocket (Chrome DevTools Protocol)."""

    def __init__(self, page):
        self.received = 0
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.webSocketFrameReceived", self._on)

    def _on(self, event):
        r = event["response"]
        data = r.get("payloadData", "")
        self.received += len(base64.b64decode(data)) if r.get("opcode") == 2 else len(data.encode())


def _count_points(page) -> int:
    return page.evaluate(
        f"() => {{ const g = document.querySelector('{CHART} .js-plotly-plot');"
        " if (!g || !g._fullData) return 0;"
        " return g._fullData.filter(t => t.customdata).reduce((a, t) => a + (t.x ? t.x.length : 0), 0); }"
    )


def _show_training_images(page) -> None:
    section = page.locator('[data-testid="stExpander"]').filter(has_text="Colour, filter and find")
    section.locator("summary").first.click()
    n = runs_done(page)
    section.get_by_text("Training images too").click()
    wait_runs(page, n, timeout=600_000)


def _clicks(page, n_clicks: int, frames: Frames, timeout_ms: float = 60_000) -> dict:
    chart = page.locator(CHART).filter(has=page.locator(".gl-container")).first
    chart.scroll_into_view_if_needed()
    points, _, _ = scatter_points(chart)
    rng = np.random.default_rng(0)
    lat, sent, missed = [], [], 0
    for _ in range(n_clicks):
        p = points[int(rng.integers(len(points)))]
        page.mouse.move(p[2], p[3])
        page.wait_for_timeout(300)
        n, before = len(samples(page, RECON_CAPTION)), frames.received
        page.mouse.down()
        page.mouse.up()
        s = wait_sample(page, RECON_CAPTION, n + 1, timeout_ms)
        wait_idle(page, timeout=timeout_ms)
        if s is None or s["down"] is None:
            missed += 1
            continue
        lat.append(s["painted"] - s["down"])
        sent.append(frames.received - before)
    return {"latency_ms": summary(lat), "ws_bytes_per_click": summary(sent, 0), "missed": missed}


def _boxes(page, n_boxes: int, timeout_ms: float = 120_000) -> dict:
    chart = page.locator(CHART).filter(has=page.locator(".gl-container")).first
    chart.hover()
    chart.locator('[data-attr="dragmode"][data-val="select"]').first.click()
    _, plot, _ = scatter_points(chart)
    x0, y0, w, h = plot
    times, counts = [], []
    for i in range(n_boxes):
        f = 0.25 + 0.05 * i
        page.mouse.move(x0 + w * f, y0 + h * f)
        page.mouse.down()
        page.mouse.move(x0 + w * (1 - f), y0 + h * (1 - f), steps=8)
        n = runs_done(page)
        t = time.perf_counter()
        page.mouse.up()
        wait_runs(page, n, timeout=timeout_ms)
        times.append(1000 * (time.perf_counter() - t))
        counts.append(
            page.evaluate(
                "() => { const t = document.body.innerText.match(/Selection: ([\\d,]+) test image/);"
                " return t ? Number(t[1].replace(/,/g, '')) : null; }"
            )
        )
    return {"latency_ms": summary(times), "selected": counts}


def measure(browser, home: Path, size: str, args) -> dict:
    srv = StreamlitServer(
        home, log_path=home.parent / f"{size}.streamlit.log", extra_env=EXTRA_ENV.get(size)
    ).start(timeout=300)
    try:
        page = new_page(browser, init_scripts=[PROBE_JS])
        frames = Frames(page)
        t = time.perf_counter()
        page.goto(srv.url)
        want = min(SIZES[size], OVERVIEW_POINTS if size == "200k" else SIZES[size])  # drawn as points
        if size == "70k":
            page.wait_for_selector(f"{CHART} .js-plotly-plot", timeout=600_000)
            wait_idle(page, timeout=600_000)
            _show_training_images(page)
        page.wait_for_function(
            f"() => {{ const g = document.querySelector('{CHART} .js-plotly-plot');"
            " return g && g._fullData &&"
            f" g._fullData.filter(t => t.customdata).reduce((a, t) => a + t.x.length, 0) >= {want}; }}",
            timeout=900_000,
        )
        wait_idle(page, timeout=600_000)
        out = {
            "points_drawn": _count_points(page),
            "load_s": round(time.perf_counter() - t, 1),
            "ws_load_MB": round(frames.received / 1e6, 2),
        }
        out["click"] = _clicks(page, args.clicks, frames)
        out["box"] = _boxes(page, args.boxes)
        page.context.close()
        return out
    finally:
        srv.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    ap.add_argument("--clicks", type=int, default=8)
    ap.add_argument("--boxes", type=int, default=3)
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--work", help="keep the homes and the 200k .npz here (reused when present)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    results = {"load_before": load()}
    with tempfile.TemporaryDirectory(prefix="scatter-scale-") as tmp_s, sync_playwright() as pw:
        tmp = Path(args.work or tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        mnist_home = tmp / "home" if (tmp / "home" / "models").is_dir() else prepare_home(tmp / "home")
        browser = launch_browser(pw)
        for size in args.sizes:
            big = size.startswith("200k")
            if big and not (tmp / "home200k" / "models").is_dir():
                _home_200k(tmp, mnist_home)
            home = tmp / "home200k" if big else mnist_home
            print(f"[{size}] measuring…", flush=True)
            results[size] = measure(browser, home, size, args)
            print(json.dumps({size: results[size]}), flush=True)
        browser.close()
    results["load_after"] = load()
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
