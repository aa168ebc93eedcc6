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
import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from model import config
from model.config import VAEConfig
from model.errors import JobError, StoreError
from model.jobs import procs
from model.jobs.files import job_status, read_json, write_json
from model.jobs.status import JobStatus
from model.paths import HOME_ENV, atomic_write_text, home, shown
from model.store import ModelStore

REPO_ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.5
ROW_STATES = ("reused", "pending", "running", "succeeded", "failed", "cancelled")


class SweepError(JobError):
    """A sweep cannot start or be found; the message names the fix."""


# ----------------------------------------------------------------------------- grid


def field_name(key: str) -> str:
    """The VAEConfig field a grid key names (a field, its flag or alias: "beta", "latent-dim", "lr")."""
    try:
        return config.field_name(key)
    except ValueError as e:
        raise ValueError(f"Unknown grid field {str(key).strip()!r}. {e}") from None


def parse_grid(items: list[str]) -> dict[str, list]:
    """{"field": [values]} from "field=v1,v2,..." items (see the module docstring)."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = str(item).partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ValueError(
                f"Expected a grid item FIELD=V1,V2,... Received: {item!r}. Fix: e.g. --grid beta=0.5,1,2"
            )
        name = field_name(key)
        if name in grid:
            raise ValueError(f"Grid field {name!r} given twice. Fix: give all its values in one --grid.")
        parsed = []
        for text in values.split(","):
            if not text.strip():
                raise ValueError(f"Empty value in --grid {item!r}. Fix: remove the extra comma.")
            try:
                value = config.parse_value(name, text)
                VAEConfig(**{name: value})
            except (TypeError, ValueError) as e:
                raise ValueError(f"Bad value in --grid {item!r}: {e}") from None
            if value not in parsed:
                parsed.append(value)
        grid[name] = parsed
    return grid


def expand(base: VAEConfig, grid: dict[str, list]) -> list[VAEConfig]:
    """One config per point of the grid (first key slowest), `base` for the other fields; no duplicates."""
    keys = list(grid)
    out: list[VAEConfig] = []
    seen = set()
    for values in itertools.product(*(grid[k] for k in keys)):
        cfg = dataclasses.replace(base, **dict(zip(keys, values)))
        if cfg.fingerprint() not in seen:
            seen.add(cfg.fingerprint())
            out.append(cfg)
    return out


def swept_fields(configs: list[VAEConfig]) -> list[str]:
    """The fields whose values differ between `configs`, in VAEConfig order."""
    dicts = [c.to_dict() for c in configs]
    return [f.name for f in dataclasses.fields(VAEConfig) if len({json.dumps(d[f.name]) for d in dicts}) > 1]


# ----------------------------------------------------------------------------- files


def sweeps_root() -> Path:
    try:
        root = home() / "sweeps"
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SweepError(
            f"Cannot create the sweeps directory: {e.strerror or e}. "
            f"Fix: set {HOME_ENV} to a writable directory."
        ) from None
    return root


def list_sweeps() -> list[str]:
    """Sweep ids, newest first."""
    return sorted((p.name for p in sweeps_root().iterdir() if (p / "sweep.json").is_file()), reverse=True)


def latest_sweep_id() -> str | None:
    return (read_json(sweeps_root() / "latest.json") or {}).get("id")


@dataclass(frozen=True)
class SweepInfo:
    id: str
    path: Path
    backend: str  # "local" | "ray"
    address: str | None  # the Ray address
    fields: list[str]
    reused: dict[int, str]  # row index -> model id of a config already in the store
    pid: int | None  # the driver (None when every config was reused)


@dataclass
class SweepRow:
    index: int
    config: VAEConfig
    job: JobStatus | None = None
    model_id: str | None = None
    reused: bool = False
    state: str = "pending"  # one of ROW_STATES
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("reused", "succeeded")

    def label(self, fields: list[str]) -> str:
        d = self.config.to_dict()
        return " ".join(f"{'beta' if k == 'kl_weight' else k}={d[k]}" for k in fields) or self.config.slug()


@dataclass
class SweepStatus:
    id: str
    state: str  # running | succeeded | failed | cancelled
    backend: str
    address: str | None
    fields: list[str]
    rows: list[SweepRow] = field(default_factory=list)
    created: float = 0.0
    ended: float | None = None
    error: str | None = None
    cancel_requested: bool = False

    @property
    def active(self) -> bool:
        return self.state == "running"


def _sweep_dir(sweep_id: str) -> Path:
    if not isinstance(sweep_id, str) or not sweep_id or "/" in sweep_id or sweep_id.startswith("."):
        raise SweepError(f"Invalid sweep id {sweep_id!r}. Fix: pick one of list_sweeps().")
    path = sweeps_root() / sweep_id
    if not (path / "sweep.json").is_file():
        raise SweepError(f"No sweep {sweep_id!r} in {path.parent}. Fix: pick one of {list_sweeps()[:5]}.")
    return path


# ----------------------------------------------------------------------------- start


def _reap(proc: subprocess.Popen) -> None:
    proc.wait()


def start_sweep(
    configs: list[VAEConfig],
    *,
    backend: str | None = None,
    cpus_per_job: float = 1,
    gpus_per_job: float = 0,
    fields: list[str] | None = None,
) -> SweepInfo:
    """Start a sweep over `configs` and return at once (see the module docstring)."""
    from model.jobs.backends import check_resources, resolve

    kind, address = resolve(backend)
    cpus, gpus = check_resources(cpus_per_job, gpus_per_job)
    unique, seen = [], set()
    for c in configs:
        if not isinstance(c, VAEConfig):
            raise SweepError(f"Expected VAEConfig objects. Received: {type(c).__name__}.")
        if c.fingerprint() not in seen:
            seen.add(c.fingerprint())
            unique.append(c)
    if not unique:
        raise SweepError("Expected at least one config. Received: none. Fix: give --grid FIELD=V1,V2.")
    if kind == "ray":
        bad = [c.dataset for c in unique if c.dataset not in ("mnist", "fashion_mnist")]
        if bad:
            raise SweepError(
                f"Expected built-in datasets on Ray (its workers load the data themselves). Received: "
                f"{bad[0]!r}. Fix: sweep a user .npz with the local backend."
            )
    try:
        store = ModelStore()
        reused = {}
        for i, c in enumerate(unique):
            rec = store.find(c)
            if rec is not None:
                reused[i] = rec.id
    except StoreError as e:
        raise SweepError(str(e)) from None
    root = sweeps_root()
    sweep_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    path = root / sweep_id
    fields = list(fields) if fields is not None else swept_fields(unique)
    meta = {
        "id": sweep_id,
        "created": time.time(),
        "backend": kind,
        "address": address,
        "cpus_per_job": cpus,
        "gpus_per_job": gpus,
        "fields": fields,
        "configs": [c.to_dict() for c in unique],
        "reused": {str(i): m for i, m in reused.items()},
    }
    try:
        path.mkdir()
        write_json(path / "sweep.json", meta)
    except OSError as e:
        raise SweepError(f"Cannot write {path}: {e.strerror or e}. Fix: free disk space.") from None
    pid = None
    if len(reused) == len(unique):
        write_json(path / "end.json", {"ended": time.time(), "error": None})
    else:
        pid = _spawn_driver(path)
    write_json(root / "latest.json", {"id": sweep_id})
    return SweepInfo(sweep_id, path, kind, address, fields, reused, pid)


def _spawn_driver(path: Path) -> int:
    cmd = [sys.executable, "-m", "model.sweep", "run", str(path)]
    env = dict(
        os.environ,
        LATENT_EXPLORER_HOME=str(home()),
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    try:
        with open(path / "log", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as e:
        raise SweepError(
            f"Could not start the sweep driver ({e.strerror or e}). Fix: free disk space."
        ) from None
    st = procs.proc_stat(proc.pid)
    write_json(
        path / "driver.json",
        {
            "pid": proc.pid,
            "pid_start": st[1] if st and st[1] >= 0 else None,
            "started": time.time(),
            "argv": cmd,
        },
    )
    threading.Thread(target=_reap, args=(proc,), name=f"reap-sweep-{path.name}", daemon=True).start()
    return proc.pid


# ----------------------------------------------------------------------------- status


LOST = (
    "Lost: the sweep driver stopped before this config's job started. "
    "Fix: start the sweep again (finished configs are reused, not retrained)."
)


def sweep_status(sweep_id: str) -> SweepStatus:
    """The live status of a sweep, from its files (cheap enough to poll every second)."""
    path = _sweep_dir(sweep_id)
    meta, configs = _read_meta(path)
    driver = read_json(path / "driver.json") or {}
    end = read_json(path / "end.json")
    jobs = {k: v for k, v in (read_json(path / "jobs.json") or {}).items() if isinstance(v, dict)}
    alive = end is None and procs.process_alive(_int(driver.get("pid")), _number(driver.get("pid_start")))
    if end is None and not driver and time.time() - meta["created"] < 10:
        alive = True  # start_sweep is writing driver.json
    cancel_all = (path / "cancel").exists()
    reused = meta["reused"]
    rows = []
    for i, cfg in enumerate(configs):
        row = SweepRow(i, cfg)
        rec = jobs.get(str(i)) or {}
        if str(i) in reused:
            row.reused, row.state, row.model_id = True, "reused", reused[str(i)]
        elif rec.get("job"):
            try:
                row.job = job_status(rec["job"])
                row.state, row.model_id, row.error = row.job.state, row.job.model_id, row.job.error
            except JobError:  # its directory was pruned: what the driver recorded
                row.state = rec.get("state") or "failed"
                row.model_id, row.error = rec.get("model_id"), rec.get("error")
        elif rec.get("error"):
            row.state, row.error = "failed", rec["error"]
        elif cancel_all:
            row.state = "cancelled"
        elif alive:
            row.state = "pending"
        else:
            row.state, row.error = "failed", (end or {}).get("error") or LOST
        rows.append(row)
    if alive or any(r.state == "running" for r in rows):
        state = "running"
    elif all(r.ok for r in rows):
        state = "succeeded"
    elif any(r.state == "failed" for r in rows):
        state = "failed"
    else:
        state = "cancelled"
    return SweepStatus(
        id=sweep_id,
        state=state,
        backend=meta["backend"],
        address=meta["address"],
        fields=meta["fields"],
        rows=rows,
        created=meta["created"],
        ended=None if state == "running" else _number((end or {}).get("ended")),
        error=_text((end or {}).get("error")),
        cancel_requested=cancel_all,
    )


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _int(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _text(v) -> str | None:
    return v if isinstance(v, str) else None


def _read_meta(path: Path) -> tuple[dict, list[VAEConfig]]:
    """sweep.json's fields, each checked, and its configs; a damaged file is a SweepError saying so."""
    meta = read_json(path / "sweep.json")
    damaged = (
        f"The sweep {path.name}'s sweep.json is damaged or not a sweep's ({{}}). "
        f"Fix: delete the folder {shown(path)}; its models stay in the store."
    )
    configs = (meta or {}).get("configs")
    if not isinstance(configs, list) or not configs:
        raise SweepError(damaged.format("no list of configs"))
    try:
        configs = [VAEConfig.from_dict(c, strict=False) for c in configs]
    except (TypeError, ValueError) as e:
        raise SweepError(damaged.format(f"a config cannot be read: {e}")) from None
    reused = meta.get("reused")
    fields_ = meta.get("fields")
    checked = {
        "backend": meta.get("backend") if meta.get("backend") in ("local", "ray") else "local",
        "address": _text(meta.get("address")),
        "fields": [f for f in fields_ if isinstance(f, str)] if isinstance(fields_, list) else [],
        "created": _number(meta.get("created")) or 0.0,
        "reused": {k: v for k, v in reused.items() if isinstance(v, str)} if isinstance(reused, dict) else {},
    }
    return checked, configs


def cancel_sweep(sweep_id: str, job_id: str | None = None) -> SweepStatus:
    """Cancel one job of the sweep (`job_id`), or all of them and every job not started yet."""
    from model.jobs import cancel_job

    path = _sweep_dir(sweep_id)
    st = sweep_status(sweep_id)
    jobs = [r.job.id for r in st.rows if r.job is not None and r.job.active]
    if job_id is not None:
        if job_id not in [r.job.id for r in st.rows if r.job is not None]:
            raise SweepError(f"No job {job_id!r} in sweep {sweep_id}. Fix: pick one of its rows' jobs.")
        jobs = [job_id] if job_id in jobs else []
    else:
        atomic_write_text(path / "cancel", str(time.time()))
    for j in jobs:
        cancel_job(j)
    return sweep_status(sweep_id)


# ----------------------------------------------------------------------------- the driver


def _record(path: Path, jobs: dict, index: int, **fields) -> None:
    jobs[str(index)] = {**jobs.get(str(index), {}), **fields}
    write_json(path / "jobs.json", jobs)


def run(path: Path) -> int:
    """The sweep driver (`python -m model.sweep run SWEEP_DIR`): submit the sweep's jobs to its backend
    and follow them until every one ended; the exit code is 0 when all succeeded."""
    from model.jobs.backends import make_backend

    path = Path(path)
    meta = read_json(path / "sweep.json") or {}
    jobs = read_json(path / "jobs.json") or {}
    reused = meta.get("reused") or {}
    todo = [
        (i, VAEConfig.from_dict(c))
        for i, c in enumerate(meta.get("configs") or [])
        if str(i) not in reused and str(i) not in jobs
    ]
    error = None
    backend = None
    try:
        print(
            f"sweep {meta.get('id')}: {len(todo)} jobs on {meta.get('backend')} {meta.get('address') or ''}"
        )
        backend = make_backend(
            meta.get("address") if meta.get("backend") == "ray" else "local",
            cpus_per_job=meta.get("cpus_per_job", 1),
            gpus_per_job=meta.get("gpus_per_job", 0),
        )
        started: dict[int, str] = {int(i): r["job"] for i, r in jobs.items() if r.get("job")}
        ended: set[int] = set()
        while True:
            if (path / "cancel").exists():
                todo = []
                for i, j in started.items():
                    if i not in ended and backend.status(j).active and not backend.status(j).cancel_requested:
                        backend.cancel(j)
            while todo and not backend.busy():
                i, cfg = todo[0]
                try:
                    job_id = backend.submit(cfg, sweep_id=meta.get("id"))
                except JobError as e:
                    _record(path, jobs, i, error=str(e))
                    todo.pop(0)
                    continue
                if job_id is None:
                    break
                todo.pop(0)
                started[i] = job_id
                _record(path, jobs, i, job=job_id, state="running")
                print(f"row {i}: job {job_id} ({cfg.slug()})", flush=True)
            for i, j in started.items():
                if i in ended:
                    continue
                js = backend.status(j)
                if not js.active:
                    ended.add(i)
                    _record(path, jobs, i, state=js.state, model_id=js.model_id, error=js.error)
                    print(f"row {i}: job {j} {js.state} {js.model_id or js.error or ''}", flush=True)
            if not todo and len(ended) == len(started):
                break
            backend.poll(POLL_S)
    except JobError as e:
        error = str(e)
        print(f"error: {error}", flush=True)
    except KeyboardInterrupt:
        error = "The sweep driver was interrupted. Fix: start the sweep again (finished configs are reused)."
    finally:
        if backend is not None:
            backend.close()
        write_json(path / "end.json", {"ended": time.time(), "error": error})
    st = sweep_status(path.name)
    return 0 if st.state == "succeeded" else 1


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
    last: dict[int, tuple] = {}
    try:
        while True:
            st = sweep_status(info.id)
            now = time.time()
            for row in st.rows:
                js = row.job
                key = (row.state, js.phase if js else None)
                prev = last.get(row.index)
                if prev is None or prev[0] != key or (row.state == "running" and now - prev[1] >= 10):
                    last[row.index] = (key, now)
                    print(row_line(row, st.fields, n), flush=True)
            if not st.active:
                break
            time.sleep(1.0)
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
