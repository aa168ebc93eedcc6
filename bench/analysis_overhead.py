"""Server-side cost of the analysis tools on the slider and click paths (not a test).

    python bench/analysis_overhead.py --home /tmp/home-x/home --runs 30

Runs the page headless (Streamlit AppTest) on a stored model and times the explore panel
(`_timings["panel_ms"]`, measured by the page itself) for slider moves and picks, alternating runs with
the analysis hooks on and replaced by no-ops, so machine load drifts hit both alike. Closed expanders,
as a user first sees them; `--open` also opens neighbours, traversals and attribute vectors.
Prints medians and the load average (`uptime`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True, help="a LATENT_EXPLORER_HOME with a trained model")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--open", action="store_true", help="open the neighbour/traversal/attribute panels")
    args = p.parse_args()
    os.environ["LATENT_EXPLORER_HOME"] = str(Path(args.home).expanduser())

    from streamlit.testing.v1 import AppTest

    from explorer.panels import links, tools

    real = {"tools": tools.explore_tools, "url": links.update_url}
    noop = {"tools": lambda *a, **k: None, "url": lambda *a, **k: None}

    def use(fns):
        tools.explore_tools, links.update_url = fns["tools"], fns["url"]

    state = {"nn_open": True, "trav_open": True, "attr_open": True} if args.open else {}
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    times = {("slider", "on"): [], ("slider", "off"): [], ("pick", "on"): [], ("pick", "off"): []}
    rng = __import__("numpy").random.default_rng(0)
    for i in range(args.runs):
        for mode, fns in (("on", real), ("off", noop)) if i % 2 == 0 else (("off", noop), ("on", real)):
            use(fns)
            s = at.slider(key="z0")
            s.set_value(round(float(rng.uniform(s.min, s.max)) * 20) / 20).run()
            times[("slider", mode)].append(at.session_state["_timings"]["panel_ms"])
            at.session_state["pick"] = int(rng.integers(10_000))
            at.run()
            times[("pick", mode)].append(at.session_state["_timings"]["panel_ms"])
    use(real)
    assert not at.exception, [e.value for e in at.exception]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(
        f"explore panel server time, median of {args.runs} runs each "
        f"({'panels open' if args.open else 'panels closed'}):"
    )
    for path in ("slider", "pick"):
        on, off = statistics.median(times[(path, "on")]), statistics.median(times[(path, "off")])
        print(
            f"  {path:6s} with analysis hooks {on:7.1f} ms   hooks as no-ops {off:7.1f} ms   "
            f"difference {on - off:+6.1f} ms"
        )
    print(f"  load: {load}")


if __name__ == "__main__":
    main()
