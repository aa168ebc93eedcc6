"""Background training jobs: one training process at a time, followed through files.

The job process is `python -m model.jobs run JOB_DIR -- TRAIN_ARGS`: it takes the job lock, then runs
`python -m model.train TRAIN_ARGS --progress JOB_DIR/progress.jsonl --no-files` in the same process
(a job keeps only the model in the store: no vae.weights.h5, TensorBoard logs or figures).

    info = start_job(VAEConfig(epochs=5))     # returns at once; the training runs in a subprocess
    job_status(info.id)                       # JobStatus: state, epoch/step, losses, ETA, model id...
    cancel_job()                              # SIGINT, then SIGKILL after a grace period

Layout under `home()/jobs/`:
    job.lock               held by the training process for its whole life (filelock.FileLock, taken
                           before TensorFlow loads); the kernel frees it when the process ends, even
                           on kill -9
    launch.lock            held for a moment by whoever starts a job, so check-then-spawn is atomic
                           across threads and processes
    latest.json            {"id": ...} the most recent job
    <job id>/status.json   config, pid, times, final state (atomic writes)
             progress.jsonl  model.progress events: start / batch / epoch / done / error
             log             the process's stdout and stderr
             cancel          exists once a cancel was requested

Nothing here imports TensorFlow: a UI can poll `job_status` cheaply. The state of a job is derived
from its files, so it is right whoever asks (another session, another process, after the launcher
died): a `done` event means succeeded. Without one, once the process is gone, the store decides: the
trainer writes the job's id into the model's meta.json, so a saved model naming the job means succeeded
(with a warning if something failed after the save: a kill, a full disk), and no such model means failed
(killed, crashed, an `error` event) or cancelled.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from model.paths import HOME_ENV, atomic_write_text, home, pid_alive
from model.progress import read_events

STATES = ("running", "succeeded", "failed", "cancelled")
KEEP_JOBS = 20  # finished job directories kept (newest first)
NICE_ENV = "LATENT_EXPLORER_JOB_NICE"  # niceness of the training process (default 10: it yields the
NICE = 10                              # CPU to the app, so slider decodes stay fast while it trains)
CANCEL_GRACE_S = 5.0  # SIGINT lets the trainer clean up; SIGKILL after this many seconds
MIN_FREE_BYTES = 20 * 2**20  # refuse to start with less free disk than this
TEST_IMAGES = 10_000  # validation set size of both built-in datasets (for the ETA)
SAVE_S = 2.0  # rough time to save a model (for the ETA)
REPO_ROOT = Path(__file__).resolve().parents[1]


class JobError(RuntimeError):
    """A job cannot be started or found; the message says how to fix it."""


@dataclass(frozen=True)
class JobInfo:
    """A started (or already running) job."""
    id: str
    path: Path
    config: dict
    pid: int | None
    new: bool  # False: a job was already running and this is that one


@dataclass
class JobStatus:
    """Everything a UI shows about one job, derived from its files."""
    id: str
    state: str  # running | succeeded | failed | cancelled
    phase: str  # starting (loading TensorFlow, data) | training | validating | saving | ended
    config: dict
    epochs: int
    steps: int = 0  # batches per epoch (0 until training starts)
    epochs_done: int = 0
    step: int = 0  # batches done in the epoch in progress
    loss: float | None = None  # latest training loss (Keras' running mean over the epoch)
    val_loss: float | None = None  # latest validation (test set) loss
    history: dict = field(default_factory=dict)  # per-epoch lists: loss, val_loss, kl_loss...
    curve: list = field(default_factory=list)  # [(epoch + step/steps, loss)] from batch events
    started: float = 0.0
    ended: float | None = None
    eta: float | None = None  # seconds left, None while unknown
    model_id: str | None = None  # the saved model, on success
    error: str | None = None  # what went wrong and how to fix it, on failure
    warning: str | None = None  # on success: what went wrong after the model was saved
    returncode: int | None = None
    pid: int | None = None
    cancel_requested: bool = False

    @property
    def active(self) -> bool:
        return self.state == "running"

    @property
    def elapsed(self) -> float:
        return max(0.0, (self.ended or time.time()) - self.started)

    @property
    def epoch(self) -> int:
        """1-based number of the epoch in progress (the last one once training is over)."""
        return min(self.epochs, self.epochs_done + 1)

    @property
    def fraction(self) -> float:
        """Training progress in [0, 1] (1 once all epochs ran, while the model is saved)."""
        if self.state == "succeeded":
            return 1.0
        if not self.epochs:
            return 0.0
        part = self.step / self.steps if self.steps else 0.0
        return min(1.0, (self.epochs_done + part) / self.epochs)


# ----------------------------------------------------------------------------- files

def jobs_root() -> Path:
    """`home()/jobs`, created if needed; JobError (with the fix) if that is impossible."""
    try:
        root = home() / "jobs"
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        where = e.filename or os.environ.get(HOME_ENV) or "the latent explorer home"
        raise JobError(f"Cannot create the jobs directory {where}: {e.strerror or e}. "
                       f"Fix: set {HOME_ENV} to a writable directory.") from None
    if not os.access(root, os.W_OK):
        raise JobError(f"The jobs directory {root} is not writable. "
                       "Fix: set LATENT_EXPLORER_HOME to a writable directory.")
    return root


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


def latest_job_id() -> str | None:
    data = _read_json(jobs_root() / "latest.json") or {}
    return data.get("id")


def list_jobs() -> list[str]:
    """Job ids, newest first."""
    return sorted((p.name for p in jobs_root().iterdir() if (p / "status.json").is_file()), reverse=True)


# ----------------------------------------------------------------------------- processes

def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a live pid, from /proc; None if it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ("?", -1)
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return fields[0], int(fields[19])


def _process_alive(pid: int | None, pid_start: int | None) -> bool:
    """Whether the job's process still runs: same pid *and* start time (pids are reused); zombies are dead."""
    if not pid:
        return False
    if Path("/proc/self/stat").exists():
        st = _proc_stat(pid)
        if st is None or st[0] in "ZX":
            return False
        return pid_start is None or st[1] < 0 or st[1] == pid_start
    return pid_alive(pid)  # no /proc (macOS): best effort


def _lock_held(path: Path, wait: float = 0.0) -> bool:
    """Whether another process (or thread) holds the file lock (still, after `wait` seconds)."""
    lock = FileLock(path)
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        return True
    lock.release()
    return False


# ----------------------------------------------------------------------------- status

_EVENTS_CACHE: dict[str, tuple[tuple, list]] = {}


def _events(path: Path) -> list[dict]:
    """read_events, cached on (size, mtime) so polling a long job every second stays cheap."""
    try:
        st = path.stat()
    except OSError:
        return []
    key = (st.st_size, st.st_mtime_ns)
    hit = _EVENTS_CACHE.get(str(path))
    if hit and hit[0] == key:
        return hit[1]
    events = read_events(path)
    if len(_EVENTS_CACHE) > 16:
        _EVENTS_CACHE.clear()
    _EVENTS_CACHE[str(path)] = (key, events)
    return events


def _finite(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _log_tail(job_dir: Path, n: int = 8000) -> str:
    try:
        with open(job_dir / "log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)):?\s*(.*)$")


def death_message(returncode: int | None, log: str) -> str:
    """Why a training process ended without a final event, from its exit code and log tail."""
    if returncode is not None and returncode < 0:
        try:
            how = f"was killed ({signal.Signals(-returncode).name})"
        except ValueError:
            how = f"was killed (signal {-returncode})"
    elif returncode:
        how = f"exited with code {returncode}"
    else:
        how = "stopped (killed, or the machine restarted)"
    msg = f"The training process {how} before it finished"
    lines = [ln.strip() for ln in log.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln[len("error: "):] for ln in lines if ln.startswith("error: ")]
    excs = [ln for ln in lines if _EXC_LINE.match(ln)]
    if "No space left on device" in log:
        msg += ": the disk is full. Fix: free disk space, then start the job again"
    elif errors:
        msg += f": {errors[-1]}"
    elif excs:
        msg += f": {excs[-1][:300]}. Fix: see the job log"
    return msg + ". The previous models are untouched."


def _job_model(job_id: str, config: dict):
    """The model this job saved (its meta.json names the job), or None. Reads only the meta.json of
    models with the job config's id prefix (or every model, if the config cannot give it)."""
    from model.config import VAEConfig
    from model.store import ModelStore, StoreError

    try:
        store = ModelStore()
    except StoreError:
        return None
    if not store.root.is_dir():
        return None
    try:
        pattern = f"{VAEConfig.from_dict(config).slug()}-*"
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
            return rec
    return None


def _saved_anyway(job_id: str, config: dict, problem: str | None) -> tuple[str, str | None, str | None]:
    """The verdict when the process ended without a `done` event: the store decides. A model that names
    this job means the job produced it, whatever happened after (a kill, a full disk, a late cancel)."""
    rec = _job_model(job_id, config)
    if rec is None:
        return "", None, None
    warning = None
    if problem:
        problem = problem.replace(" The previous models are untouched.", "").replace(
            "; the previous models are untouched", "").rstrip(".")
        warning = f"The model was saved, but then: {problem}."
    try:
        from model.store import ModelStore

        if ModelStore().current_id() != rec.id:
            warning = (warning + " " if warning else "") + (
                "It was not made the current model: pick it in the sidebar's model list.")
    except Exception:  # noqa: BLE001 - a hint only
        pass
    return "succeeded", rec.id, warning


def _derive(status: dict, events: list[dict], job_dir: Path) -> tuple[str, str | None, str | None, str | None]:
    """(state, model_id, error, warning) of a job from its status.json, events, process and the store.

    A `done` event means succeeded. Otherwise, once the process is gone, a model in the store naming
    this job means succeeded (with a warning saying what went wrong after the save); no such model
    means failed (or cancelled, if asked)."""
    cancelled = (job_dir / "cancel").exists()
    config = status.get("config") or {}
    for ev in reversed(events):
        if ev.get("event") == "done":
            return "succeeded", ev.get("model_id"), None, None
        if ev.get("event") == "error":
            message = ev.get("message") or "Training failed (no message)."
            state, model_id, warning = _saved_anyway(job_dir.name, config, None if cancelled else message)
            if state:
                return state, model_id, None, warning
            if cancelled:
                return "cancelled", None, None, None
            return "failed", None, message, None
    if _process_alive(status.get("pid"), status.get("pid_start")):
        return "running", None, None, None
    message = None if cancelled else death_message(status.get("returncode"), _log_tail(job_dir))
    state, model_id, warning = _saved_anyway(job_dir.name, config, message)
    if state:
        return state, model_id, None, warning
    if cancelled:
        return "cancelled", None, None, None
    return "failed", None, message, None


def _finalize(job_dir: Path, returncode: int | None = None) -> None:
    """Record the final state in status.json (idempotent; any process may do it)."""
    status = _read_json(job_dir / "status.json")
    if status is None:
        return
    if returncode is not None:
        status["returncode"] = returncode
    state, model_id, error, warning = _derive(status, _events(job_dir / "progress.jsonl"), job_dir)
    if state == "running":
        return
    final = [e for e in _events(job_dir / "progress.jsonl") if e.get("event") in ("done", "error")]
    status.update(state=state, model_id=model_id, error=error, warning=warning,
                  ended=status.get("ended") or (final[-1]["time"] if final else time.time()))
    try:
        _write_json(job_dir / "status.json", status)
    except OSError:
        pass  # a read-only viewer, or a full disk: the derived state is still reported


def job_status(job_id: str) -> JobStatus:
    """The status of a job, live (read from its files; cheap enough to poll every second)."""
    job_dir = jobs_root() / job_id
    status = _read_json(job_dir / "status.json")
    if status is None:
        raise JobError(f"No training job {job_id!r} in {job_dir.parent}. Fix: start one, or pick one of "
                       f"{list_jobs()[:5]}.")
    events = _events(job_dir / "progress.jsonl")
    state, model_id, error, warning = _derive(status, events, job_dir)
    reaper = _reapers.get(job_id)
    done = any(e.get("event") == "done" for e in events)
    if state != "running" and not done and status.get("returncode") is None and reaper is not None:
        reaper.join(timeout=2.0)  # our child just died: let the reaper record its exit code
        status = _read_json(job_dir / "status.json") or status
        state, model_id, error, warning = _derive(status, events, job_dir)
    if state != "running" and status.get("state") == "running":
        _finalize(job_dir)
        status = _read_json(job_dir / "status.json") or status
    config = status.get("config", {})
    js = JobStatus(id=job_id, state=state, phase="starting", config=config,
                   epochs=int(config.get("epochs") or 1), started=status.get("started", 0.0),
                   ended=status.get("ended") if state != "running" else None, model_id=model_id,
                   error=error, warning=warning, returncode=status.get("returncode"), pid=status.get("pid"),
                   cancel_requested=(job_dir / "cancel").exists())
    start = next((e for e in events if e.get("event") == "start"), None)
    batches = [e for e in events if e.get("event") == "batch"]
    epochs_ev = [e for e in events if e.get("event") == "epoch"]
    if start:
        js.phase = "training"
        js.steps = int(start.get("steps") or 0)
        js.epochs = int(start.get("epochs") or js.epochs)
    js.epochs_done = len(epochs_ev)
    for ev in epochs_ev:
        for k, v in ev.items():
            if k not in ("event", "time", "epoch"):
                js.history.setdefault(k, []).append(v)
    if batches and js.steps:
        js.curve = [(b["epoch"] + b["step"] / js.steps, b.get("loss")) for b in batches]
        last = batches[-1]
        if last["epoch"] == js.epochs_done:  # the epoch in progress
            js.step = int(last["step"])
        js.loss = _finite(last.get("loss"))
    if epochs_ev:
        js.val_loss = _finite(epochs_ev[-1].get("val_loss"))
        if js.loss is None or js.step == 0:
            js.loss = _finite(epochs_ev[-1].get("loss"))
    if state == "running":
        if start and js.epochs_done >= js.epochs:
            js.phase = "saving"
        elif js.steps and js.step >= js.steps:
            js.phase = "validating"
        js.eta = _eta(start, batches, epochs_ev, js.epochs, js.steps, int(config.get("batch_size") or 128))
    else:
        js.phase = "ended"
    return js


def _eta(start, batches, epochs_ev, epochs, steps, batch_size, now=None) -> float | None:
    """Seconds left: remaining training steps at the measured step rate, plus one validation pass per
    remaining epoch and the final test-set evaluation (measured once an epoch ended), plus the save."""
    now = now or time.time()
    if not start or not steps:
        return None
    dt = dn = 0.0  # step rate from consecutive batch events of one epoch (skips the tracing step)
    for a, b in zip(batches, batches[1:]):
        if a["epoch"] == b["epoch"] and b["step"] > a["step"]:
            dt, dn = dt + b["time"] - a["time"], dn + b["step"] - a["step"]
    if dn == 0:
        return None
    per_step = dt / dn
    vals = []  # validation time: an epoch's end event minus its last batch event
    for e in epochs_ev:
        last = [b for b in batches if b["epoch"] == e["epoch"] and b["step"] == steps]
        if last:
            vals.append(e["time"] - last[-1]["time"])
    # before any epoch ended: inference on the test set costs about a third of a training step per batch
    val = sorted(vals)[len(vals) // 2] if vals else per_step * math.ceil(TEST_IMAGES / batch_size) / 3
    done = len(epochs_ev)
    last = batches[-1] if batches else None
    step = last["step"] if last and last["epoch"] == done else 0
    left = (max(0, epochs - done) * steps - step) * per_step + max(0, epochs - done) * val + val + SAVE_S
    since = max([start["time"]] + [e["time"] for e in batches[-1:] + epochs_ev[-1:]])
    return max(0.0, left - (now - since))


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


# ----------------------------------------------------------------------------- start / cancel

def _config_dict(config) -> dict:
    if hasattr(config, "to_dict"):
        return config.to_dict()
    from model.config import VAEConfig  # no Keras needed

    try:
        return VAEConfig.from_dict(dict(config)).to_dict()
    except (TypeError, ValueError) as e:
        raise JobError(f"Bad training options: {e}") from None


def train_argv(config: dict) -> list[str]:
    """`python -m model.train` options for a VAEConfig dict."""
    argv = ["--dataset", str(config["dataset"]), "--latent-dim", str(config["latent_dim"]),
            "--epochs", str(config["epochs"]), "--batch-size", str(config["batch_size"]),
            "--lr", repr(float(config["learning_rate"])), "--precision", str(config["precision"]),
            "--seed", str(config["seed"])]
    if config["loss"] == "mse":
        argv.append("--mse")
    if config.get("limit"):
        argv += ["--limit", str(config["limit"])]
    return argv


_reapers: dict[str, threading.Thread] = {}


def _reap(proc: subprocess.Popen, job_dir: Path) -> None:
    rc = proc.wait()
    _finalize(job_dir, returncode=rc)


def _prune(root: Path, keep: str) -> None:
    for job_id in list_jobs()[KEEP_JOBS:]:
        if job_id != keep:
            status = _read_json(root / job_id / "status.json") or {}
            if status.get("state") != "running":
                shutil.rmtree(root / job_id, ignore_errors=True)


def start_job(config) -> JobInfo:
    """Start training `config` (a VAEConfig or its dict) in a background process.

    Only one job runs at a time, across sessions and processes: if one is running, it is returned
    (with `new=False`) instead of starting another. On success the trainer saves the model
    atomically and makes it the store's current model. Raises JobError if the job cannot start.
    """
    cfg = _config_dict(config)
    root = jobs_root()
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        free = MIN_FREE_BYTES
    if free < MIN_FREE_BYTES:
        raise JobError(f"Only {free / 2**20:.1f} MiB free on the disk holding {root}. "
                       "Fix: free disk space (a model needs a few MiB) or set LATENT_EXPLORER_HOME elsewhere.")
    try:
        launch = FileLock(root / "launch.lock")
        launch.acquire(timeout=30)
    except Timeout:
        raise JobError(f"Timed out waiting for {root / 'launch.lock'}. Fix: retry in a moment.") from None
    except OSError as e:
        raise JobError(f"Cannot create {root / 'launch.lock'} ({e.strerror}). "
                       "Fix: set LATENT_EXPLORER_HOME to a writable directory.") from None
    try:
        running = active_job()
        if running is not None:
            return JobInfo(running.id, root / running.id, running.config, running.pid, new=False)
        if _lock_held(root / "job.lock", wait=5.0):  # a job that just ended may still be exiting
            raise JobError(f"Another training process holds {root / 'job.lock'}. Fix: wait for it to "
                           "finish (or stop it), then start again.")
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        job_dir = root / job_id
        # --no-files: a job keeps only what the page uses, the model in the store (no vae.weights.h5,
        # TensorBoard logs or figures: the command line `python -m model.train` still writes those)
        cmd = [sys.executable, "-m", "model.jobs", "run", str(job_dir), "--", *train_argv(cfg),
               "--progress", str(job_dir / "progress.jsonl"), "--no-files"]
        env = dict(os.environ, LATENT_EXPLORER_HOME=str(home()), TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
        try:
            job_dir.mkdir()
            with open(job_dir / "log", "wb") as log:
                proc = subprocess.Popen(cmd, cwd=job_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise JobError(f"Could not start the training process ({e.strerror or e}). "
                           "Fix: free disk space or set LATENT_EXPLORER_HOME to a writable directory.") from None
        try:
            os.setpriority(os.PRIO_PROCESS, proc.pid, int(os.environ.get(NICE_ENV, NICE)))
        except (OSError, AttributeError, ValueError):
            pass
        st = _proc_stat(proc.pid)
        status = {"id": job_id, "state": "running", "config": cfg, "argv": cmd, "pid": proc.pid,
                  "pid_start": st[1] if st and st[1] >= 0 else None, "started": time.time(),
                  "ended": None, "returncode": None, "model_id": None, "error": None,
                  "launcher_pid": os.getpid()}
        try:
            _write_json(job_dir / "status.json", status)
            _write_json(root / "latest.json", {"id": job_id})
        except OSError as e:
            proc.kill()
            proc.wait()
            shutil.rmtree(job_dir, ignore_errors=True)
            raise JobError(f"Could not write the job status in {job_dir} ({e.strerror or e}). "
                           "Fix: free disk space or set LATENT_EXPLORER_HOME to a writable directory.") from None
        reaper = threading.Thread(target=_reap, args=(proc, job_dir), name=f"reap-{job_id}", daemon=True)
        reaper.start()
        _reapers[job_id] = reaper
        _prune(root, keep=job_id)
        return JobInfo(job_id, job_dir, cfg, proc.pid, new=True)
    finally:
        launch.release()


def cancel_job(job_id: str | None = None, grace: float = CANCEL_GRACE_S) -> JobStatus | None:
    """Ask the running job (or `job_id`) to stop: SIGINT now, SIGKILL after `grace` seconds.

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
    status = _read_json(job_dir / "status.json") or {}
    pid, pid_start = status.get("pid"), status.get("pid_start")

    def stop():
        if not _process_alive(pid, pid_start):
            return
        try:
            os.kill(pid, signal.SIGINT)
        except OSError:
            return
        deadline = time.time() + grace
        while time.time() < deadline:
            if not _process_alive(pid, pid_start):
                break
            time.sleep(0.1)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if job_id not in _reapers:  # not our child: nobody else will record the end
            time.sleep(0.2)
            _finalize(job_dir)

    threading.Thread(target=stop, name=f"cancel-{job_id}", daemon=True).start()
    return job_status(job_id)


def wait_job(job_id: str, timeout: float = 600.0, poll: float = 0.2) -> JobStatus:
    """Block until the job is no longer running (for scripts and tests)."""
    deadline = time.time() + timeout
    while True:
        js = job_status(job_id)
        if not js.active or time.time() > deadline:
            return js
        time.sleep(poll)


def run(job_dir: Path, argv: list[str]) -> int:
    """The job process: hold `job.lock` for life, then run `python -m model.train ARGV` in this process.

    Taking the lock first (before TensorFlow loads) makes the process visibly busy within a moment of
    its start; the kernel frees the lock when the process ends, however it ends. Anything the trainer
    does not report itself (an unexpected exception, an interrupt while TensorFlow loads) is written
    as an `error` event, so the job's status always says why it stopped.
    """
    from model.progress import write_event

    job_dir = Path(job_dir)
    progress = job_dir / "progress.jsonl"

    def fail(message: str, code: int) -> int:
        print(f"error: {message}", file=sys.stderr, flush=True)
        try:
            write_event(progress, "error", message=message)
        except OSError:
            pass  # the disk is full: the log and the exit code still tell
        return code

    lock = FileLock(job_dir.parent / "job.lock")
    try:
        lock.acquire(timeout=30)
    except Timeout:
        return fail(f"Another training job holds {lock.lock_file}. Fix: wait for it to finish or cancel it.", 2)
    except OSError as e:
        return fail(f"Cannot create the job lock {lock.lock_file}: {e.strerror or e}. "
                    f"Fix: set {HOME_ENV} to a writable directory.", 2)
    sys.argv = ["model.train", *argv]
    try:
        from model import train

        # the job's id goes into the model's meta.json: the job's status is derived from the store
        return train.main(argv, extra={"job": job_dir.name})
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        return fail("interrupted; nothing was saved and the previous models are untouched", 130)
    except MemoryError:
        return fail("out of memory. Fix: use a smaller batch size or training subset.", 1)
    except OSError as e:
        import errno
        import traceback

        traceback.print_exc()
        where = f" {e.filename}" if e.filename else ""
        fix = ("free disk space" if e.errno == errno.ENOSPC
               else f"set {HOME_ENV} to a writable directory")
        return fail(f"File system error on{where}: {e.strerror or e}. Fix: {fix}, then start again; "
                    "the previous models are untouched.", 1)
    except Exception as e:
        import traceback

        traceback.print_exc()
        return fail(f"Training crashed: {type(e).__name__}: {str(e)[:300]}. Fix: see the job log "
                    f"{job_dir / 'log'}; the previous models are untouched.", 1)
    finally:
        lock.release()


def main(argv=None) -> int:
    """`python -m model.jobs [status|cancel]`: show or cancel the latest job.

    (`python -m model.jobs run JOB_DIR -- TRAIN_ARGS` is the job process itself, started by start_job.)
    """
    args = list(sys.argv[1:] if argv is None else argv) or ["status"]
    if args[0] == "run" and len(args) >= 3 and args[2] == "--":
        return run(Path(args[1]), args[3:])
    try:
        if args[0] == "cancel":
            js = cancel_job()
        elif args[0] == "status":
            js = latest_job()
        else:
            print("usage: python -m model.jobs [status|cancel]", file=sys.stderr)
            return 2
    except JobError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if js is None:
        print("no training job yet")
        return 0
    eta = f", ETA {js.eta:.0f} s" if js.eta is not None else ""
    print(f"{js.id}: {js.state} ({js.phase}), epoch {js.epoch}/{js.epochs}, batch {js.step}/{js.steps}, "
          f"loss {js.loss}, val_loss {js.val_loss}, elapsed {js.elapsed:.0f} s{eta}")
    if js.model_id:
        print(f"model: {js.model_id}")
    if js.warning:
        print(f"warning: {js.warning}")
    if js.error:
        print(f"error: {js.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
