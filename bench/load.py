"""Load: N concurrent browser sessions against one `streamlit run` server (not a test).

    python bench/load.py                          # temp home with a quick model, 10 sessions, 60 s, 2 rounds
    python bench/load.py --sessions 20 --seconds 90 --rounds 3 --json load.json

Each round opens N sessions (N browser contexts in ONE headless Chromium, so N Streamlit sessions) that
for `--seconds` (from when its page and pad are ready) repeat: a slider key press (commits like a
release), a drag on the latent pad (the z values reach the server on release), a click on a scatter
point; then every session closes. Printed:
  errors       exceptions shown in a page, page errors, actions with no rerun, tracebacks in the server log
  server ms    wall time of each explore-fragment run on the server, p50/p95, per slider/pad release and
               per click (+ the deferred redraw a click schedules), from the server's own log
               (bench/load_app.py: the same page with a timing hook; explorer/ is unchanged)
  RSS          the server's resident memory before the round (one warm-up session came and went), at its
               peak, once every session closed ("closed": Streamlit keeps a closed session for reconnection,
               server.disconnectedSessionTTL, and drops an expired one only when another session closes),
               and after the closed sessions expired and were dropped ("after_expiry"), then after
               malloc_trim ("after_malloc_trim", the next round's "before");
               "left per session" is (after_expiry - before) / N, "trimmed_left_per_session" the same
               after malloc_trim
  heap         glibc's heap bytes in use and free-but-kept (mallinfo2) and Python's allocated blocks after
               each round: a leak grows "in use" or the blocks; fragmentation grows only "free"
  server view  sessions, media files, Streamlit's cache sizes and the commonest Python objects per round
Malloc settings, one run each: the default (the app pins glibc's mmap threshold,
explorer.serving.limit_heap_growth), `--server-env MALLOC_ARENA_MAX=2` (what README gives for long-running
servers), `--server-env MALLOC_MMAP_THRESHOLD_=33554432` (a user's own threshold: the app leaves it).
Browser and server share the machine: on 2 cores the figures measure CPU contention as much as the app
(the load average is printed with them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from browser_harness import (  # noqa: E402
    APP_IDLE,
    CHROMIUM,
    CHROMIUM_ARGS,
    FIRST_RUN_MS,
    INIT_SCRIPT,
    PLOT_POINTS_JS,
    StreamlitServer,
    isolated_point,
    prepare_home,
)

PAD_FRAME = "latent_pad/index.html"
ACTION_MS = 60_000


def uptime() -> str:
    return "load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return round(v[lo] + (v[hi] - v[lo]) * (k - lo), 1)


def stats(values) -> dict:
    return {
        "n": len(values),
        "p50": pct(values, 0.5),
        "p95": pct(values, 0.95),
        "max": round(max(values), 1) if values else None,
    }


# ----------------------------------------------------------------------------- server log


class TimingLog:
    def __init__(self, path: Path):
        self.path = path
        path.write_text("")

    def records(self, since: float = 0.0) -> list[dict]:
        out = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("t", 0) >= since:
                out.append(rec)
        return out

    async def dump(self, label: str, timeout: float = 60.0) -> dict:
        """Ask the server (bench/load_app.py) for a snapshot of what it holds."""
        t0 = time.time()
        Path(f"{self.path}.dump").write_text(label)
        while time.time() - t0 < timeout:
            for rec in reversed(self.records(t0)):
                if rec.get("kind") == "dump":
                    return rec
            await asyncio.sleep(0.2)
        return {"error": "no dump within timeout"}


# ----------------------------------------------------------------------------- one session


async def wait_idle(page, timeout=ACTION_MS):
    await page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout)
    await page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')", timeout=timeout)


async def runs_done(page) -> int:
    return await page.evaluate("window.__e2e.runsDone")


async def pad_ready(page, timeout=120_000):
    await page.wait_for_function(
        "() => [...document.querySelectorAll('iframe')].some(f => { try {"
        " return f.contentWindow.latentPad && f.contentWindow.latentPad.ready;"
        " } catch (e) { return false; } })",
        timeout=timeout,
    )


async def act_key(page, i):
    thumb = page.frame_locator(f'iframe[src*="{PAD_FRAME}"]').locator('input[aria-label="z[0]"]')
    await thumb.focus()
    await page.keyboard.press("ArrowRight" if (i // 3) % 6 < 3 else "ArrowLeft")


async def act_pad(page, i):
    box = await page.frame_locator(f'iframe[src*="{PAD_FRAME}"]').locator("#pad").bounding_box()
    x0, y0 = box["x"] + box["width"] * (0.25 + 0.05 * (i % 7)), box["y"] + box["height"] * 0.3
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    for k in range(1, 8):
        await page.mouse.move(x0 + box["width"] * 0.03 * k, y0 + box["height"] * (0.04 * k + 0.01 * (i % 5)))
    await page.mouse.up()


async def act_click(page, i):
    chart = page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".gl-container")).first
    await chart.scroll_into_view_if_needed()
    info = await chart.evaluate(PLOT_POINTS_JS)
    target, _ = isolated_point(info["points"], info["plot"], rng_seed=i)
    await page.mouse.move(target[2], target[3])
    await page.mouse.down()
    await page.mouse.up()


ACTIONS = (("slider", act_key), ("pad", act_pad), ("click", act_click))


async def session(browser, url: str, seconds: float, idx: int, out: dict, max_actions: int = 10**9) -> None:
    """Open the page, then act for `seconds` (counted from when the page and its pad are ready)."""
    res = out.setdefault(idx, {"actions": {}, "no_rerun": 0, "errors": [], "ready_s": None})
    t_open = time.perf_counter()
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        await ctx.add_init_script(INIT_SCRIPT)
        page = await ctx.new_page()
        page.set_default_timeout(ACTION_MS)
        page.on("pageerror", lambda e: res["errors"].append(f"page error: {e}"))
        await page.goto(url, wait_until="domcontentloaded")
        await page.wait_for_function("window.__e2e && window.__e2e.runsDone >= 1", timeout=FIRST_RUN_MS)
        await wait_idle(page, FIRST_RUN_MS)
        await pad_ready(page)
        res["ready_s"] = round(time.perf_counter() - t_open, 1)
        until = time.time() + seconds
        i = idx  # sessions start at different actions
        while time.time() < until and i - idx < max_actions:
            name, act = ACTIONS[i % len(ACTIONS)]
            n = await runs_done(page)
            t0 = time.perf_counter()
            try:
                await act(page, i)
                await page.wait_for_function(f"window.__e2e.runsDone > {n}", timeout=20_000)
                await wait_idle(page)
                res["actions"].setdefault(name, []).append(1000 * (time.perf_counter() - t0))
            except Exception as e:  # no rerun (e.g. the same point clicked twice) or a stuck page
                res["no_rerun"] += 1
                print(f"session {idx} {name}: {type(e).__name__}: {str(e)[:150]}", file=sys.stderr)
                if len(res["errors"]) < 5 and "Timeout" not in type(e).__name__:
                    res["errors"].append(f"{name}: {type(e).__name__}: {str(e)[:200]}")
            shown = await page.locator('[data-testid="stException"]').all_inner_texts()
            if shown:
                res["errors"].append(f"exception in the page after {name}: {shown[0][:300]}")
                break
            i += 1
    except Exception as e:
        res["errors"].append(f"session {idx}: {type(e).__name__}: {str(e)[:300]}")
    finally:
        await ctx.close()


async def sample_rss(pid: int, samples: list, stop: asyncio.Event):
    while not stop.is_set():
        if (v := rss_mb(pid)) is not None:
            samples.append(v)
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass


async def settle(log: TimingLog, label: str, ttl: float, timeout: float = 120.0) -> tuple[dict, dict]:
    """Wait until no session is connected (snapshot), then past the reconnect TTL and have the server
    expire the closed sessions it keeps for reconnection (snapshot)."""
    t0 = time.time()
    while True:
        closed = await log.dump(label)
        if closed.get("sessions_active", 1) == 0 or time.time() - t0 > timeout:
            break
        await asyncio.sleep(1.0)
    await asyncio.sleep(ttl + 1)
    return closed, await log.dump("expire")


# ----------------------------------------------------------------------------- main


async def run(args, srv: StreamlitServer, log: TimingLog) -> dict:
    from playwright.async_api import async_playwright

    pid = srv.proc.pid
    report = {"sessions": args.sessions, "seconds": args.seconds, "rounds": []}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            warm: dict = {}
            await session(browser, srv.url, 120, 0, warm, max_actions=6)  # caches filled, TF warmed
            print(f"warm-up session: ready in {warm[0]['ready_s']} s, {warm[0]['actions']}", file=sys.stderr)
            report["warmup_errors"] = warm[0]["errors"]
            _, before_dump = await settle(log, "before", args.ttl)
            before_dump = await log.dump("trim")
            rss_start = rss_mb(pid)
            for r in range(args.rounds):
                before = rss_mb(pid)
                load0 = os.getloadavg()
                samples, stop = [before], asyncio.Event()
                sampler = asyncio.create_task(sample_rss(pid, samples, stop))
                t_start = time.time()
                out: dict = {}
                await asyncio.gather(
                    *(session(browser, srv.url, args.seconds, i, out) for i in range(args.sessions))
                )
                t_end = time.time()
                load1 = os.getloadavg()
                closed_dump, after_dump = await settle(log, f"after round {r + 1}", 0)
                closed = rss_mb(pid)  # every session closed, kept by Streamlit for reconnection
                await asyncio.sleep(args.ttl + 1)
                after_dump = await log.dump("expire")
                await asyncio.sleep(2)
                stop.set()
                await sampler
                after = rss_mb(pid)  # the closed sessions expired and dropped
                trim_dump = await log.dump("trim")
                trimmed = rss_mb(pid)  # and free heap returned to the OS (malloc_trim)
                recs = [x for x in log.records(t_start) if x["t"] <= t_end + 5]
                srv_ms = {
                    k: stats([x["ms"] for x in recs if x.get("kind") == k])
                    for k in ("slider", "click", "ring", "full")
                }
                client = {}
                for res in out.values():
                    for k, v in res["actions"].items():
                        client.setdefault(k, []).extend(v)
                log_errors = [
                    ln for ln in srv.log_tail(400).splitlines() if re.search(r"Traceback|Error|Exception", ln)
                ]
                report["rounds"].append(
                    {
                        "round": r + 1,
                        "load_average_start": [round(v, 2) for v in load0],
                        "load_average_end": [round(v, 2) for v in load1],
                        "server_ms": srv_ms,
                        "client_action_ms": {k: stats(v) for k, v in client.items()},
                        "actions_done": sum(len(v) for v in client.values()),
                        "ready_s": stats(
                            [res["ready_s"] for res in out.values() if res["ready_s"] is not None]
                        ),
                        "no_rerun": sum(res["no_rerun"] for res in out.values()),
                        "errors": [e for res in out.values() for e in res["errors"]],
                        "server_log_errors": log_errors[-10:],
                        "rss_mb": {
                            "before": round(before, 1),
                            "peak": round(max(samples), 1),
                            "closed": round(closed, 1),
                            "after_expiry": round(after, 1),
                            "after_malloc_trim": round(trimmed, 1),
                            "kept_per_closed_session": round((closed - before) / args.sessions, 2),
                            "left_per_session": round((after - before) / args.sessions, 2),
                            "trimmed_left_per_session": round((trimmed - before) / args.sessions, 2),
                        },
                        "malloc_mb": {
                            k: round((trim_dump.get(f"malloc_{k}") or 0) / 2**20, 2)
                            for k in ("in_use", "free", "heaps")
                        },
                        "py_allocated_blocks": trim_dump.get("py_allocated_blocks"),
                        "streamlit_caches_mb": round((trim_dump.get("cache_bytes") or 0) / 2**20, 2),
                        "streamlit_caches": trim_dump.get("caches"),
                        "stored_sessions": {
                            "closed": closed_dump.get("stored_sessions_raw"),
                            "after_expiry": after_dump.get("stored_sessions_raw"),
                        },
                        "server_after": {
                            k: after_dump.get(k)
                            for k in (
                                "sessions_all",
                                "media_files",
                                "media_bytes",
                                "media_by_session",
                                "objects",
                            )
                        },
                    }
                )
            report["rss_mb_total_left_per_session"] = round(
                (rss_mb(pid) - rss_start) / (args.sessions * args.rounds), 2
            )
            report["server_before"] = {
                k: before_dump.get(k) for k in ("sessions_all", "media_files", "objects", "caches")
            }
            report["malloc_mb_before"] = {
                k: round((before_dump.get(f"malloc_{k}") or 0) / 2**20, 2)
                for k in ("in_use", "free", "heaps")
            }
            report["py_allocated_blocks_before"] = before_dump.get("py_allocated_blocks")
            report["streamlit_caches_mb_before"] = round((before_dump.get("cache_bytes") or 0) / 2**20, 2)
        finally:
            await browser.close()
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="LATENT_EXPLORER_HOME with a trained model (default: a temp one)")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--ttl",
        type=int,
        default=10,
        help="server.disconnectedSessionTTL for the run (Streamlit's "
        "default, 120 s, only makes the bench wait longer)",
    )
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for the server only (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="le-load-"))
    if args.home:
        home = Path(args.home).expanduser()
    else:
        home = tmp / "home"
        print(f"training a quick model in {home} ...", flush=True)
        prepare_home(home, epochs=1, limit=2000)
    log = TimingLog(tmp / "timings.jsonl")
    srv = StreamlitServer(
        home,
        app="bench/load_app.py",
        log_path=tmp / "server.log",
        extra_env={
            "LOAD_TIMINGS_LOG": str(log.path),
            "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(args.ttl),
            **dict(kv.split("=", 1) for kv in args.server_env),
        },
    )
    with srv.start(timeout=180):
        report = asyncio.run(run(args, srv, log))
    report["machine_load_at_end"] = uptime()
    for rd in report["rounds"]:
        objs = rd["server_after"].pop("objects") or {}
        rd["server_after"]["top_objects"] = dict(list(objs.items())[:8])
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"server log and timings: {tmp}")


if __name__ == "__main__":
    main()
