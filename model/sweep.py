"""Sweeps: a grid of training configs, one job per point, on the local runner or a Ray cluster.

    python -m model.sweep --grid beta=0.5,1,2,4 --grid latent_dim=2,8 [any train flag]
                          [--ray ADDRESS] [--cpus-per-job N] [--gpus-per-job N] [--json FILE]

prints one row per job as it goes (config, state, epoch/batch, loss, ETA), then a table (model id,
test loss, reconstruction, KL, 5-NN accuracy), writes that table with --json FILE and exits 0 only when
every job succeeded (1 otherwise; 2 for a bad flag). Ctrl-C cancels the sweep.

The API (a UI builds on it; nothing here imports TensorFlow or Ray):

    grid = parse_grid(["beta=0.5,2", "latent_dim=2,8"])  # {"kl_weight": [0.5, 2.0], "latent_dim": [2, 8]}
    configs = expand(VAEConfig(epochs=5), grid)          # list[VAEConfig], the product, first key slowest
    info = start_sweep(configs, backend=None, cpus_per_job=1, gpus_per_job=0)   # SweepInfo, at once
    st = sweep_status(info.id)                           # SweepStatus: id, state, backend, fields, rows
    for row in st.rows: row.config, row.job, row.model_id, row.reused, row.state, row.error
    cancel_sweep(info.id)                                # every job (and no new ones)
    cancel_sweep(info.id, job_id)                        # one job
    list_sweeps(); latest_sweep_id()

- `parse_grid(items) -> dict[str, list]`: "field=v1,v2,..." items; keys are VAEConfig field names
  or their flags and aliases (`model.config.field_name`: "beta" is kl_weight, "latent-dim", "lr"),
  values read and checked by the field's option (`model.config.parse_value`: int, float, a choice,
  "none" for an optional field). ValueError names a bad key or value and the fix.
- `field_name(key) -> str`: the field a grid key names (ValueError "Unknown grid field ...").
- `expand(base, grid) -> list[VAEConfig]`: the grid's product applied to `base`, duplicates dropped.
- `start_sweep(configs, *, backend=None, cpus_per_job=1, gpus_per_job=0, fields=None) -> SweepInfo`
  (id, path, backend, address, fields, reused: {row index: model id}). `backend`: None (the
  LATENT_EXPLORER_RAY_ADDRESS cluster if set, else local), "local", "ray", or a Ray address ("auto",
  "ray://host:10001", "host:6379"). Configs already in the store (`ModelStore.find`) are reused, not
  retrained (row.reused, row.state "reused"). The rest run in a detached driver process,
  `python -m model.sweep run SWEEP_DIR`: on `local` one after another through `model.jobs.start_job`,
  on `ray` all at once as Ray tasks (model.jobs.backends). JobError if it cannot start.
- `sweep_status(sweep_id) -> SweepStatus`: id, state (running | succeeded | failed | cancelled),
  backend, address, fields (the swept VAEConfig field names), rows (one `SweepRow` per config, in grid
  order: index, config, job (a model.jobs.JobStatus, or None before its job starts or when reused),
  model_id, reused, state (reused | pending | running | succeeded | failed | cancelled), error),
  created, ended, error (the driver's own failure, e.g. no Ray cluster), cancel_requested. Derived
  from the sweep's files, the jobs' files and whether the driver lives, so any process (another tab,
  the CLI, after the app restarted) sees the same; a dead driver's unstarted rows are failed ("lost").
- `cancel_sweep(sweep_id, job_id=None) -> SweepStatus`.
- `list_sweeps() -> list[str]` (newest first), `latest_sweep_id() -> str | None`.

Layout under `home()/sweeps/<id>/`: sweep.json (configs, backend, fields, reused), driver.json (pid,
start time), jobs.json ({row index: {"job": id, "state", "model_id", "error"}}, written by the driver),
end.json (the driver's end and its error), cancel (cancel every job), log (the driver's output).
Each job lives under `home()/jobs/<id>/` like any job (model.jobs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from model.errors import JobError, StoreError
from model.paths import atomic_write_text
from model.store import ModelStore
from model.sweep_run import expand, field_name, parse_grid, run, start_sweep, swept_fields
from model.sweep_state import (
    ROW_STATES,
    SweepError,
    SweepInfo,
    SweepRow,
    SweepStatus,
    cancel_sweep,
    latest_sweep_id,
    list_sweeps,
    sweep_status,
    sweeps_root,
)

__all__ = [
    "ROW_STATES",
    "SweepError",
    "SweepInfo",
    "SweepRow",
    "SweepStatus",
    "cancel_sweep",
    "expand",
    "field_name",
    "latest_sweep_id",
    "list_sweeps",
    "main",
    "parse_grid",
    "run",
    "start_sweep",
    "sweep_status",
    "sweeps_root",
    "swept_fields",
]


# ----------------------------------------------------------------------------- the command line


def _fmt(v, spec=".2f") -> str:
    return "-" if v is None else format(v, spec)


def row_line(row: SweepRow, fields: list[str], n: int) -> str:
    head = f"[{row.index + 1}/{n}] {row.label(fields)}: {row.state}"
    js = row.job
    if row.reused:
        return f"{head} (model {row.model_id} already in the store: not retrained)"
    if js is None:
        return head + (f": {row.error}" if row.error else "")
    if js.active and not js.steps:  # waiting for resources, loading TensorFlow and the data
        return f"{head} ({js.phase}), {js.elapsed:.0f} s"
    if js.active:
        eta = f", ETA {js.eta:.0f} s" if js.eta is not None else ""
        return (
            f"{head} ({js.phase}), epoch {js.epoch}/{js.epochs}, batch {js.step}/{js.steps}, "
            f"loss {_fmt(js.loss)}{eta}"
        )
    if row.state == "succeeded":
        return f"{head}, model {row.model_id}, {js.elapsed:.0f} s"
    return head + (f": {row.error}" if row.error else "")


def results(st: SweepStatus, knn: bool = True) -> list[dict]:
    """The final table: one dict per row (config, state, job, reused, model id, test loss, reconstruction,
    KL, 5-NN accuracy, error), the metrics read from the store (kNN: from the quality cache, computed
    and cached when missing)."""
    store = ModelStore()
    out = []
    for row in st.rows:
        rec = None
        if row.model_id:
            try:
                rec = store.record(row.model_id)
            except StoreError:
                rec = None
        m = rec.test_metrics if rec else {}
        out.append(
            {
                **{k: row.config.to_dict()[k] for k in st.fields},
                "state": row.state,
                "reused": row.reused,
                "job": row.job.id if row.job else None,
                "model_id": row.model_id,
                "test_loss": m.get("loss"),
                "reconstruction_loss": m.get("reconstruction_loss"),
                "kl_loss": m.get("kl_loss"),
                "knn_accuracy": _knn(store, rec) if (knn and rec) else None,
                "error": row.error,
                "config": row.config.to_dict(),
            }
        )
    return out


def _knn(store: ModelStore, rec) -> float | None:
    """5-NN accuracy of the model's latent means (model.quality), cached with the quality results."""
    from model import quality

    hit = quality.cached(rec.id)
    if hit.get("knn_k") == 5 and hit.get("knn_accuracy") is not None:
        return hit["knn_accuracy"]
    try:
        from model.data import load_dataset
        from model.latent import LatentModel  # lazy: loading needs Keras

        model = LatentModel.from_record(store.record(rec.id))
        r = quality.knn_accuracy(model, load_dataset(rec.config.dataset), k=5)
    except Exception as e:  # a model that cannot load, a user dataset that is gone: no accuracy
        print(f"note: no 5-NN accuracy for {rec.id}: {e}", file=sys.stderr)
        return None
    result = {
        "knn_accuracy": r["knn_accuracy"],
        "knn_chance": r["chance"],
        "knn_k": r["k"],
        "knn_n_train": r["n_train"],
        "knn_n_test": r["n_test"],
    }
    try:
        quality._store_result(rec.id, result)
    except (OSError, TimeoutError):
        pass
    return r["knn_accuracy"]


def print_table(table: list[dict], fields: list[str]) -> None:
    cols = [*fields, "state", "model_id", "test_loss", "reconstruction_loss", "kl_loss", "knn_accuracy"]
    heads = [
        *("beta" if f == "kl_weight" else f for f in fields),
        "state",
        "model id",
        "test loss",
        "recon",
        "KL",
        "5-NN acc",
    ]
    cells = []
    for r in table:
        row = []
        for c in cols:
            v = r.get(c)
            if c == "knn_accuracy" and v is not None:
                row.append(f"{100 * v:.1f}%")
            elif isinstance(v, float) and c not in fields:
                row.append(f"{v:.2f}")
            else:
                row.append("-" if v is None else str(v))
        cells.append(row)
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(heads)]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    for r in table:
        if r["error"]:
            print(f"{r['state']}: {r['error']}")


NOT_CONFIG = ("weights", "out", "progress", "no_store", "no_figures", "no_files", "summary")


def parser() -> argparse.ArgumentParser:
    from model import train

    p = train.parser()
    p.prog = "python -m model.sweep"
    p.description = __doc__.split("\n\nThe API")[0]
    g = p.add_argument_group("sweep")
    g.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="FIELD=V1,V2,...",
        help="a VAEConfig field and its values (repeat for more fields; beta = kl_weight)",
    )
    g.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="train on Ray: auto, ray://HOST:10001 or HOST:6379 (default: $LATENT_EXPLORER_RAY_ADDRESS "
        "if set, else the local runner, one job at a time)",
    )
    g.add_argument("--cpus-per-job", type=float, default=1.0, help="Ray CPUs per job (default 1)")
    g.add_argument("--gpus-per-job", type=float, default=0.0, help="Ray GPUs per job (default 0)")
    g.add_argument("--json", metavar="FILE", help="write the final table to FILE")
    return p


def _follow(sweep_id: str, n: int) -> SweepStatus:
    """Print a row's line when its state or phase changes (a running row every 10 s) until the sweep
    ends; its final status."""
    last: dict[int, tuple] = {}
    while True:
        st = sweep_status(sweep_id)
        now = time.time()
        for row in st.rows:
            js = row.job
            key = (row.state, js.phase if js else None)
            prev = last.get(row.index)
            if prev is None or prev[0] != key or (row.state == "running" and now - prev[1] >= 10):
                last[row.index] = (key, now)
                print(row_line(row, st.fields, n), flush=True)
        if not st.active:
            return st
        time.sleep(1.0)


def main(argv=None) -> int:
    from model import train

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"] and len(argv) == 2:
        return run(Path(argv[1]))
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    given = [k for k in NOT_CONFIG if getattr(args, k, None) != p.get_default(k)]
    if getattr(args, "npz", None):
        given.append("npz")
    try:
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ValueError(
                f"{flag} is not a sweep option (a sweep trains configs into the store). Fix: drop {flag}."
            )
        grid = parse_grid(args.grid)
        configs = expand(train.config_from_args(args), grid)
        info = start_sweep(
            configs,
            backend=args.ray,
            cpus_per_job=args.cpus_per_job,
            gpus_per_job=args.gpus_per_job,
            fields=list(grid),
        )
    except (ValueError, JobError) as e:
        print(f"error: {e} (see `python -m model.sweep --help`)", file=sys.stderr)
        return 2
    n = len(configs)
    where = f"Ray at {info.address}" if info.backend == "ray" else "the local runner, one job at a time"
    print(f"sweep {info.id}: {n} configs on {where}", flush=True)
    try:
        st = _follow(info.id, n)
    except KeyboardInterrupt:
        print("interrupted: cancelling the sweep", file=sys.stderr)
        cancel_sweep(info.id)
        while sweep_status(info.id).active:
            time.sleep(0.5)
        st = sweep_status(info.id)
    if st.error:
        print(f"error: {st.error}", file=sys.stderr)
    table = results(st)
    print()
    print_table(table, st.fields)
    if args.json:
        try:
            atomic_write_text(
                Path(args.json),
                json.dumps(
                    {
                        "sweep": st.id,
                        "state": st.state,
                        "backend": st.backend,
                        "fields": st.fields,
                        "rows": table,
                    },
                    indent=1,
                ),
            )
        except OSError as e:
            print(f"error: cannot write {args.json}: {e.strerror or e}", file=sys.stderr)
            return 1
    return 0 if st.state == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
