"""Server-side time of the explorer page, measured with Streamlit's AppTest (no browser; not a test).

    python bench/app_server.py                        # temp home, quick model (2000 images, 1 epoch)
    python bench/app_server.py --home ~/.cache/latent-explorer --moves 40

Figures (wall clock, this process; the machine's load average is printed with them):
  cold       first run of a fresh process: model load, 10k-image encode, first full render
  cached     a new session's first render once the model and arrays are cached (a second user, a reload)
  decode     server-side decode per slider move: the explorer's own timer around `LatentModel.decode`
  panel      the explore fragment per slider move (what a slider move reruns in the browser)
  run        one whole AppTest script run per slider move (AppTest cannot rerun a fragment alone,
             so this is an upper bound of the fragment rerun)
For the time a user sees in a browser, use bench/ui_latency.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="LATENT_EXPLORER_HOME with a trained model (default: a temp one)")
    ap.add_argument("--moves", type=int, default=30)
    args = ap.parse_args()

    if args.home:
        os.environ["LATENT_EXPLORER_HOME"] = str(Path(args.home).expanduser())
    else:
        tmp = tempfile.mkdtemp(prefix="le-bench-")
        os.environ["LATENT_EXPLORER_HOME"] = tmp
        print(f"training a quick model in {tmp} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "model.train", "--limit", "2000", "--epochs", "1", "--no-figures"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    from streamlit.testing.v1 import AppTest

    app = str(ROOT / "streamlit_app.py")

    def run(at):
        t = time.perf_counter()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return 1000 * (time.perf_counter() - t)

    cold = run(at := AppTest.from_file(app, default_timeout=300))
    cached = [run(AppTest.from_file(app, default_timeout=300)) for _ in range(5)]
    z0 = at.slider(key="z0")
    lo, hi = z0.min, z0.max
    decode, panel, runs = [], [], []
    for i in range(args.moves):
        at.slider(key="z0").set_value(round(lo + (hi - lo) * ((i * 7) % args.moves) / args.moves, 2))
        runs.append(run(at))
        timings = at.session_state["_timings"]
        decode.append(timings["decode_ms"])
        panel.append(timings["panel_ms"])

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  ({os.cpu_count()} CPUs)")
    print(f"cold first render (load + encode + page): {cold / 1000:.2f} s")
    print(
        f"cached first render, new session:         median {statistics.median(cached):.0f} ms "
        f"(min {min(cached):.0f}, max {max(cached):.0f}, n={len(cached)})"
    )
    for name, values in (
        ("decode per slider move", decode),
        ("explore fragment per move", panel),
        ("whole AppTest run per move", runs),
    ):
        print(
            f"{name:27s} median {statistics.median(values):6.1f} ms   p90 {pct(values, 0.9):6.1f} ms   "
            f"min {min(values):6.1f} ms   (n={len(values)})"
        )


if __name__ == "__main__":
    main()
