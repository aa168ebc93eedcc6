"""UI latency of the explorer as a user feels it, measured in headless Chromium (not a test).

    python bench/ui_latency.py                      # temp home with a quick model, 40 slider moves
    python bench/ui_latency.py --home ~/.cache/latent-explorer --moves 60 --json latency.json

Three figures, each from the browser's own clock (`performance.now()` in the page):
  slider   arrow key pressed on the focused z[0] slider -> the new decoded digit painted
           (its <img> src changed, the image decoded, and the frame after it rendered)
  click    mouse pressed on a point of the test-set scatter -> that point's reconstruction painted by the
           server's pick panel; with the pick preview (explorer/components/pick_preview, on by default)
           also mouse pressed -> the pick's original and reconstruction painted by the preview, and
  hover    pointer moved onto a point -> the preview shows that point's images (painted)
  start    `streamlit run` launched -> page interactive: first run over, digit painted, sliders there
           (a fresh server each time, the model already trained and on disk)
  pad      the latent pad (in-browser TensorFlow.js decoder): drag the 2-D pad and the z[0]
           range input with the mouse held down; decoded frames per second, pointer event -> digit
           painted (the pad's own clock: pointer handler -> after drawImage, and -> the next frame),
           websocket frames the page sent during the drag (expect 0) and on release, bytes the server
           sent for the release's rerun, and release -> the server's caption/digit updated
  first paint  page load -> the pad's first decoded digit, next to page load -> the server's digit
`--compare` measures clicks and hovers on two servers in one run: the preview turned off
(LATENT_EXPLORER_PICK_PREVIEW=0: the server-side pick only, as before) and on.
Goals: slider p50 <= 150 ms, click <= 300 ms (p95 <= 600 ms), hover <= 50 ms, start <= 8 s; pad >= 30 fps,
pointer -> painted p50 <= 16 ms, p95 <= 33 ms, 0 frames sent while dragging, first paint <= 1 s extra.

The machine's load (`uptime`) is printed with the figures: on a shared 2-core machine other work
inflates every number. Uses the same harness as the browser tests (tests/e2e/browser_harness.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from browser_harness import (  # noqa: E402
    StreamlitServer,
    is_auto_rerun,
    isolated_point,
    launch_browser,
    new_page,
    open_app,
    scatter_points,
    wait_idle,
)

DIGIT_CAPTION = "decoder(z) for the slider values"
RECON_CAPTION = "reconstruction"
GOALS = {
    "slider_p50_ms": 150.0,
    "click_p50_ms": 300.0,
    "click_p95_ms": 600.0,
    "hover_p50_ms": 50.0,
    "start_s": 8.0,
}
PREVIEW_ENV = "LATENT_EXPLORER_PICK_PREVIEW"

# Page-side probe: for each watched image (by exact caption) record when its src changes, when the new
# image is decoded and when the frame showing it has been rendered; and the last key/mouse press.
PROBE_JS = """
(() => {
  const P = window.__lat = {key: null, down: null, seen: {}, samples: {}, long: []};
  try {  // main-thread tasks over 50 ms (Plotly redraws, React renders...)
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) P.long.push([e.startTime, e.duration]);
    })
      .observe({type: 'longtask', buffered: true});
  } catch (e) { /* no longtask support */ }
  document.addEventListener('keydown', () => { P.key = performance.now(); }, true);
  document.addEventListener('mousedown', () => { P.down = performance.now(); }, true);
  document.addEventListener('mousemove', () => { P.move = performance.now(); }, true);
  const imgFor = (caption) => {
    for (const fig of document.querySelectorAll('[data-testid="stImage"]')) {
      const cap = fig.querySelector('[data-testid="stImageCaption"]');
      if (cap && cap.innerText.trim() === caption) return fig.querySelector('img');
    }
    return null;
  };
  const check = () => {
    for (const caption of ['%s', '%s']) {
      const img = imgFor(caption);
      if (!img || !img.src || img.src === P.seen[caption]) continue;
      P.seen[caption] = img.src;
      const s = {src: img.src, changed: performance.now(), key: P.key, down: P.down};
      (P.samples[caption] = P.samples[caption] || []).push(s);
      img.decode().catch(() => null).then(() => {
        s.decoded = performance.now();
        requestAnimationFrame(() => setTimeout(() => {
          const r = performance.getEntriesByName(img.src).pop();
          if (r) {
            s.fetchStart = r.startTime; s.responseStart = r.responseStart; s.responseEnd = r.responseEnd;
          }
          s.runEnd = window.__e2e ? window.__e2e.lastDone : null;
          s.painted = performance.now();
        }, 0));
      });
    }
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true,
                                                 attributeFilter: ['src']});
})();
""" % (DIGIT_CAPTION, RECON_CAPTION)


def load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load averages: " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def pct(values, q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(values, digits: int = 1) -> dict:
    def r(v):
        return None if v is None else round(v, digits)

    return {
        "n": len(values),
        "p50": r(pct(values, 0.5)),
        "p95": r(pct(values, 0.95)),
        "min": r(min(values)) if values else None,
        "max": r(max(values)) if values else None,
        "mean": r(statistics.fmean(values)) if values else None,
    }


def samples(page, caption: str) -> list[dict]:
    return page.evaluate(f"(window.__lat.samples[{json.dumps(caption)}] || []).map(s => ({{...s}}))")


def wait_sample(page, caption: str, count: int, timeout: float) -> dict | None:
    """Wait for the `count`-th src change of the captioned image to be painted; None on timeout."""
    try:
        page.wait_for_function(
            "([c, n]) => { const s = window.__lat.samples[c];"
            " return s && s.length >= n && s[n - 1].painted; }",
            arg=[caption, count],
            timeout=timeout,
        )
    except Exception:  # playwright TimeoutError: the image did not change
        return None
    return samples(page, caption)[count - 1]


# ----------------------------------------------------------------------------- measurements


def busy_ms(page, t0: float, t1: float) -> float:
    """Milliseconds of browser main-thread long tasks overlapping [t0, t1] (page clock)."""
    return page.evaluate(
        "([a, b]) => window.__lat.long.reduce((acc, [s, d]) =>"
        " acc + Math.max(0, Math.min(b, s + d) - Math.max(a, s)), 0)",
        [t0, t1],
    )


PAD_FRAME = "latent_pad/index.html"
PAD_READY_JS = (
    "() => [...document.querySelectorAll('iframe')].some(f => { try {"
    " return f.contentWindow.latentPad && f.contentWindow.latentPad.ready; } catch (e) { return false; } })"
)


def pad_frame(page):
    page.wait_for_function(PAD_READY_JS, timeout=120_000)
    return next(f for f in page.frames if PAD_FRAME in f.url)


def slider_moves(page, moves: int, timeout_ms: float = 15_000) -> dict:
    """Arrow keys on the focused z[0] slider: right for half the moves, then back left. Each press commits
    (the server reruns and sends its digit): the release path. With the pad, the slider is in its frame."""
    frame = pad_frame(page) if page.query_selector(f'iframe[src*="{PAD_FRAME}"]') else None
    thumb = (
        page.frame_locator(f'iframe[src*="{PAD_FRAME}"]').locator('input[aria-label="z[0]"]')
        if frame
        else page.locator('[data-testid="stSlider"] input[type="range"][aria-label="z[0]"]')
    )
    thumb.focus()
    lat, server_ms, missed, roundtrip, paint, busy = [], [], 0, [], [], []
    for i in range(moves):
        n = len(samples(page, DIGIT_CAPTION))
        if frame is not None:  # key events in the frame do not reach the page's listener
            page.evaluate("() => { window.__lat.key = performance.now(); }")
        page.keyboard.press("ArrowRight" if i < moves // 2 else "ArrowLeft")
        s = wait_sample(page, DIGIT_CAPTION, n + 1, timeout_ms)
        wait_idle(page)
        if s is None or s["key"] is None:
            missed += 1
            continue
        lat.append(s["painted"] - s["key"])
        roundtrip.append(s["changed"] - s["key"])
        paint.append(s["painted"] - s["changed"])
        busy.append(busy_ms(page, s["key"], s["painted"]))
        caption = page.get_by_text(re.compile(r"^decoded in [\d.]+ ms")).first
        m = re.search(r"decoded in ([\d.]+) ms", caption.inner_text()) if caption.count() else None
        if m:
            server_ms.append(float(m.group(1)))
    return {
        "latency_ms": summary(lat),
        "server_decode_ms": summary(server_ms),
        "key_to_new_src_ms": summary(roundtrip),
        "new_src_to_painted_ms": summary(paint),
        "browser_busy_ms": summary(busy),
        "missed": missed,
        "raw_ms": [round(v, 1) for v in lat],
    }


def pad_drag(page, target: str, moves: int, sent: list, received: list, end: float = 0.25) -> dict:
    """Press on the pad (or a range input), move the mouse `moves` times as fast as the browser takes the
    events, release. Figures from the pad's own counters (`window.latentPad.stats`, its frame's clock)."""
    frame = pad_frame(page)
    box = page.frame_locator(f'iframe[src*="{PAD_FRAME}"]').locator(target).bounding_box()
    y_mid = box["y"] + box["height"] / 2
    path = (
        [
            (
                box["x"] + box["width"] * (0.2 + 0.6 * k / moves),  # `end`: drags must end apart, or the
                box["y"] + box["height"] * (0.5 + 0.3 * np.sin(6.28 * k / moves) - end * k / moves),
            )  # z is the same
            for k in range(moves + 1)
        ]
        if target == "#pad"
        else [(box["x"] + box["width"] * (0.1 + 0.8 * k / moves), y_mid) for k in range(moves + 1)]
    )
    page.mouse.move(*path[0])
    frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    n0 = frame.evaluate(
        "() => { const s = window.latentPad.stats; return [s.decodes, s.latency.length, s.decodeMs.length]; }"
    )
    sent0 = len(sent)
    page.mouse.down()
    t0 = frame.evaluate("() => performance.now()")
    for x, y in path[1:]:
        page.mouse.move(x, y)
    frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    t1 = frame.evaluate("() => performance.now()")
    page.wait_for_timeout(300)  # playwright delivers websocket events only while it waits
    sent_during = len(sent) - sent0
    st = frame.evaluate(
        f"() => {{ const s = window.latentPad.stats; return {{decodes: s.decodes - {n0[0]},"
        f" latency: s.latency.slice({n0[1]}), decodeMs: s.decodeMs.slice({n0[2]}),"
        f" backend: window.latentPad.backend}}; }}"
    )
    rec0 = len(received)
    n_img = len(samples(page, DIGIT_CAPTION))
    up = page.evaluate("() => { window.__lat.down = performance.now(); return window.__lat.down; }")
    page.mouse.up()
    s = wait_sample(page, DIGIT_CAPTION, n_img + 1, 30_000)
    wait_idle(page)
    page.wait_for_timeout(300)
    handler_to_drawn = [d - a for a, d, _ in st["latency"]]
    handler_to_frame = [f - a for a, _, f in st["latency"]]
    return {
        "backend": st["backend"],
        "moves": moves,
        "drag_ms": round(t1 - t0, 1),
        "decoded_frames": st["decodes"],
        "fps": round(1000 * st["decodes"] / max(t1 - t0, 1e-9), 1),
        "pointer_to_drawn_ms": summary(handler_to_drawn),
        "pointer_to_next_frame_ms": summary(handler_to_frame),
        "decode_ms": summary(st["decodeMs"]),
        "ws_frames_sent_during_drag": sent_during,
        "ws_frames_sent_on_release": len(sent) - sent0 - sent_during,
        "release_rerun_bytes_received": sum(received[rec0:]),
        "release_to_server_digit_ms": None if s is None else round(s["painted"] - up, 1),
    }


PAD_STREAM_JS = """
async ([ms, hz]) => {  // a pointer held down on the pad, moving at `hz` events per second for `ms`
  const pad = document.getElementById('pad'), r = pad.getBoundingClientRect(), s = window.latentPad.stats;
  const ev = (type, k) => pad.dispatchEvent(new PointerEvent(type, {bubbles: true, pointerId: 1,
    pointerType: 'mouse', button: 0, buttons: type === 'pointerup' ? 0 : 1,
    clientX: r.left + r.width * (0.2 + 0.6 * ((k * 0.013) % 1)),
    clientY: r.top + r.height * (0.3 + 0.4 * Math.abs(Math.sin(k * 0.05)))}));
  const d0 = s.decodes, l0 = s.latency.length;
  ev('pointerdown', 0);
  const t0 = performance.now();
  let k = 0;
  await new Promise((done) => { const id = setInterval(() => {
    ev('pointermove', ++k);
    if (performance.now() - t0 >= ms) { clearInterval(id); done(); } }, 1000 / hz); });
  await new Promise((r2) => requestAnimationFrame(() => requestAnimationFrame(r2)));
  const t1 = performance.now();
  const lat = s.latency.slice(l0);
  ev('pointerup', k);
  return {events: k, decodes: s.decodes - d0, ms: t1 - t0, drawn: lat.map(([a, d]) => d - a),
          frame: lat.map(([a, , f]) => f - a)};
}
"""


def pad_stream(page, ms: float = 3000, hz: float = 250) -> dict:
    """Capacity: pointer events dispatched in the pad's frame at `hz` (a fast mouse) while held down; how many
    distinct frames the pad decodes and paints per second (it decodes the latest z once per frame)."""
    frame = pad_frame(page)
    r = frame.evaluate(PAD_STREAM_JS, [ms, hz])
    wait_idle(page)
    return {
        "events_per_s": round(1000 * r["events"] / r["ms"], 1),
        "decoded_frames": r["decodes"],
        "fps": round(1000 * r["decodes"] / r["ms"], 1),
        "pointer_to_drawn_ms": summary(r["drawn"]),
        "pointer_to_next_frame_ms": summary(r["frame"]),
    }


def first_paint(browser, url: str) -> dict:
    """Page load (navigation start) -> the server's digit painted, and -> the pad's first digit drawn."""
    page = new_page(browser, init_scripts=(PROBE_JS,))
    try:
        open_app(page, url, timeout=120_000)
        s = wait_sample(page, DIGIT_CAPTION, 1, 60_000)
        frame = pad_frame(page)
        frame.wait_for_function("() => window.latentPad.stats.drawnAt.length > 0")
        # both clocks to epoch milliseconds
        pad_ms = frame.evaluate("() => performance.timeOrigin + window.latentPad.stats.drawnAt[0]")
        origin = page.evaluate("() => performance.timeOrigin")
        return {
            "server_digit_ms": round(s["painted"], 1) if s else None,
            "pad_digit_ms": round(pad_ms - origin, 1),
            "pad_build_ms": frame.evaluate("() => window.latentPad.stats.buildMs || null"),
        }
    finally:
        page.context.close()


def preview_samples(page, kind: str) -> list[dict]:
    """The pick preview's own timing samples ("hover" or "click"): {row, t0, drawn, painted}."""
    return page.evaluate(
        "(k) => (window.__latentPick ? window.__latentPick.stats[k] : []).map(s => ({...s}))", kind
    )


def wait_preview(page, kind: str, count: int, timeout: float) -> dict | None:
    """Wait for the `count`-th preview sample of `kind` to be painted; None on timeout."""
    try:
        page.wait_for_function(
            "([k, n]) => { const s = window.__latentPick && window.__latentPick.stats[k];"
            " return s && s.length >= n && s[n - 1].painted; }",
            arg=[kind, count],
            timeout=timeout,
        )
    except Exception:  # playwright TimeoutError
        return None
    return preview_samples(page, kind)[count - 1]


def preview_ready(page, timeout: float = 60_000) -> bool:
    """Whether the page has the pick preview, attached to the scatter with its sprites (waits for them)."""
    if not page.evaluate("() => !!document.querySelector('.pick-preview') || !!window.__latentPick"):
        page.wait_for_timeout(1000)  # the component mounts after the chart
    if not page.evaluate("() => !!window.__latentPick"):
        return False
    page.wait_for_function(
        "() => window.__latentPick.ready.size > 0 && window.__latentPick.stats.attached > 0", timeout=timeout
    )
    return True


def clicks(page, n_clicks: int, timeout_ms: float = 15_000) -> dict:
    """Hover then click isolated scatter points; time mouse press -> reconstruction painted (the server's
    pick panel) and, with the pick preview, pointer on the point -> preview painted and mouse press ->
    the pick painted by the preview."""
    chart = page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".gl-container")).first
    chart.scroll_into_view_if_needed()
    preview = preview_ready(page)
    lat, missed, last_row, errors, busy = [], 0, None, [], []
    hover, pick, pick_busy = [], [], []
    for i in range(n_clicks):
        points, box, _ = scatter_points(chart)
        target, _gap = isolated_point(points, box, rng_seed=i)
        page.mouse.move(box[0] + 2, box[1] - 20)  # off the plot (its top margin): no point under the pointer
        page.wait_for_timeout(150)
        nh = len(preview_samples(page, "hover")) if preview else 0
        page.mouse.move(target[2], target[3])
        if preview:
            h = wait_preview(page, "hover", nh + 1, 5_000)
            t_move = page.evaluate("window.__lat.move")
            if h is not None and t_move is not None:
                hover.append(h["painted"] - t_move)
        hover_label = page.locator(".hoverlayer .hovertext").first
        try:
            hover_label.wait_for(state="visible", timeout=5_000)
            row = re.search(r"#(\d+)", hover_label.text_content() or "")
        except Exception:
            row = None
        if row is not None and row.group(1) == last_row:  # same point as the last pick: no change
            continue
        n = len(samples(page, RECON_CAPTION))
        nc = len(preview_samples(page, "click")) if preview else 0
        page.mouse.down()
        page.mouse.up()
        if preview:
            c = wait_preview(page, "click", nc + 1, timeout_ms)
            down = page.evaluate("window.__lat.down")
            if c is not None and down is not None:
                pick.append(c["painted"] - down)
                pick_busy.append(busy_ms(page, down, c["painted"]))
            else:
                errors.append(f"click {i}: the preview painted no pick")
        s = wait_sample(page, RECON_CAPTION, n + 1, timeout_ms)
        wait_idle(page)
        if s is None or s["down"] is None:
            missed += 1
            errors.append(f"click {i}: no reconstruction painted within {timeout_ms / 1000:.0f} s")
            continue
        last_row = row.group(1) if row else None
        lat.append(s["painted"] - s["down"])
        busy.append(busy_ms(page, s["down"], s["painted"]))
    out = {
        "preview": preview,
        "latency_ms": summary(lat),
        "browser_busy_ms": summary(busy),
        "missed": missed,
        "raw_ms": [round(v, 1) for v in lat],
        "errors": errors[:3],
    }
    if preview:
        out.update(
            preview_pick_ms=summary(pick),
            preview_pick_busy_ms=summary(pick_busy),
            preview_pick_raw_ms=[round(v, 1) for v in pick],
            preview_hover_ms=summary(hover),
            preview_hover_raw_ms=[round(v, 1) for v in hover],
        )
    return out


def click_run(browser, home: Path, log_path: Path, n_clicks: int, preview: bool) -> dict:
    """`clicks` on a server of its own with the pick preview turned on or off (for `--compare`)."""
    env = {PREVIEW_ENV: "1" if preview else "0"}
    out = {"env": env, "load_before": load()}
    with StreamlitServer(home, log_path=log_path, extra_env=env).start(timeout=120) as srv:
        page = new_page(browser, init_scripts=(PROBE_JS,))
        open_app(page, srv.url, timeout=120_000)
        wait_idle(page)
        out.update(clicks(page, n_clicks))
        page.context.close()
    out["load_after"] = load()
    return out


def trace_summary(trace: dict, t0_us: float | None = None, top: int = 12) -> dict:
    """Main-thread time of a Chromium trace: self time (ms) per event name and per script URL.

    Complete events ("X") on the renderer main threads (CrRendererMain, of the page and of its iframes)
    are nested by time; an event's self time is its duration minus its children's."""
    events = trace.get("traceEvents", trace if isinstance(trace, list) else [])
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    by_thread: dict = {}
    for e in events:
        if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in main and "dur" in e:
            if t0_us is None or e["ts"] + e["dur"] >= t0_us:
                by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
    by_name: dict = {}
    by_url: dict = {}
    busy = 0.0
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list = []  # [event, child time, url]
        for e in evs + [None]:
            while stack and (e is None or e["ts"] >= stack[-1][0]["ts"] + stack[-1][0]["dur"]):
                ev, child, url = stack.pop()
                self_ms = (ev["dur"] - child) / 1000
                by_name[ev["name"]] = by_name.get(ev["name"], 0.0) + self_ms
                if url:
                    by_url[url] = by_url.get(url, 0.0) + self_ms
                if stack:
                    stack[-1][1] += ev["dur"]
                elif ev["name"] in ("RunTask", "ThreadControllerImpl::RunTask"):
                    busy += ev["dur"] / 1000
            if e is None:
                break
            data = (e.get("args") or {}).get("data") or {}
            url = data.get("url") or (stack[-1][2] if stack else None)
            stack.append([e, 0, url.rsplit("/", 1)[-1][:60] if url else None])

    def best(d):
        return {k: round(v, 1) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top] if v >= 0.5}

    return {"busy_ms": round(busy, 1), "self_ms_by_event": best(by_name), "self_ms_by_script": best(by_url)}


def trace_click(browser, page, path: Path) -> dict:
    """One more scatter click with a Chromium performance trace saved to `path` (open it in DevTools'
    Performance panel or ui.perfetto.dev); returns its latency and the trace's main-thread summary."""
    chart = page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".gl-container")).first
    points, box, _ = scatter_points(chart)
    target, _gap = isolated_point(points, box, rng_seed=97)
    page.mouse.move(target[2], target[3])
    page.wait_for_timeout(300)
    n = len(samples(page, RECON_CAPTION))
    nc = len(preview_samples(page, "click"))
    categories = [
        "devtools.timeline",
        "disabled-by-default-devtools.timeline",
        "disabled-by-default-devtools.timeline.frame",
        "blink.user_timing",
        "v8.execute",
        "toplevel",
        "loading",
    ]
    browser.start_tracing(page=page, path=str(path), categories=categories)
    page.mouse.down()
    page.mouse.up()
    s = wait_sample(page, RECON_CAPTION, n + 1, 15_000)
    wait_idle(page)
    page.wait_for_timeout(200)
    browser.stop_tracing()
    out = trace_summary(json.loads(Path(path).read_text()))
    out["file"] = str(path)
    out["latency_ms"] = None if s is None or s["down"] is None else round(s["painted"] - s["down"], 1)
    c = preview_samples(page, "click")[nc:]
    down = s and s["down"]
    out["preview_pick_ms"] = round(c[0]["painted"] - down, 1) if c and down and c[0].get("painted") else None
    return out


def starts(browser, home: Path, n: int, log_dir: Path) -> dict:
    """Fresh `streamlit run` -> health -> page interactive (first run over, digit painted)."""
    out = []
    for i in range(n):
        srv = StreamlitServer(home, log_path=log_dir / f"start{i}.log")
        page = new_page(browser, init_scripts=(PROBE_JS,))
        t0 = time.perf_counter()
        try:
            srv.start(timeout=120)
            health = time.perf_counter() - t0
            open_app(page, srv.url, timeout=120_000)
            first_run = time.perf_counter() - t0
            pad_frame(page)  # the latent pad's decoder is ready
            if wait_sample(page, DIGIT_CAPTION, 1, 60_000) is None:
                raise RuntimeError("the page never painted the decoded digit")
            out.append(
                {
                    "health_s": round(health, 2),
                    "first_run_s": round(first_run, 2),
                    "interactive_s": round(time.perf_counter() - t0, 2),
                }
            )
        finally:
            page.context.close()
            srv.stop()
    return {
        "runs": out,
        "interactive_s": summary([r["interactive_s"] for r in out], 2),
        "health_s": summary([r["health_s"] for r in out], 2),
    }


# ----------------------------------------------------------------------------- main


def prepare(args, tmp: Path) -> Path:
    if args.home:
        home = Path(args.home).expanduser()
        from model.store import ModelStore

        if ModelStore(home / "models").current() is None:
            sys.exit(
                f"error: no trained model in {home}/models. Fix: train one (LATENT_EXPLORER_HOME="
                f"{home} python -m model.train) or leave out --home."
            )
        return home
    from browser_harness import prepare_home

    print(
        f"training a quick model ({args.train_epochs} epoch(s), {args.train_limit} images) ...",
        file=sys.stderr,
    )
    return prepare_home(tmp / "home", epochs=args.train_epochs, limit=args.train_limit)


def _stat_row(label: str, v: dict, goal: str = "") -> tuple:
    """A table row: label, count, p50 and p95 in ms ("—" when there is none), goal."""
    ms = ["—" if v[p] is None else f"{v[p]:.1f} ms" for p in ("p50", "p95")]
    return (label, str(v["n"]), *ms, goal)


def _drag_rows(name: str, r: dict) -> list[tuple]:
    """The table rows of one drag measurement (the pad's or the range input's)."""

    def ms(v):
        return "—" if v is None else f"{v:.0f} ms"

    rows = []
    rows.append(
        (
            f"drag the {name} ({r['backend']}): decoded fps",
            str(r["decoded_frames"]),
            f"{r['fps']:.0f} fps",
            "",
            ">= 30 fps",
        )
    )
    for label, key, goal in (
        ("  pointer event -> digit drawn", "pointer_to_drawn_ms", "p50 <= 16 ms"),
        ("  pointer event -> next frame", "pointer_to_next_frame_ms", "p95 <= 33 ms"),
        ("  one decode in the browser", "decode_ms", ""),
    ):
        rows.append(_stat_row(label, r[key], goal))
    rows.append(
        (
            "  websocket frames sent: drag / release",
            "",
            f"{r['ws_frames_sent_during_drag']} / {r['ws_frames_sent_on_release']}",
            "",
            "0 during",
        )
    )
    rows.append(
        (
            "  release -> server digit painted",
            "",
            ms(r["release_to_server_digit_ms"]),
            f"{r['release_rerun_bytes_received'] / 1024:.1f} kB in",
            "",
        )
    )
    return rows


def _click_rows(result: dict) -> list[tuple]:
    """The pick preview's rows (main run), and each `--compare` run's click and preview rows."""
    cl, rows = result.get("click"), []
    for tag, r in ([("", cl)] if cl else []) + [
        (f" (preview {k})", v) for k, v in result.get("compare", {}).items()
    ]:
        if tag:  # the main run's reconstruction rows are above
            rows.append(_stat_row(f"click point -> reconstruction{tag}", r["latency_ms"]))
            rows.append(_stat_row("  browser main thread busy (>50 ms tasks)", r["browser_busy_ms"]))
        if r.get("preview"):
            goal = "p50 <= 300, p95 <= 600 ms"
            rows.append(
                _stat_row(f"click point -> pick painted by the preview{tag}", r["preview_pick_ms"], goal)
            )
            rows.append(_stat_row("  browser main thread busy (>50 ms tasks)", r["preview_pick_busy_ms"]))
            rows.append(
                _stat_row(f"pointer on a point -> preview painted{tag}", r["preview_hover_ms"], "<= 50 ms")
            )
    return rows


def table(result: dict) -> str:
    def ms(v):
        return "—" if v is None else f"{v:.0f} ms"

    def s_(v):
        return "—" if v is None else f"{v:.1f} s"

    sl, cl, st = result.get("slider"), result.get("click"), result.get("start")
    rows = [("measure", "n", "p50", "p95", "goal")]
    for name, r in (("pad", result.get("pad_drag")), ("z[0] range input", result.get("slider_drag"))):
        if not r:
            continue
        rows += _drag_rows(name, r)
    ps = result.get("pad_stream")
    if ps:
        rows.append(
            (
                f"pad, {ps['events_per_s']:.0f} pointer events/s: decoded fps",
                str(ps["decoded_frames"]),
                f"{ps['fps']:.0f} fps",
                "",
                ">= 30 fps",
            )
        )
        for label, key in (
            ("  pointer event -> digit drawn", "pointer_to_drawn_ms"),
            ("  pointer event -> next frame", "pointer_to_next_frame_ms"),
        ):
            v = ps[key]
            rows.append((label, str(v["n"]), f"{v['p50']:.1f} ms", f"{v['p95']:.1f} ms", ""))
    fp = result.get("first_paint")
    if fp:
        rows.append(
            (
                "page load -> server digit / pad digit",
                "1",
                ms(fp["server_digit_ms"]),
                ms(fp["pad_digit_ms"]),
                "pad <= +1 s",
            )
        )
    if sl:
        rows.append(
            (
                "slider move -> digit painted",
                str(sl["latency_ms"]["n"]),
                ms(sl["latency_ms"]["p50"]),
                ms(sl["latency_ms"]["p95"]),
                "p50 <= 150 ms",
            )
        )
        for name, key in (
            ("  key -> new <img> src (server run)", "key_to_new_src_ms"),
            ("  new src -> painted (fetch+decode)", "new_src_to_painted_ms"),
            ("  browser main thread busy (>50 ms tasks)", "browser_busy_ms"),
            ("  decode on the server (caption)", "server_decode_ms"),
        ):
            rows.append(_stat_row(name, sl[key]))
    if cl:
        rows.append(
            (
                "click point -> reconstruction",
                str(cl["latency_ms"]["n"]),
                ms(cl["latency_ms"]["p50"]),
                ms(cl["latency_ms"]["p95"]),
                "<= 300 ms",
            )
        )
        v = cl["browser_busy_ms"]
        rows.append(
            ("  browser main thread busy (>50 ms tasks)", str(v["n"]), ms(v["p50"]), ms(v["p95"]), "")
        )
    rows += _click_rows(result)
    if st:
        rows.append(
            (
                "server start -> interactive",
                str(st["interactive_s"]["n"]),
                s_(st["interactive_s"]["p50"]),
                s_(st["interactive_s"]["max"]) + " (max)",
                "<= 8 s",
            )
        )
        rows.append(
            (
                "  server start -> /health",
                str(st["health_s"]["n"]),
                s_(st["health_s"]["p50"]),
                s_(st["health_s"]["max"]) + " (max)",
                "",
            )
        )
        fr = summary([r["first_run_s"] for r in st["runs"]], 2)
        rows.append(
            ("  server start -> first run over", str(fr["n"]), s_(fr["p50"]), s_(fr["max"]) + " (max)", "")
        )
    w = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python bench/ui_latency.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--home",
        help="an existing LATENT_EXPLORER_HOME with a trained model (read only); "
        "default: a temp home with a quick model",
    )
    p.add_argument("--train-limit", type=int, default=2000, help="quick model: training images")
    p.add_argument("--train-epochs", type=int, default=1, help="quick model: epochs")
    p.add_argument("--moves", type=int, default=40, help="slider moves (>= 30 for a p95)")
    p.add_argument("--clicks", type=int, default=12, help="scatter clicks")
    p.add_argument("--starts", type=int, default=3, help="server starts")
    p.add_argument("--pad-moves", type=int, default=120, help="mouse moves per pad / range-input drag")
    p.add_argument("--skip", action="append", default=[], choices=("slider", "click", "start", "pad"))
    p.add_argument("--json", help="also write the JSON result to this file")
    p.add_argument(
        "--compare",
        action="store_true",
        help=f"clicks and hovers on two servers in one run, {PREVIEW_ENV}=0 then 1 (the pick preview "
        "off, on), instead of the clicks on the main server",
    )
    p.add_argument(
        "--trace",
        metavar="FILE",
        help="after the clicks, trace one more click (Chromium performance trace, JSON) into FILE and "
        "summarise its main-thread time",
    )
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="ui-latency-"))
    result: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_before": load(),
    }
    try:
        home = prepare(args, tmp)
        result["home"] = str(home)
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            result["machine"]["chromium"] = browser.version
            if {"slider", "click", "pad"} - set(args.skip):
                with StreamlitServer(home, log_path=tmp / "server.log").start(timeout=120) as srv:
                    page = new_page(browser, init_scripts=(PROBE_JS,))
                    sent, received = [], []

                    def watch(ws):
                        ws.on(
                            "framesent",
                            lambda payload: (
                                None
                                if is_auto_rerun(payload)  # timer reruns
                                else sent.append(len(payload))
                            ),
                        )
                        ws.on("framereceived", lambda payload: received.append(len(payload)))

                    page.on("websocket", watch)
                    open_app(page, srv.url, timeout=120_000)
                    wait_sample(page, DIGIT_CAPTION, 1, 60_000)
                    if "pad" not in args.skip:
                        print(f"pad: drags of {args.pad_moves} moves ...", file=sys.stderr)
                        pad_drag(page, "#pad", 20, sent, received, end=-0.2)  # warm-up (JIT, first calls)
                        result["pad_drag"] = pad_drag(page, "#pad", args.pad_moves, sent, received)
                        result["slider_drag"] = pad_drag(
                            page, 'input[aria-label="z[0]"]', args.pad_moves, sent, received
                        )
                        result["pad_stream"] = pad_stream(page)
                        result["first_paint"] = first_paint(browser, srv.url)
                    if "slider" not in args.skip:
                        print(f"slider: {args.moves} moves ...", file=sys.stderr)
                        result["slider"] = slider_moves(page, args.moves)
                    if "click" not in args.skip and not args.compare:
                        print(f"click: {args.clicks} points ...", file=sys.stderr)
                        result["click"] = clicks(page, args.clicks)
                    if args.trace:
                        print(f"trace: one click -> {args.trace} ...", file=sys.stderr)
                        result["trace"] = trace_click(browser, page, Path(args.trace))
                    page.context.close()
            if args.compare:
                result["compare"] = {}
                for name, on in (("off", False), ("on", True)):
                    print(f"compare: {args.clicks} points, pick preview {name} ...", file=sys.stderr)
                    result["compare"][name] = click_run(
                        browser, home, tmp / f"server-{name}.log", args.clicks, on
                    )
            if "start" not in args.skip:
                print(f"start: {args.starts} fresh servers ...", file=sys.stderr)
                result["start"] = starts(browser, home, args.starts, tmp)
            browser.close()
        result["load_after"] = load()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sl, cl, st = result.get("slider"), result.get("click"), result.get("start")
    result["goals"] = GOALS
    result["meets_goals"] = {
        "slider": None
        if not sl or sl["latency_ms"]["p50"] is None
        else sl["latency_ms"]["p50"] <= GOALS["slider_p50_ms"],
        "click": None
        if not cl or cl["latency_ms"]["p50"] is None
        else cl["latency_ms"]["p50"] <= GOALS["click_p50_ms"],
        "start": None
        if not st or st["interactive_s"]["p50"] is None
        else st["interactive_s"]["p50"] <= GOALS["start_s"],
    }
    print(table(result))
    print(f"load before: {result['load_before']}\nload after:  {result['load_after']}")
    if cl and cl["missed"]:
        print(f"click: {cl['missed']} click(s) showed no reconstruction: {cl['errors']}")
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
