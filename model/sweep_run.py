"""Running a sweep: the grid (parse_grid, expand), starting one (start_sweep spawns a detached driver) and
the driver itself (`python -m model.sweep run SWEEP_DIR`). The API and the file layout: model/sweep.py."""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path

from model import config
from model.config import VAEConfig
from model.data import is_builtin
from model.errors import JobError, StoreError
from model.jobs import procs, read_json, write_json
from model.store import ModelStore
from model.sweep_state import SweepError, SweepInfo, sweep_status, sweeps_root

POLL_S = 0.5


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
    from model.jobs import check_resources, resolve

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
        bad = [c.dataset for c in unique if not is_builtin(c.dataset)]
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
    try:
        proc, cmd = procs.spawn_module(["model.sweep", "run", str(path)], path, path / "log", "ab")
    except OSError as e:
        raise SweepError(
            f"Could not start the sweep driver ({e.strerror or e}). Fix: free disk space."
        ) from None
    write_json(
        path / "driver.json",
        {
            "pid": proc.pid,
            "pid_start": procs.start_time(proc.pid),
            "started": time.time(),
            "argv": cmd,
        },
    )
    threading.Thread(target=_reap, args=(proc,), name=f"reap-sweep-{path.name}", daemon=True).start()
    return proc.pid


# ----------------------------------------------------------------------------- the driver


def _record(path: Path, jobs: dict, index: int, **fields) -> None:
    jobs[str(index)] = {**jobs.get(str(index), {}), **fields}
    write_json(path / "jobs.json", jobs)


def _cancel_started(backend, started: dict[int, str], ended: set[int]) -> None:
    for i, j in started.items():
        if i not in ended and backend.status(j).active and not backend.status(j).cancel_requested:
            backend.cancel(j)


def _submit(backend, path: Path, meta: dict, jobs: dict, todo: list, started: dict[int, str]) -> None:
    """Submit the next configs of `todo` (popped) while the backend has room."""
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


def _collect(backend, path: Path, jobs: dict, started: dict[int, str], ended: set[int]) -> None:
    """Record the jobs that ended since the last look."""
    for i, j in started.items():
        if i in ended:
            continue
        js = backend.status(j)
        if not js.active:
            ended.add(i)
            _record(path, jobs, i, state=js.state, model_id=js.model_id, error=js.error)
            print(f"row {i}: job {j} {js.state} {js.model_id or js.error or ''}", flush=True)


def run(path: Path) -> int:
    """The sweep driver (`python -m model.sweep run SWEEP_DIR`): submit the sweep's jobs to its backend
    and follow them until every one ended; the exit code is 0 when all succeeded."""
    from model.jobs import make_backend

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
                _cancel_started(backend, started, ended)
            _submit(backend, path, meta, jobs, todo, started)
            _collect(backend, path, jobs, started, ended)
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
