"""A job's files and its live status: the layout under `home()/jobs/`, reading and recording states.

`job_status` gathers what `model.jobs.status` needs (status.json, the progress events, whether the
process lives, the model the store holds for the job) and records a final state in status.json.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from model.config import VAEConfig
from model.errors import JobError, StoreError
from model.jobs import procs
from model.jobs.status import JobStatus, Verdict, build, checked_status, derive
from model.paths import HOME_ENV, atomic_write_text, home
from model.progress import read_events
from model.store import ModelStore


def jobs_root() -> Path:
    """`home()/jobs`, created if needed; JobError (with the fix) if that is impossible."""
    try:
        root = home() / "jobs"
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        where = e.filename or os.environ.get(HOME_ENV) or "the latent explorer home"
        raise JobError(
            f"Cannot create the jobs directory {where}: {e.strerror or e}. "
            f"Fix: set {HOME_ENV} to a writable directory."
        ) from None
    if not os.access(root, os.W_OK):
        raise JobError(
            f"The jobs directory {root} is not writable. "
            "Fix: set LATENT_EXPLORER_HOME to a writable directory."
        )
    return root


def read_json(path: Path) -> dict | None:
    """A job file's JSON object, or None if it is missing, unreadable, not JSON or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def read_status(path: Path) -> dict | None:
    """A job's status.json with every field checked (`model.jobs.status.checked_status`), or None."""
    data = read_json(path)
    return None if data is None else checked_status(data)


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


def latest_job_id() -> str | None:
    """The id latest.json names, if it is a job directory's name (a plain, non-hidden file name)."""
    job_id = (read_json(jobs_root() / "latest.json") or {}).get("id")
    if not isinstance(job_id, str) or not job_id or job_id.startswith(".") or "/" in job_id or "\\" in job_id:
        return None
    return job_id


def list_jobs() -> list[str]:
    """Job ids, newest first."""
    return sorted((p.name for p in jobs_root().iterdir() if (p / "status.json").is_file()), reverse=True)


_EVENTS_CACHE: dict[str, tuple[tuple, list]] = {}


def events(path: Path) -> list[dict]:
    """read_events, cached on (size, mtime) so polling a long job every second stays cheap."""
    try:
        st = path.stat()
    except OSError:
        return []
    key = (st.st_size, st.st_mtime_ns)
    hit = _EVENTS_CACHE.get(str(path))
    if hit and hit[0] == key:
        return hit[1]
    evs = read_events(path)
    if len(_EVENTS_CACHE) > 16:
        _EVENTS_CACHE.clear()
    _EVENTS_CACHE[str(path)] = (key, evs)
    return evs


def log_tail(job_dir: Path, n: int = 8000) -> str:
    try:
        with open(job_dir / "log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def saved_model(job_id: str, config: dict) -> tuple[str, bool] | None:
    """(id, is it current) of the model this job saved (its meta.json names the job), or None. Reads
    only the meta.json of models with the job config's id prefix (every model's, if the config is bad)."""
    try:
        store = ModelStore()
    except StoreError:
        return None
    if not store.root.is_dir():
        return None
    try:
        pattern = f"{VAEConfig.from_dict(config, strict=False).slug()}-*"
    except (TypeError, ValueError, AttributeError):
        pattern = "*"
    for p in store.root.glob(pattern):
        if p.name.startswith("."):
            continue
        try:
            rec = store.record(p.name)
        except StoreError:
            continue
        if rec.extra.get("job") == job_id:
            return rec.id, store.current_id() == rec.id
    return None


LOST = (
    "error: the sweep driver following this {backend} job (pid {pid}) stopped before the job ended, so "
    "the job is lost. Fix: start the sweep again (its finished configs are reused, not retrained)"
)


def verdict(status: dict, evs: list[dict], job_dir: Path) -> Verdict:
    """The state of the job in `job_dir`: `model.jobs.status.derive` fed from its files and the store.

    For a job of a remote backend (status.json `backend`, e.g. "ray") `pid` is the sweep driver that
    relays the job's events and saves its model: once it is gone without a final event, the job is lost."""
    backend = status.get("backend", "local")

    def tail() -> str:
        text = log_tail(job_dir)
        if backend != "local":
            text += "\n" + LOST.format(backend=backend, pid=status.get("pid"))
        return text

    return derive(
        evs,
        alive=procs.process_alive(status.get("pid"), status.get("pid_start")),
        cancelled=(job_dir / "cancel").exists(),
        returncode=status.get("returncode"),
        log_tail=tail,
        saved=lambda: saved_model(job_dir.name, status.get("config") or {}),
    )


def finalize(job_dir: Path, returncode: int | None = None) -> None:
    """Record the final state in status.json (idempotent; any process may do it)."""
    status = read_status(job_dir / "status.json")
    if status is None:
        return
    if returncode is not None:
        status["returncode"] = returncode
    evs = events(job_dir / "progress.jsonl")
    v = verdict(status, evs, job_dir)
    if v.state == "running":
        return
    final = [e for e in evs if e.get("event") in ("done", "error")]
    status.update(
        state=v.state,
        model_id=v.model_id,
        error=v.error,
        warning=v.warning,
        ended=status.get("ended") or (final[-1]["time"] if final else time.time()),
    )
    try:
        write_json(job_dir / "status.json", status)
    except OSError:
        pass  # a read-only viewer, or a full disk: the derived state is still reported


def job_status(job_id: str) -> JobStatus:
    """The status of a job, live (read from its files; cheap enough to poll every second)."""
    job_dir = jobs_root() / job_id
    status = read_status(job_dir / "status.json")
    if status is None:
        raise JobError(
            f"No training job {job_id!r} in {job_dir.parent}. Fix: start one, or pick one of "
            f"{list_jobs()[:5]}."
        )
    evs = events(job_dir / "progress.jsonl")
    v = verdict(status, evs, job_dir)
    reaper = procs.reapers.get(job_id)
    done = any(e.get("event") == "done" for e in evs)
    if v.state != "running" and not done and status.get("returncode") is None and reaper is not None:
        reaper.join(timeout=2.0)  # our child just died: let the reaper record its exit code (the message)
        status = read_status(job_dir / "status.json") or status
        v = verdict(status, evs, job_dir)
    if v.state != "running" and status.get("state") == "running":
        finalize(job_dir)
        status = read_status(job_dir / "status.json") or status
    return build(job_id, status, evs, v, cancel_requested=(job_dir / "cancel").exists())


def latest_job() -> JobStatus | None:
    job_id = latest_job_id()
    if job_id is None:
        return None
    try:
        return job_status(job_id)
    except JobError:
        return None


def active_job() -> JobStatus | None:
    """The running job, if any (whoever started it)."""
    js = latest_job()
    return js if js is not None and js.active else None


def wait_job(job_id: str, timeout: float = 600.0, poll: float = 0.2) -> JobStatus:
    """Block until the job is no longer running (for scripts and tests)."""
    deadline = time.time() + timeout
    while True:
        js = job_status(job_id)
        if not js.active or time.time() > deadline:
            return js
        time.sleep(poll)
