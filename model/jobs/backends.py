"""Where a job trains: one interface, two backends.

    backend = make_backend("local")                 # or make_backend("auto"), ("ray://head:10001")...
    job_id = backend.submit(config)                 # None: not now (local: another job is running)
    backend.status(job_id)                          # JobStatus, from the job's files (model.jobs)
    backend.cancel(job_id)                          # model.jobs.cancel_job
    backend.poll(0.5)                               # the follower's loop: wait, relay, collect

Both keep a job in `home()/jobs/<id>/` with the same files (status.json, progress.jsonl, cancel, log),
so `model.jobs.job_status`, the page and `python -m model.jobs status` read any job the same way.

- `LocalBackend` (the default): `model.jobs.start_job`, unchanged: one job process at a time on this
  machine (the job lock), niced, kill-safe. A sweep runs its jobs one after another.
- `RayBackend` (`--ray ADDRESS` / LATENT_EXPLORER_RAY_ADDRESS): each job is one Ray task
  (`model.jobs.remote.train_job` under `ray.remote(num_cpus=..., num_gpus=..., max_retries=0)`); Ray
  places the tasks on the cluster as its resources allow. The process holding the backend (the sweep
  driver, `python -m model.sweep run SWEEP_DIR`) follows its jobs: it is the job's `pid` in
  status.json, drains the workers' progress events from one `ray.util.queue.Queue` into each job's
  progress.jsonl, turns a job's `cancel` file into `ray.cancel` (then `force=True` after the grace
  period), and writes each returned model into the store with `ModelStore.save_bytes` (the one atomic
  writer; no shared filesystem). A task that raised or whose worker died becomes an `error` event with
  the reason. If the driver dies, its jobs have no live follower and no final event: model.jobs
  reports them failed ("lost"), never running; a model is in the store whole or not at all.

  Tasks, not Ray Tune: a job is one function call with resources, cancel and a return value, which is
  what a task is. Tune would add its own trial runner, result directory and reporting, next to the
  store and progress files the app already reads.

Nothing here imports Ray until a RayBackend is made: the local path needs nothing new.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from model.config import VAEConfig
from model.data import dataset_names, is_builtin
from model.errors import DataError, JobError, StoreError, TrainingError
from model.jobs import procs
from model.jobs.files import finalize, job_status, jobs_root, write_json
from model.jobs.launch import CANCEL_GRACE_S, CONFIG, cancel_job, start_job
from model.jobs.status import JobStatus
from model.paths import home
from model.progress import write_event
from model.store import ModelStore

RAY_ADDRESS_ENV = "LATENT_EXPLORER_RAY_ADDRESS"
MODEL_PACKAGE = Path(__file__).resolve().parents[1]  # shipped to Ray workers (runtime_env py_modules)
INTERRUPTED = "interrupted; nothing was saved and the previous models are untouched"


def resolve(backend: str | None) -> tuple[str, str | None]:
    """("local", None) or ("ray", address) for a backend name or a Ray address.

    None: LATENT_EXPLORER_RAY_ADDRESS if set, else local. "local". "ray": the env address, else "auto".
    "auto" (an existing local Ray cluster, else a new local instance), "ray://host:10001" or
    "host:6379" (a cluster)."""
    if backend is None:
        env = os.environ.get(RAY_ADDRESS_ENV, "").strip()
        return ("ray", env) if env else ("local", None)
    name = str(backend).strip()
    if name == "local":
        return "local", None
    if name == "ray":
        return "ray", os.environ.get(RAY_ADDRESS_ENV, "").strip() or "auto"
    if name == "auto" or name.startswith("ray://") or ":" in name:
        return "ray", name
    raise JobError(
        f"Expected a backend: 'local', 'ray', 'auto', 'ray://HOST:10001' or 'HOST:6379'. "
        f"Received: {backend!r}. Fix: pass --ray auto for a local Ray instance, or a cluster address."
    )


def check_resources(cpus_per_job, gpus_per_job) -> tuple[float, float]:
    try:
        cpus, gpus = float(cpus_per_job), float(gpus_per_job)
    except (TypeError, ValueError):
        cpus, gpus = -1.0, -1.0
    if not cpus > 0 or not gpus >= 0:
        raise JobError(
            f"Expected --cpus-per-job > 0 and --gpus-per-job >= 0. Received: cpus_per_job="
            f"{cpus_per_job!r}, gpus_per_job={gpus_per_job!r}. Fix: e.g. --cpus-per-job 1 --gpus-per-job 0."
        )
    return cpus, gpus


class Backend:
    """submit / status / cancel / poll: what a sweep driver needs from a place to train."""

    name = "?"

    def submit(self, config: VAEConfig, *, sweep_id: str | None = None) -> str | None:
        raise NotImplementedError

    def status(self, job_id: str) -> JobStatus:
        return job_status(job_id)

    def cancel(self, job_id: str) -> None:
        cancel_job(job_id)

    def busy(self) -> bool:
        """Whether `submit` must wait (local: our job is still running)."""
        return False

    def poll(self, timeout: float) -> None:
        time.sleep(timeout)

    def close(self) -> None:
        pass


class LocalBackend(Backend):
    name = "local"

    def __init__(self):
        self.mine: list[str] = []

    def submit(self, config: VAEConfig, *, sweep_id: str | None = None) -> str | None:
        try:
            info = start_job(config)
        except JobError:
            if procs.lock_held(jobs_root() / "job.lock"):  # the previous job's process is still exiting
                return None
            raise
        if not info.new:  # someone else's job holds the machine: try again later
            return None
        self.mine.append(info.id)
        return info.id

    def busy(self) -> bool:
        return any(self.status(j).active for j in self.mine)


class RayBackend(Backend):
    """Jobs as Ray tasks, followed by this process (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str, cpus_per_job: float = 1, gpus_per_job: float = 0):
        self.address = address
        self.cpus, self.gpus = check_resources(cpus_per_job, gpus_per_job)
        self.refs: dict[str, object] = {}  # job id -> ObjectRef of its task
        self.cancelled_at: dict[str, float] = {}
        self.forced: set[str] = set()
        self.submitted: dict[str, float] = {}
        self._connect()

    def _connect(self) -> None:
        import ray  # lazy: only the Ray backend needs it
        from ray.util.queue import Queue

        runtime_env = {
            "py_modules": [str(MODEL_PACKAGE)],
            "excludes": ["__pycache__", "*.pyc"],
            "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"},
        }
        try:
            if self.address == "auto":
                try:
                    ray.init(address="auto", runtime_env=runtime_env, logging_level="warning")
                except ConnectionError:  # no cluster running here: start a local instance
                    ray.init(runtime_env=runtime_env, include_dashboard=False, logging_level="warning")
            else:
                ray.init(address=self.address, runtime_env=runtime_env, logging_level="warning")
        except Exception as e:  # ConnectionError, AuthenticationError, a bad address...
            raise JobError(
                f"Could not connect to the Ray cluster at {self.address!r} ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:300] if str(e) else ''}). Fix: start it (`ray start --head`), "
                "check the address (ray://HOST:10001 or HOST:6379), and with token authentication "
                "set RAY_AUTH_MODE=token and the cluster's token (~/.ray/auth_token or RAY_AUTH_TOKEN)."
            ) from None
        from model.jobs.remote import train_job

        self.ray = ray
        self.queue = Queue(actor_options={"num_cpus": 0})
        self.task = ray.remote(train_job).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0, name="latent-explorer-train"
        )

    # ------------------------------------------------------------------ submit
    def submit(self, config: VAEConfig, *, sweep_id: str | None = None) -> str | None:
        if not isinstance(config, VAEConfig):
            raise TypeError(f"Expected a VAEConfig. Received: {type(config).__name__}.")
        cfg = config.to_dict()
        if not is_builtin(cfg["dataset"]):
            raise JobError(
                f"Expected a built-in dataset {dataset_names()} on Ray (its workers load the data "
                "themselves). "
                f"Received: dataset={cfg['dataset']!r}. Fix: train a user .npz with the local backend."
            )
        root = jobs_root()
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        job_dir = root / job_id
        job_dir.mkdir()
        write_json(job_dir / CONFIG, cfg)
        now = time.time()
        write_json(
            job_dir / "status.json",
            {
                "id": job_id,
                "state": "running",
                "backend": "ray",
                "address": self.address,
                "sweep": sweep_id,
                "config": cfg,
                "pid": os.getpid(),  # the follower: this process relays the job and saves its model
                "pid_start": procs.start_time(os.getpid()),
                "started": now,
                "ended": None,
                "returncode": None,
                "model_id": None,
                "error": None,
                "resources": {"num_cpus": self.cpus, "num_gpus": self.gpus},
            },
        )
        self._log(job_dir, f"submitted to Ray at {self.address} (cpus {self.cpus:g}, gpus {self.gpus:g})")
        self.refs[job_id] = self.task.remote(
            cfg, job_id, self.queue, data_home=str(home()), cpus=max(1, int(self.cpus))
        )
        self.submitted[job_id] = now
        return job_id

    @staticmethod
    def _log(job_dir: Path, line: str) -> None:
        try:
            with open(job_dir / "log", "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        except OSError:
            pass

    # ------------------------------------------------------------------ follow
    def _drain(self) -> None:
        """Write the workers' progress events into their jobs' progress.jsonl (in arrival order)."""
        from ray.util.queue import Empty

        root = jobs_root()
        while True:
            try:
                n = self.queue.qsize()
                batch = self.queue.get_nowait_batch(n) if n else []
            except Empty:
                batch = []
            if not batch:
                return
            for job_id, ev in batch:
                if job_id not in self.refs:  # a job already ended: its last events are late
                    continue
                fields = {k: v for k, v in ev.items() if k not in ("event", "time")}
                path = root / job_id / "progress.jsonl"
                write_event(path, ev["event"], **fields)

    def poll(self, timeout: float) -> None:
        ray = self.ray
        self._drain()
        now = time.time()
        root = jobs_root()
        for job_id, ref in list(self.refs.items()):
            if not (root / job_id / "cancel").exists():
                continue
            if job_id not in self.cancelled_at:
                self.cancelled_at[job_id] = now
                self._log(root / job_id, "cancel requested: ray.cancel")
                ray.cancel(ref)
            elif now - self.cancelled_at[job_id] > CANCEL_GRACE_S and job_id not in self.forced:
                self.forced.add(job_id)
                self._log(root / job_id, f"still running after {CANCEL_GRACE_S:g} s: ray.cancel(force=True)")
                ray.cancel(ref, force=True)
        if not self.refs:
            time.sleep(timeout)
            return
        ready, _ = ray.wait(list(self.refs.values()), num_returns=len(self.refs), timeout=timeout)
        if ready:
            self._drain()
            for job_id, ref in list(self.refs.items()):
                if ref in ready:
                    self._finish(job_id, ref)

    def _finish(self, job_id: str, ref) -> None:
        """The task ended: save its model, or write why it did not; then record the job's end."""
        from ray import exceptions as rx

        job_dir = jobs_root() / job_id
        progress = job_dir / "progress.jsonl"
        error = None
        try:
            result = self.ray.get(ref)
        except rx.TaskCancelledError:
            error = INTERRUPTED
        except rx.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, KeyboardInterrupt) or (job_dir / "cancel").exists():
                error = INTERRUPTED
            elif isinstance(cause, (DataError, StoreError, TrainingError, ValueError, JobError)):
                error = str(cause)  # their messages carry the fix
            else:
                print(f"job {job_id}: {e}", flush=True)  # the worker's traceback, into the sweep log
                what = f"{type(cause).__name__}: {str(cause)[:300]}" if cause else str(e).splitlines()[0]
                error = f"Training crashed on the Ray worker: {what}. Fix: see the sweep log."
        except rx.RayError as e:  # the worker died (WorkerCrashedError), its node was lost...
            error = (
                f"The Ray worker training this job died ({type(e).__name__}: "
                f"{(str(e).strip().splitlines() or [''])[0][:300]}). Fix: check the worker's memory and "
                "`ray logs`, then start the sweep again; the previous models are untouched."
            )
        else:
            if (job_dir / "cancel").exists():
                error = INTERRUPTED
            else:
                error = self._save(job_id, result, progress)
        if error is not None:
            self._log(job_dir, f"error: {error}")
            try:
                write_event(progress, "error", message=error)
            except OSError:
                pass
        del self.refs[job_id]
        finalize(job_dir)

    def _save(self, job_id: str, result: dict, progress: Path) -> str | None:
        """Write the returned model into the store; the `done` event. An error message, or None."""
        try:
            store = ModelStore()
            config = VAEConfig.from_dict(result["config"])
            extra = {
                **(result.get("extra") or {}),
                "job": job_id,
                "backend": "ray",
                "host": result.get("host"),
            }
            record = store.save_bytes(
                result["parts"],
                config,
                history=result.get("history"),
                test_metrics=result.get("test_metrics"),
                train_seconds=result.get("train_seconds", 0.0),
                extra=extra,
                files=result.get("files"),
            )
        except (StoreError, ValueError, TypeError, KeyError) as e:
            return f"The model trained but could not be saved: {e}"
        self._log(jobs_root() / job_id, f"saved model {record.id} (trained on {result.get('host')})")
        write_event(progress, "done", model_id=record.id, test_metrics=record.test_metrics)
        return None

    def close(self) -> None:
        for ref in self.refs.values():
            self.ray.cancel(ref, force=True)
        try:
            self.ray.shutdown()
        except Exception:
            pass


def make_backend(backend: str | None = None, *, cpus_per_job: float = 1, gpus_per_job: float = 0) -> Backend:
    kind, address = resolve(backend)
    if kind == "local":
        return LocalBackend()
    return RayBackend(address, cpus_per_job, gpus_per_job)
