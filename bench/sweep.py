"""A sweep on the local runner vs on Ray, on this machine (reported, not asserted).

    nice python bench/sweep.py --json sweep.json                  # 4 configs x 2 epochs, full MNIST
    python bench/sweep.py --configs 2 --epochs 1 --limit 2048     # a quick look

Each mode gets its own fresh LATENT_EXPLORER_HOME (the MNIST cache hard-linked in) and runs the same
sweep through `model.sweep.start_sweep`, as the app does:
  local   the local runner: one job process after another
  ray     Ray `auto` (a new local instance when none runs): one task per job, --cpus-per-job CPUs
          each (1: two jobs at once on a 2-core machine)
Measured per mode: the sweep's wall time (start_sweep -> every job ended), per job the overhead of the
backend: submit -> first progress event (the `start` event: TensorFlow and the data loaded), and last
epoch -> model in the store (final test evaluation + for Ray: the model's bytes back to the driver and
its save), and the peak RSS (VmHWM) of the sweep driver process and of this process (the app's side).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import sweep
from model.config import VAEConfig
from model.jobs import files
from model.paths import home, using_home


def vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def follow_rss(pid: int, out: dict) -> None:
    """The peak VmHWM of `pid` until it exits (read every 0.5 s: it cannot be read after)."""
    while True:
        v = vm_hwm_kib(pid)
        if v is None:
            return
        out["peak_kib"] = max(out.get("peak_kib", 0), v)
        time.sleep(0.5)


def configs(n: int, epochs: int, limit: int | None) -> list[VAEConfig]:
    base = VAEConfig(epochs=epochs, limit=limit)
    field = "kl_weight" if "kl_weight" in base.to_dict() else "seed"
    values = [0.5, 1.0, 2.0, 4.0, 8.0, 0.25][:n] if field == "kl_weight" else list(range(n))
    return [replace(base, **{field: v}) for v in values]


def run_mode(backend: str, cfgs: list[VAEConfig], cpus: float, data_from: Path) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"bench-sweep-{backend}-"))
    shutil.copytree(data_from / "data", root / "data", copy_function=os.link)
    with using_home(root):
        t0 = time.time()
        info = sweep.start_sweep(cfgs, backend=backend, cpus_per_job=cpus)
        rss: dict = {}
        th = threading.Thread(target=follow_rss, args=(info.pid, rss), daemon=True)
        th.start()
        while True:
            st = sweep.sweep_status(info.id)
            if not st.active:
                break
            time.sleep(0.5)
        wall = time.time() - t0
        th.join(timeout=5)
        per_job = []
        for row in st.rows:
            if row.job is None:
                continue
            status = files.read_json(files.jobs_root() / row.job.id / "status.json") or {}
            evs = files.events(files.jobs_root() / row.job.id / "progress.jsonl")
            start = next((e["time"] for e in evs if e["event"] == "start"), None)
            epochs = [e["time"] for e in evs if e["event"] == "epoch"]
            done = next((e["time"] for e in evs if e["event"] == "done"), None)
            per_job.append(
                {
                    "config": {k: row.config.to_dict()[k] for k in st.fields},
                    "state": row.state,
                    "submit_to_first_event_s": start - status["started"] if start else None,
                    "last_epoch_to_store_s": done - epochs[-1] if done and epochs else None,
                    "epoch_s": [b - a for a, b in zip([start, *epochs], epochs)] if start else [],
                    "job_s": row.job.elapsed,
                }
            )
        out = {
            "backend": backend,
            "state": st.state,
            "wall_s": wall,
            "driver_peak_rss_mib": rss.get("peak_kib", 0) / 1024,
            "app_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "jobs": per_job,
            "home": str(root),
        }
    print(json.dumps(out, indent=1), flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="training images (default: all 60k)")
    p.add_argument("--cpus-per-job", type=float, default=1.0)
    p.add_argument("--modes", default="local,auto", help="comma-separated backends (default local,auto)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    cfgs = configs(args.configs, args.epochs, args.limit)
    from model.data import load_dataset

    load_dataset("mnist")  # fill the cache once (hard-linked into each mode's home)
    results = {
        "load_before": os.getloadavg(),
        "cpus": os.cpu_count(),
        "configs": [c.to_dict() for c in cfgs],
        "modes": [run_mode(m, cfgs, args.cpus_per_job, home()) for m in args.modes.split(",")],
        "load_after": os.getloadavg(),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    for m in results["modes"]:
        print(
            f"{m['backend']:6s} {m['state']:9s} wall {m['wall_s']:.0f} s, driver peak RSS "
            f"{m['driver_peak_rss_mib']:.0f} MiB, app peak RSS {m['app_peak_rss_mib']:.0f} MiB"
        )
        for j in m["jobs"]:
            print(
                f"   {j['config']} {j['state']}: submit->first event {j['submit_to_first_event_s']:.1f} s, "
                f"last epoch->store {j['last_epoch_to_store_s']:.1f} s, "
                f"epochs {[round(e) for e in j['epoch_s']]}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
