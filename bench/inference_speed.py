"""Inference speed of the numpy facade (model.latent.LatentModel) beside the seed's way (not a test).

    python bench/inference_speed.py                    # fresh float32 model, latent 2
    python bench/inference_speed.py --rounds 7 --json inference.json
    python bench/inference_speed.py --precision mixed_bfloat16

Three tasks, each timed in our way and in the seed's way (its Keras 2 code on tf_keras, the models
built by bench/seed_baseline.py's `seed_code`, untrained: weights do not change the timings):
  decode one    one latent vector -> one image     ours: LatentModel.decode(z)      seed: decoder.predict(z)
  manifold      the 30x30 grid of digits           ours: LatentModel.manifold(30)   seed: 900 decoder.predict
                                                                                     calls (plot_results loop)
  encode 10k    the 10k MNIST test images -> z     ours: LatentModel.encode(x)      seed: encoder.predict(x,
                                                                                     batch_size=128)
Our figures are warm (the compiled functions already traced: the app loads a model once and keeps it);
the first, cold call of each is printed too. The CPU column is the process CPU time of our call
(all threads): what the call costs, steadier than wall time on a shared machine. Ours and the seed's
alternate over --rounds so both see the same load; each figure is the median over the rounds (for
decode one, of all its calls).
Goals: decode one <= 2 ms, manifold <= 0.15 s, encode 10k <= 1 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEED_SCRIPT = Path(os.environ.get("SEED_BASELINE", ROOT / "bench" / "seed_baseline.py"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
GOALS = {"decode_one_ms": 2.0, "manifold_ms": 150.0, "encode_10k_ms": 1000.0}


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def seed_models(data):
    """The seed's encoder and decoder (tf_keras), built by its own module-level code (no training)."""
    import contextlib
    import io

    spec = importlib.util.spec_from_file_location("seed_baseline", SEED_SCRIPT)
    sb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sb)
    g = {"__name__": "seed_module", "time": time, "_T": {}, "_load_mnist": lambda: data}
    with contextlib.redirect_stdout(io.StringIO()):  # its model summaries
        exec(compile(sb.seed_code(1), "seed_vae_cnn", "exec"), g)
    return g["encoder"], g["decoder"]


def our_model(latent_dim: int, precision: str):
    from model.latent import LatentModel
    from model.vae import VAEConfig, build_vae

    config = VAEConfig(latent_dim=latent_dim, precision=precision)
    vae = build_vae(config)
    return LatentModel(vae.encoder, vae.decoder, config)


CPU_MS: dict[str, list[float]] = {}  # task -> process CPU ms (all threads) of our calls


def timed(fn, cpu_key: str | None = None) -> float:
    """Wall ms of fn(); with cpu_key, also records the process CPU ms (all threads) it used."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    wall = 1000 * (time.perf_counter() - t0)
    if cpu_key:
        CPU_MS.setdefault(cpu_key, []).append(1000 * (time.process_time() - c0))
    return wall


def seed_manifold(decoder, n=30, digit_size=28):
    """The seed's plot_results loop: one decoder.predict per grid point."""
    import numpy as np

    figure = np.zeros((digit_size * n, digit_size * n))
    grid_x = np.linspace(-4, 4, n)
    grid_y = np.linspace(-4, 4, n)[::-1]
    for i, yi in enumerate(grid_y):
        for j, xi in enumerate(grid_x):
            x_decoded = decoder.predict(np.array([[xi, yi]]), verbose=0)
            figure[i * digit_size : (i + 1) * digit_size, j * digit_size : (j + 1) * digit_size] = x_decoded[
                0
            ].reshape(digit_size, digit_size)
    return figure


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default %(default)s)")
    p.add_argument("--calls", type=int, default=50, help="decode-one calls per round (default %(default)s)")
    p.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    p.add_argument(
        "--seed-manifold-rounds",
        type=int,
        default=1,
        help="rounds of the seed's 900-call manifold (default %(default)s; ~30 s each)",
    )
    p.add_argument("--no-seed", action="store_true", help="time ours only (no tf_keras needed)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)

    import numpy as np

    from model.data import load_dataset, to_float

    ds = load_dataset("mnist")
    x_test = ds.x_test
    load0 = _load()
    ours = our_model(2, args.precision)
    rng = np.random.default_rng(0)
    z_one = rng.standard_normal((1, 2)).astype(np.float32)
    cold = {
        "decode_one_ms": timed(lambda: ours.decode(z_one)),
        "manifold_ms": timed(lambda: ours.manifold(30)),
        "encode_10k_ms": timed(lambda: ours.encode(x_test)),
    }
    tasks = {
        "decode_one_ms": lambda: [
            timed(lambda: ours.decode(z_one), "decode_one_ms") for _ in range(args.calls)
        ],
        "manifold_ms": lambda: [timed(lambda: ours.manifold(30), "manifold_ms")],
        "encode_10k_ms": lambda: [timed(lambda: ours.encode(x_test), "encode_10k_ms")],
    }
    seed_tasks = {}
    if not args.no_seed:
        s_enc, s_dec = seed_models(((ds.x_train[:1], ds.y_train[:1]), (x_test, ds.y_test)))
        xs = to_float(x_test)
        z64 = z_one.astype(np.float64)
        s_dec.predict(z64, verbose=0), s_enc.predict(xs[:128], batch_size=128, verbose=0)  # warm up
        seed_tasks = {
            "decode_one_ms": lambda: [
                timed(lambda: s_dec.predict(z64, verbose=0)) for _ in range(max(1, args.calls // 5))
            ],
            "manifold_ms": lambda: [timed(lambda: seed_manifold(s_dec))],
            "encode_10k_ms": lambda: [timed(lambda: s_enc.predict(xs, batch_size=128, verbose=0))],
        }
    ours_t = {k: [] for k in tasks}
    seed_t = {k: [] for k in tasks}
    for r in range(args.rounds):
        for k in tasks:
            pair = [(ours_t, tasks[k])] + ([(seed_t, seed_tasks[k])] if seed_tasks else [])
            for store, fn in pair if r % 2 == 0 else pair[::-1]:
                if store is seed_t and k == "manifold_ms" and r >= args.seed_manifold_rounds:
                    continue  # 900 predict calls take ~30 s (minutes under load)
                store[k] += fn()
    result = {"load": [load0, _load()], "precision": args.precision, "cold_ms": cold, "rows": []}
    names = {
        "decode_one_ms": "decode one vector",
        "manifold_ms": "30x30 manifold",
        "encode_10k_ms": "encode 10k test",
    }
    seed_way = {
        "decode_one_ms": "decoder.predict(z)",
        "manifold_ms": "900 x decoder.predict",
        "encode_10k_ms": "encoder.predict(x, 128)",
    }
    print(
        f"load {load0:.1f} -> {_load():.1f}; ours = LatentModel ({args.precision}), warm; median over rounds"
    )
    print(
        "| task | ours (ms) | ours CPU (ms) | goal (ms) | seed's way | seed (ms) | speed-up |\n"
        "|---|---|---|---|---|---|---|"
    )
    for k in tasks:
        o = statistics.median(ours_t[k])
        s = statistics.median(seed_t[k]) if seed_t[k] else None
        row = {
            "task": k,
            "ours_ms": o,
            "ours_p90_ms": float(np.percentile(ours_t[k], 90)),
            "goal_ms": GOALS[k],
            "ours_cpu_ms": statistics.median(CPU_MS[k]),
            "meets_goal": o <= GOALS[k],
            "seed_ms": s,
            "speedup": s / o if s else None,
            "cold_ms": cold[k],
        }
        result["rows"].append(row)
        print(
            f"| {names[k]} | {o:.2f} | {row['ours_cpu_ms']:.2f} | {GOALS[k]:g} | {seed_way[k]} | "
            f"{'-' if s is None else f'{s:.1f}'} | {'-' if s is None else f'{s / o:.0f}x'} |"
        )
    print(
        "cold (first call, traces the function): "
        + ", ".join(f"{names[k]} {v:.0f} ms" for k, v in cold.items())
    )
    result["command"] = "python bench/inference_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
