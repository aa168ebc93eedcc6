"""Slider decode latency while a background training job runs, versus the same job paused (not a test).

    python bench/decode_while_training.py                 # job at the default niceness (10), then 0
    python bench/decode_while_training.py --nice 10 --blocks 10 --json decode_training.json

Works in a temporary LATENT_EXPLORER_HOME: trains a tiny model to decode with (1 epoch, 512 images),
then starts a real job through model.jobs (20,000 images, many epochs) and, once it is past loading
and tracing, times `LatentModel.decode` of one vector (what one slider move costs on the server).
Blocks of 20 calls alternate between the job running and the job stopped (SIGSTOP), so the machine's
other load (other users, other agents) affects both figures alike. The job is cancelled at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nice", nargs="+", default=["10", "0"], help="job niceness values to try")
    p.add_argument("--blocks", type=int, default=10, help="running/paused block pairs (20 calls each)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="decode-bench-"))
    os.environ["LATENT_EXPLORER_HOME"] = str(tmp)
    from model import jobs
    from model.config import VAEConfig
    from model.store import ModelStore
    from model.train import train

    try:
        latent, _, _ = train(VAEConfig(epochs=1, limit=512), store=ModelStore(), verbose=0)
        rng = np.random.default_rng(0)
        for _ in range(20):
            latent.decode(np.zeros((1, 2), "float32"))

        def block(n=20):
            out = []
            for z in rng.uniform(-3, 3, (n, 1, 2)).astype("float32"):
                t = time.perf_counter()
                latent.decode(z)
                out.append(1000 * (time.perf_counter() - t))
                time.sleep(0.01)  # slider moves, not a tight loop
            return out

        results = {}
        for nice in args.nice:
            os.environ[jobs.NICE_ENV] = nice
            info = jobs.start_job(VAEConfig(epochs=50, limit=20_000))
            while (js := jobs.job_status(info.id)).active and js.step < 1 and js.epochs_done == 0:
                time.sleep(0.5)  # loading TensorFlow, tracing the train step
            running, paused, steps, run_s = [], [], 0, 0.0
            for _ in range(args.blocks):
                a, t = jobs.job_status(info.id), time.time()
                running += block()
                b = jobs.job_status(info.id)
                run_s += time.time() - t
                steps += (b.epochs_done - a.epochs_done) * b.steps + b.step - a.step
                os.kill(info.pid, signal.SIGSTOP)
                time.sleep(0.3)
                paused += block()
                os.kill(info.pid, signal.SIGCONT)
            jobs.cancel_job(info.id)
            jobs.wait_job(info.id, timeout=60)

            def q(v, pct):
                return round(float(np.percentile(v, pct)), 2)

            results[f"nice {nice}"] = {
                "training p50 ms": q(running, 50),
                "training p90 ms": q(running, 90),
                "paused p50 ms": q(paused, 50),
                "paused p90 ms": q(paused, 90),
                "calls each": len(running),
                "job steps/s": round(steps / run_s, 1),
                "load avg": round(os.getloadavg()[0], 1),
            }
            print(f"nice {nice}: {results[f'nice {nice}']}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        js = jobs.active_job()
        if js is not None and js.pid:
            os.kill(js.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
