"""Training speed and quality of our VAE beside the seed's own script, in one run (not a test).

    python bench/train_speed.py --concurrent --json train.json   # seed 30, default 30, fast 20 epochs
    python bench/train_speed.py --epochs 3                       # every run 3 epochs (a quick look)
    python bench/train_speed.py --epochs 2 --configs default "precision=mixed_bfloat16,batch_size=256"

Each run is its own process on the full MNIST training set (60k images, 10k test images):
  seed     the seed's script on tf_keras, taken from bench/seed_baseline.py (its `seed_code`
           and `load_mnist`), with an epoch timer added to its `vae.fit` and its plot_results skipped
  CONFIG   `model.train.train(config, store=None)`: `default` = VAEConfig() (the seed's settings),
           `fast` = VAEConfig.fast(), or `key=value,...` overrides of VAEConfig() fields
Each run trains its config's epochs (the seed: 30) unless --epochs sets one count for all.
Both record, per epoch, the wall time and the process CPU time (all threads); each run's log (in the
temp directory printed first) gets a line per epoch. Epoch 1 also traces the graphs, so the per-epoch
figure is the median of epochs 2..N (epoch 1 alone when N = 1). The CPU time is the steadier figure
on a shared machine: other processes stretch wall time, much less the CPU work a run needs. Runs go
back to back, alternating their order over --reps, or all at once with --concurrent (each then sees
the same load). The machine's load average is recorded around every run.

Quality: `val_loss` after the last epoch is the test-set loss both scripts report (mean over the 10k
test images of 784 * pixel BCE + KL, z sampled once per image), after each run's last epoch.
`epochs_to_seed` is the first epoch whose val_loss is at or below the seed's final one, and
`to_seed_speedup_cpu` (`_wall`) = the seed's CPU (wall) time for all its epochs / ours up to that epoch
(time to the seed's quality; wall figures mean something for back-to-back runs, not --concurrent ones).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED_SCRIPT = Path(os.environ.get("SEED_BASELINE", ROOT / "bench" / "seed_baseline.py"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MARK = "TRAIN_SPEED_RESULT "
SEED_EPOCHS = 30


def _load() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


# ----------------------------------------------------------------------------- workers (subprocesses)


def _epoch_timer(base):
    """A Keras callback class (tf_keras or keras 3) recording per-epoch wall and CPU seconds."""

    class EpochTimer(base):
        def __init__(self):
            super().__init__()
            self.wall, self.cpu = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._t, self._c = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self._t)
            self.cpu.append(time.process_time() - self._c)
            print(
                f"epoch {epoch + 1}: {self.wall[-1]:.1f} s wall, {self.cpu[-1]:.1f} s CPU, "
                f"val_loss {float((logs or {}).get('val_loss', float('nan'))):.2f}",
                file=sys.stderr,
                flush=True,
            )

    return EpochTimer()


def run_seed(epochs: int) -> dict:
    """The seed's script (tf_keras), timed per epoch; its plot_results is skipped."""
    if not SEED_SCRIPT.is_file():
        raise SystemExit(f"error: seed baseline not found at {SEED_SCRIPT}. Fix: set SEED_BASELINE=PATH.")
    spec = importlib.util.spec_from_file_location("seed_baseline", SEED_SCRIPT)
    sb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sb)
    code = sb.seed_code(epochs)
    for old, new in [
        ("validation_data=(x_test, None))", "validation_data=(x_test, None), callbacks=[_TIMER])"),
        ("plot_results(models, data,", "None and plot_results(models, data,"),
    ]:
        assert old in code, f"seed text changed: {old!r} not found"
        code = code.replace(old, new, 1)
    data = sb.load_mnist()
    import matplotlib
    import tf_keras

    matplotlib.use("Agg")
    timer = _epoch_timer(tf_keras.callbacks.Callback)
    out = tempfile.mkdtemp(prefix="seed-bench-")
    os.chdir(out)
    sys.argv = [sys.argv[0]]
    g = {"__name__": "__main__", "time": time, "_T": {}, "_load_mnist": lambda: data, "_TIMER": timer}
    exec(compile(code, "seed_vae_cnn", "exec"), g)
    hist = {k: [float(x) for x in v] for k, v in g["_T"].items() if isinstance(v, list)}
    return {
        "epoch_wall_s": timer.wall,
        "epoch_cpu_s": timer.cpu,
        "history": hist,
        "val_loss": hist["val_loss"][-1],
        "loss": hist["loss"][-1],
    }


def make_config(spec: str, epochs: int | None):
    """'default', 'fast' or 'key=value,...' (VAEConfig fields over the defaults) -> VAEConfig."""
    sys.path.insert(0, str(ROOT))
    from model.config import VAEConfig

    if spec == "default":
        config = VAEConfig()
    elif spec == "fast":
        config = VAEConfig.fast()
    else:
        names = {f.name for f in dataclasses.fields(VAEConfig)}
        kw = {}
        for item in filter(None, spec.split(",")):
            key, _, value = item.partition("=")
            if key not in names:
                raise SystemExit(
                    f"error: unknown VAEConfig field {key!r} in {spec!r}. Expected 'default', "
                    f"'fast' or key=value pairs of {sorted(names)}."
                )
            try:
                kw[key] = json.loads(value)  # numbers, null
            except ValueError:
                kw[key] = value  # names
        config = VAEConfig(**kw)
    return config if epochs is None else dataclasses.replace(config, epochs=epochs)


def run_ours(spec: str, epochs: int | None) -> dict:
    """model.train.train on the full training set, timed per epoch; nothing is saved."""
    config = make_config(spec, epochs)
    import keras

    from model.train import train

    timer = _epoch_timer(keras.callbacks.Callback)
    latent, _, vae = train(config, store=None, verbose=0, callbacks=[timer])
    hist = {k: [float(x) for x in v] for k, v in vae.history.history.items()}
    test = latent.evaluate(latent_test_images())
    return {
        "epoch_wall_s": timer.wall,
        "epoch_cpu_s": timer.cpu,
        "history": hist,
        "config": config.to_dict(),
        "val_loss": hist["val_loss"][-1],
        "loss": hist["loss"][-1],
        "test_metrics": test,
    }


def latent_test_images():
    from model.data import load_dataset

    return load_dataset("mnist").x_test


def worker(name: str, epochs: int | None) -> None:
    t0, load0 = time.perf_counter(), _load()
    result = run_seed(epochs or SEED_EPOCHS) if name == "seed" else run_ours(name, epochs)
    result.update(
        name=name,
        epochs=len(result["epoch_wall_s"]),
        total_s=time.perf_counter() - t0,
        load_before=load0,
        load_after=_load(),
    )
    print(MARK + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- driver


def launch(name: str, epochs: int | None, log_dir: Path) -> subprocess.Popen:
    log = open(log_dir / f"{len(list(log_dir.iterdir())):02d}-{name.replace('/', '_')[:40]}.log", "w")
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", name, *(["--epochs", str(epochs)] if epochs else [])],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=ROOT,
    )


def collect(proc: subprocess.Popen, name: str) -> dict:
    out, _ = proc.communicate()
    for line in out.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise SystemExit(
        f"error: run {name!r} failed (exit {proc.returncode}); see its log. Output:\n{out[-2000:]}"
    )


def steady(xs: list[float]) -> float:
    """Per-epoch figure: median of epochs 2..N (epoch 1 also builds and traces the graphs)."""
    return statistics.median(xs[1:] if len(xs) > 1 else xs)


def summarise(runs: list[dict], names: list[str]) -> dict:
    by = {n: [r for r in runs if r["name"] == n] for n in names}
    seed = by.get("seed", [])
    seed_wall = statistics.median(steady(r["epoch_wall_s"]) for r in seed) if seed else None
    seed_cpu = statistics.median(steady(r["epoch_cpu_s"]) for r in seed) if seed else None
    seed_val = statistics.median(r["val_loss"] for r in seed) if seed else None
    rows = []
    for n, rs in by.items():
        wall = statistics.median(steady(r["epoch_wall_s"]) for r in rs)
        cpu = statistics.median(steady(r["epoch_cpu_s"]) for r in rs)
        val = statistics.median(r["val_loss"] for r in rs)
        reach = to_seed = to_seed_wall = None
        if seed_val is not None:
            hits = [i + 1 for i, v in enumerate(rs[0]["history"].get("val_loss", [])) if v <= seed_val]
            reach = hits[0] if hits else None
            if reach:
                seed_total = statistics.median(sum(r["epoch_cpu_s"]) for r in seed)
                to_seed = seed_total / sum(rs[0]["epoch_cpu_s"][:reach])
                seed_total_wall = statistics.median(sum(r["epoch_wall_s"]) for r in seed)
                to_seed_wall = seed_total_wall / sum(rs[0]["epoch_wall_s"][:reach])
        rows.append(
            {
                "name": n,
                "runs": len(rs),
                "epoch_wall_s": wall,
                "epoch_cpu_s": cpu,
                "first_epoch_wall_s": statistics.median(r["epoch_wall_s"][0] for r in rs),
                "speedup_wall": seed_wall / wall if seed_wall else None,
                "speedup_cpu": seed_cpu / cpu if seed_cpu else None,
                "epochs": rs[0]["epochs"],
                "val_loss": val,
                "loss": statistics.median(r["loss"] for r in rs),
                "total_cpu_s": statistics.median(sum(r["epoch_cpu_s"]) for r in rs),
                "total_wall_s": statistics.median(sum(r["epoch_wall_s"]) for r in rs),
                "test_loss": rs[0].get("test_metrics", {}).get("loss"),
                "epochs_to_seed": reach,
                "to_seed_speedup_cpu": to_seed,
                "to_seed_speedup_wall": to_seed_wall,
                "load": [r["load_before"][0] for r in rs] + [rs[-1]["load_after"][0]],
            }
        )
    return {"rows": rows}


def print_table(summary: dict) -> None:
    f = lambda v, p=2: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
    print(
        "\nper-epoch time = median of epochs 2..N; speed-up = seed / run; "
        "test loss after the run's last epoch"
    )
    head = (
        "run",
        "epochs",
        "s/epoch wall",
        "s/epoch CPU",
        "speed-up/epoch wall",
        "speed-up/epoch CPU",
        "training wall s",
        "training CPU s",
        "test loss (val_loss)",
        "epochs to seed's loss",
        "speed-up to seed's loss (wall)",
        "speed-up to seed's loss (CPU)",
        "load 1-min",
    )
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in summary["rows"]:
        print(
            "| "
            + " | ".join(
                [
                    r["name"],
                    str(r["epochs"]),
                    f(r["epoch_wall_s"]),
                    f(r["epoch_cpu_s"]),
                    f(r["speedup_wall"]),
                    f(r["speedup_cpu"]),
                    f(r["total_wall_s"], 0),
                    f(r["total_cpu_s"], 0),
                    f(r["val_loss"]),
                    "-" if r["epochs_to_seed"] is None else str(r["epochs_to_seed"]),
                    f(r.get("to_seed_speedup_wall")),
                    f(r["to_seed_speedup_cpu"]),
                    "/".join(f"{x:.1f}" for x in r["load"]),
                ]
            )
            + " |"
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--epochs", type=int, help="epochs for every run (default: the seed 30, each config its own)"
    )
    p.add_argument(
        "--configs",
        nargs="+",
        default=["default", "fast"],
        help="our configs: default, fast, or key=value,... (default: %(default)s)",
    )
    p.add_argument("--no-seed", action="store_true", help="skip the seed baseline")
    p.add_argument("--reps", type=int, default=1, help="repeat the whole set, alternating the order")
    p.add_argument("--concurrent", action="store_true", help="start each repetition's runs at once")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument(
        "--summarise", metavar="JSON", help="print the table of an earlier --json file; run nothing"
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.summarise:
        old = json.loads(Path(args.summarise).read_text())
        names = list(dict.fromkeys(r["name"] for r in old["runs"]))
        print(old.get("command", ""))
        print_table(summarise(old["runs"], names))
        return 0
    if (args.epochs is not None and args.epochs < 1) or args.reps < 1:
        p.error("--epochs and --reps must be positive")
    if args.worker:
        worker(args.worker, args.epochs)
        return 0
    for c in args.configs:
        make_config(c, args.epochs)  # fail early on a bad spec
    names = ([] if args.no_seed else ["seed"]) + list(args.configs)
    log_dir = Path(tempfile.mkdtemp(prefix="train-speed-"))
    print(f"{platform.node()} {os.cpu_count()} CPUs; load {_load()}; logs in {log_dir}", flush=True)
    runs = []
    for rep in range(args.reps):
        order = names if rep % 2 == 0 else names[::-1]
        if args.concurrent:
            procs = [(n, launch(n, args.epochs, log_dir)) for n in order]
            runs += [collect(pr, n) for n, pr in procs]
        else:
            for n in order:
                runs.append(collect(launch(n, args.epochs, log_dir), n))
                r = runs[-1]
                print(
                    f"  rep {rep + 1} {n}: {steady(r['epoch_wall_s']):.2f} s/epoch wall, "
                    f"{steady(r['epoch_cpu_s']):.2f} s CPU, val_loss {r['val_loss']:.2f}, "
                    f"load {r['load_before'][0]:.1f}->{r['load_after'][0]:.1f}",
                    flush=True,
                )
    summary = summarise(runs, names)
    summary.update(
        epochs=args.epochs,
        reps=args.reps,
        concurrent=args.concurrent,
        runs=runs,
        command="python bench/train_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        cpus=os.cpu_count(),
        date=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    print_table(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
