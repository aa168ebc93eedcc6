"""How long the t-SNE and the UMAP take here, against their estimates (not a test).

    python bench/projection_times.py --n 2000 10000 [--z FILE.npy] [--neighbors 15]

Latent-like points: the first 8 principal components of the MNIST test images, whitened (or the rows
of --z). For each n, each projection in its child process exactly as the page runs it (same priority),
timing its phases from the child's output; prints the estimate at the rate of the probe the child ran
first (model.embedding.print_probe) next to the actual time, the load average before and after, and
whether umap-learn's numba code was already compiled and cached. Run it under `nice -n 10` to give the
children the priority they get from the page's analysis thread (nice 19).
The constants in model/embedding.py (REF_RATE, TSNE_COST, UMAP_*) are fitted from these lines.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def latent_like(n: int) -> np.ndarray:
    from model.data import load_dataset

    x = load_dataset("mnist").x_test.reshape(10_000, -1).astype(np.float32) / 255
    x -= x.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    z = (x @ vt[:8].T) / s[:8] * np.sqrt(len(x))
    return np.resize(z, (n, 8)) + np.random.default_rng(0).normal(0, 1e-3, (n, 8)).astype(np.float32)


def timed_child(argv) -> tuple[float, list[tuple[float, str]]]:
    """`python -m argv` at run_child's priority: (seconds, [(seconds since start, line)])."""
    import subprocess

    from model.child import child_priority

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    child_priority(proc.pid)
    lines = [(time.perf_counter() - t0, line.strip()) for line in proc.stdout]
    proc.wait()
    if proc.returncode:
        raise SystemExit("\n".join(s for _, s in lines[-5:]))
    return time.perf_counter() - t0, lines


def main() -> None:
    from model import embedding

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[2000, 10_000])
    p.add_argument("--z", help="an (N, d) .npy of latent means instead of MNIST's principal components")
    p.add_argument("--neighbors", type=int, default=embedding.UMAP_NEIGHBORS)
    p.add_argument("--skip-tsne", action="store_true")
    a = p.parse_args()
    for n in a.n:
        z = np.load(a.z)[:n] if a.z else latent_like(n)
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "z.npy", Path(tmp) / "xy.npy"
            np.save(src, z.astype(np.float32))
            load0 = os.getloadavg()
            print(f"n={n} load {load0[0]:.2f}", flush=True)
            if not a.skip_tsne:
                secs, lines = timed_child(["model.analysis", src, out, 0])
                rate = embedding.probe_line([s for _, s in lines])
                est = embedding.estimate_seconds("t-SNE", n, rate)
                print(f"  t-SNE {secs:.1f} s, estimate {est:.1f} s (x{secs / est:.2f}), probe {rate:.0f}/s")
            compiled = embedding.umap_compiled()
            secs, lines = timed_child(["model.embedding", "umap", src, out, 0, a.neighbors, 0.1])
            rate = embedding.probe_line([s for _, s in lines])
            est = embedding.estimate_seconds("UMAP", n, rate, compiled, a.neighbors)
            imported = next(t for t, s in lines if s.startswith("[umap] imported"))
            first = next(t for t, s in lines if s.startswith("[umap] epoch"))
            print(
                f"  UMAP {secs:.1f} s (start-up {imported:.1f} s, prepare {first - imported:.1f} s, "
                f"epochs {secs - first:.1f} s; compiled before: {compiled}), "
                f"estimate {est:.1f} s (x{secs / est:.2f}), probe {rate:.0f}/s",
                flush=True,
            )
            print(f"  load after {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
