"""Starting and cancelling a job: one training process at a time, across threads and processes.

The job gets its config as `config.json` in its directory (`VAEConfig.to_dict()`), read back by the
worker with `VAEConfig.from_dict`: one config object from the panel to the saved model, no field
re-typed on the way.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from model.config import VAEConfig
from model.jobs import procs
from model.jobs.files import (
    JobError,
    active_job,
    finalize,
    job_status,
    jobs_root,
    latest_job_id,
    list_jobs,
    read_status,
    write_json,
)
from model.jobs.status import JobStatus
from model.paths import atomic_write_text

KEEP_JOBS = 20  # finished job directories kept (newest first)
NICE_ENV = "LATENT_EXPLORER_JOB_NICE"  # niceness of the training process (default 10: it yields the
NICE = 10  # CPU to the app, so slider decodes stay fast while it trains)
CANCEL_GRACE_S = 5.0  # SIGINT lets the trainer clean up; SIGKILL after this many seconds
MIN_FREE_BYTES = 20 * 2**20  # refuse to start with less free disk than this
CONFIG = "config.json"  # in the job directory: the VAEConfig to train, as a dict


@dataclass(frozen=True)
class JobInfo:
    """A started (or already running) job."""

    id: str
    path: Path
    config: VAEConfig
    pid: int | None
    new: bool  # False: a job was already running and this is that one


def _reap(proc: subprocess.Popen, job_dir: Path) -> None:
    rc = proc.wait()
    finalize(job_dir, returncode=rc)


def _prune(root: Path, keep: str) -> None:
    for job_id in list_jobs()[KEEP_JOBS:]:
        if job_id != keep:
            status = read_status(root / job_id / "status.json") or {}
            if status.get("state") != "running":
                shutil.rmtree(root / job_id, ignore_errors=True)


def _spawn(root: Path, job_dir: Path, cfg: dict) -> subprocess.Popen:
    """Create the job directory (config.json, log), start the job process, write status.json and
    latest.json; on any failure remove what was made and raise JobError."""
    try:
        job_dir.mkdir()
        write_json(job_dir / CONFIG, cfg)
        proc, cmd = procs.spawn_module(["model.jobs", "run", str(job_dir)], job_dir, job_dir / "log")
    except OSError as e:
        shutil.rmtree(job_dir, ignore_errors=True)
        raise JobError(
            f"Could not start the training process ({e.strerror or e}). "
            "Fix: free disk space or set LATENT_EXPLORER_HOME to a writable directory."
        ) from None
    try:
        os.setpriority(os.PRIO_PROCESS, proc.pid, int(os.environ.get(NICE_ENV, NICE)))
    except (OSError, AttributeError, ValueError):
        pass
    status = {
        "id": job_dir.name,
        "state": "running",
        "config": cfg,
        "argv": cmd,
        "pid": proc.pid,
        "pid_start": procs.start_time(proc.pid),
        "started": time.time(),
        "ended": None,
        "returncode": None,
        "model_id": None,
        "error": None,
        "launcher_pid": os.getpid(),
    }
    try:
        write_json(job_dir / "status.json", status)
        write_json(root / "latest.json", {"id": job_dir.name})
    except OSError as e:
        proc.kill()
        proc.wait()
        shutil.rmtree(job_dir, ignore_errors=True)
        raise JobError(
            f"Could not write the job status in {job_dir} ({e.strerror or e}). "
            "Fix: free disk space or set LATENT_EXPLORER_HOME to a writable directory."
        ) from None
    return proc


def start_job(config: VAEConfig) -> JobInfo:
    """Start training `config` in a background process.

    Only one job runs at a time, across sessions and processes: if one is running, it is returned
    (with `new=False`) instead of starting another. On success the trainer saves the model
    atomically and offers it as the default model (`ModelStore.offer_as_default`). Raises JobError if
    the job cannot start.
    """
    if not isinstance(config, VAEConfig):
        raise TypeError(
            f"Expected a VAEConfig. Received: {type(config).__name__}. "
            "Fix: start_job(VAEConfig(...)), or VAEConfig.from_dict(d) for a dict of its fields."
        )
    cfg = config.to_dict()
    root = jobs_root()
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        free = MIN_FREE_BYTES
    if free < MIN_FREE_BYTES:
        raise JobError(
            f"Only {free / 2**20:.1f} MiB free on the disk holding {root}. "
            "Fix: free disk space (a model needs a few MiB) or set LATENT_EXPLORER_HOME elsewhere."
        )
    try:
        launch = FileLock(root / "launch.lock")
        launch.acquire(timeout=30)
    except Timeout:
        raise JobError(f"Timed out waiting for {root / 'launch.lock'}. Fix: retry in a moment.") from None
    except OSError as e:
        raise JobError(
            f"Cannot create {root / 'launch.lock'} ({e.strerror}). "
            "Fix: set LATENT_EXPLORER_HOME to a writable directory."
        ) from None
    try:
        running = active_job()
        if running is not None:
            try:
                config = VAEConfig.from_dict(running.config, strict=False)
            except (TypeError, ValueError) as e:
                raise JobError(
                    f"A training job ({running.id}) is running with an unreadable config ({e}). "
                    "Fix: cancel it, then start again."
                ) from None
            return JobInfo(running.id, root / running.id, config, running.pid, new=False)
        if procs.lock_held(root / "job.lock", wait=5.0):  # a job that just ended may still be exiting
            raise JobError(
                f"Another training process holds {root / 'job.lock'}. Fix: wait for it to "
                "finish (or stop it), then start again."
            )
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        job_dir = root / job_id
        proc = _spawn(root, job_dir, cfg)
        reaper = threading.Thread(target=_reap, args=(proc, job_dir), name=f"reap-{job_id}", daemon=True)
        reaper.start()
        procs.reapers[job_id] = reaper
        _prune(root, keep=job_id)
        return JobInfo(job_id, job_dir, config, proc.pid, new=True)
    finally:
        launch.release()


def cancel_job(job_id: str | None = None, grace: float = CANCEL_GRACE_S) -> JobStatus | None:
    """Ask the running job (or `job_id`) to stop: SIGINT now, SIGKILL after `grace` seconds (a job on
    Ray: the `cancel` file, which the sweep driver following the job turns into `ray.cancel`).

    Returns at once with the job's status (its state turns to "cancelled" when the process is gone).
    Nothing half-written is left: the store saves by renaming a finished temp directory.
    """
    job_id = job_id or latest_job_id()
    if job_id is None:
        return None
    js = job_status(job_id)
    if not js.active:
        return js
    job_dir = jobs_root() / job_id
    atomic_write_text(job_dir / "cancel", str(time.time()))
    status = read_status(job_dir / "status.json") or {}
    if status.get("backend", "local") != "local":  # a Ray task: its sweep driver sees the file and
        return job_status(job_id)  # cancels the task (model.jobs.backends)
    pid, pid_start = status.get("pid"), status.get("pid_start")
    threading.Thread(
        target=_stop, args=(job_id, job_dir, pid, pid_start, grace), name=f"cancel-{job_id}", daemon=True
    ).start()
    return job_status(job_id)


def _stop(job_id: str, job_dir: Path, pid: int, pid_start: int | None, grace: float) -> None:
    """SIGINT, then SIGKILL if the process still runs after `grace` seconds; record the end if no
    reaper of ours will."""
    if not procs.process_alive(pid, pid_start):
        return
    try:
        os.kill(pid, signal.SIGINT)
    except OSError:
        return
    deadline = time.time() + grace
    while time.time() < deadline:
        if not procs.process_alive(pid, pid_start):
            break
        time.sleep(0.1)
    else:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if job_id not in procs.reapers:  # not our child: nobody else will record the end
        time.sleep(0.2)
        finalize(job_dir)
