"""What a job's files say, as pure functions: progress events (+ a few facts) -> state -> JobStatus + ETA.

Nothing here touches the disk or processes: the caller (`model.jobs.files.job_status`) reads the files,
asks whether the process lives and which model the store holds for the job, and passes the answers in,
so every rule below is testable with plain lists and dicts.
"""

from __future__ import annotations

import math
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from model.data import n_test_images
from model.progress import checked_event

STATES = ("running", "succeeded", "failed", "cancelled")
TEST_IMAGES = 10_000  # validation set size for the ETA when the dataset's (model.data) is not known
SAVE_S = 2.0  # rough time to save a model (for the ETA)
UNTOUCHED = " The previous models are untouched."
# What a job does before its first batch reports, in order: the job process writes a `phase` event with one
# of the first three as `what` (model.jobs.worker); the last follows the `start` event (Keras traces and
# compiles the training step during the first batch).
PHASES = ("loading the data", "loading TensorFlow", "building the model")
FIRST_BATCH = "first batch (compiling the training step)"


@dataclass
class JobStatus:
    """Everything a UI shows about one job, derived from its files."""

    id: str
    state: str  # running | succeeded | failed | cancelled
    phase: str  # starting (loading TensorFlow, data) | training | validating | saving | ended
    config: dict
    epochs: int
    steps: int = 0  # batches per epoch (0 until training starts)
    epochs_done: int = 0  # epochs whose every batch ran (an epoch cut short by NaN does not count)
    step: int = 0  # batches done in the epoch in progress (once ended: in the last epoch that ran)
    last_epoch: int | None = None  # 0-based epoch of the last batch reported (None before any batch)
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
    activity: str | None = None  # while running and no batch ran yet: what the job is doing (see PHASES)
    activity_since: float | None = None  # when that began (time.time())

    @property
    def activity_elapsed(self) -> float | None:
        """Seconds spent in `activity` so far (None without one)."""
        return None if self.activity_since is None else max(0.0, time.time() - self.activity_since)

    @property
    def active(self) -> bool:
        return self.state == "running"

    @property
    def elapsed(self) -> float:
        return max(0.0, (self.ended or time.time()) - self.started)

    @property
    def epoch(self) -> int:
        """1-based number of the epoch in progress; once the job ended, of the last epoch that ran
        (where it diverged, was killed or cancelled; the last one on success)."""
        if not self.active and self.last_epoch is not None:
            return min(self.epochs, self.last_epoch + 1)
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


@dataclass(frozen=True)
class Verdict:
    state: str
    model_id: str | None = None
    error: str | None = None
    warning: str | None = None


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
    errors = [ln[len("error: ") :] for ln in lines if ln.startswith("error: ")]
    excs = [ln for ln in lines if _EXC_LINE.match(ln)]
    if "No space left on device" in log:
        msg += ": the disk is full. Fix: free disk space, then start the job again"
    elif errors:
        msg += f": {errors[-1]}"
    elif excs:
        msg += f": {excs[-1][:300]}. Fix: see the job log"
    return msg + "." + UNTOUCHED


def _saved_anyway(saved: tuple[str, bool] | None, problem: str | None) -> Verdict | None:
    """A model the store holds for this job means the job produced it, whatever happened after."""
    if saved is None:
        return None
    model_id, is_current = saved
    warning = None
    if problem:
        # the advice written for a failed job ("free disk space, then start again") is wrong once
        # the model is saved: keep what happened, drop that advice, and say what is left to do
        full = "No space left on device" in problem or "disk is full" in problem
        problem = problem.replace(UNTOUCHED, "").replace("; the previous models are untouched", "")
        problem = re.split(r"\.? Fix: ", problem, maxsplit=1)[0].rstrip(".")
        warning = (
            f"The model was saved, but then: {problem}. The saved model is complete: nothing to start again."
        )
        if full:
            warning += " Fix: free disk space before the next training."
    if not is_current:
        warning = (warning + " " if warning else "") + (
            "It was not made the current model: pick it in the sidebar's model list."
        )
    return Verdict("succeeded", model_id, None, warning)


def derive(
    events: list[dict],
    *,
    alive: bool,
    cancelled: bool,
    returncode: int | None = None,
    log_tail: Callable[[], str] = lambda: "",
    saved: Callable[[], tuple[str, bool] | None] = lambda: None,
) -> Verdict:
    """The state of a job.

    A `done` event means succeeded. Otherwise, once the process is gone (`alive` False, or an `error`
    event), the store decides: `saved()` gives (model id, is current) of the model naming this job,
    which means succeeded (with a warning saying what went wrong after the save); None means failed
    (the `error` event's message, or why the process died) or cancelled, if a cancel was asked.
    `log_tail` and `saved` are called only when needed (they read files)."""
    for ev in reversed(events):
        if ev.get("event") == "done":
            return Verdict("succeeded", ev.get("model_id"))
        if ev.get("event") == "error":
            message = ev.get("message") or "Training failed (no message)."
            verdict = _saved_anyway(saved(), None if cancelled else message)
            if verdict:
                return verdict
            return Verdict("cancelled") if cancelled else Verdict("failed", error=message)
    if alive:
        return Verdict("running")
    message = None if cancelled else death_message(returncode, log_tail())
    verdict = _saved_anyway(saved(), message)
    if verdict:
        return verdict
    return Verdict("cancelled") if cancelled else Verdict("failed", error=message)


def _finite(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _count(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


_STATUS_FIELDS = {  # status.json field -> its check; a field failing it is dropped (read as absent)
    "id": lambda v: isinstance(v, str),
    "state": lambda v: v in STATES,
    "config": lambda v: isinstance(v, dict),
    "pid": lambda v: _count(v) is not None and v > 0,
    "pid_start": lambda v: _count(v) is not None,
    "launcher_pid": lambda v: _count(v) is not None,
    "started": lambda v: _finite(v) is not None and v >= 0,
    "ended": lambda v: v is None or (_finite(v) is not None and v >= 0),
    "returncode": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "model_id": lambda v: v is None or isinstance(v, str),
    "error": lambda v: v is None or isinstance(v, str),
    "warning": lambda v: v is None or isinstance(v, str),
}  # null is kept where the writer itself writes null (not yet known): rewriting the file keeps the key


def checked_status(status) -> dict | None:
    """A status.json's content with each known field checked like meta.json's (type, range): a field
    of the wrong type is dropped, so it reads as absent instead of raising later. None if `status` is
    not a JSON object. Unknown fields are kept as they are (nothing here reads them)."""
    if not isinstance(status, dict):
        return None
    return {k: v for k, v in status.items() if k not in _STATUS_FIELDS or _STATUS_FIELDS[k](v)}


def build(
    job_id: str,
    status: dict,
    events: list[dict],
    verdict: Verdict,
    *,
    cancel_requested: bool,
    now: float | None = None,
) -> JobStatus:
    """The JobStatus of a job from its status.json dict, its progress events and its verdict."""
    state = verdict.state
    status = checked_status(status) or {}
    events = [e for e in map(checked_event, events) if e is not None]
    config = status.get("config", {})
    js = JobStatus(
        id=job_id,
        state=state,
        phase="starting",
        config=config,
        epochs=_count(config.get("epochs")) or 1,
        started=status.get("started", 0.0),
        ended=status.get("ended") if state != "running" else None,
        model_id=verdict.model_id,
        error=verdict.error,
        warning=verdict.warning,
        returncode=status.get("returncode"),
        pid=status.get("pid"),
        cancel_requested=cancel_requested,
    )
    start = next((e for e in events if e.get("event") == "start"), None)
    phases = [e for e in events if e.get("event") == "phase"]
    batches = [e for e in events if e.get("event") == "batch"]
    epochs_ev = [e for e in events if e.get("event") == "epoch"]
    if start:
        js.phase = "training"
        js.steps = start.get("steps") or 0
        js.epochs = start.get("epochs") or js.epochs
    # An epoch event comes also for an epoch Keras cut short (TerminateOnNaN stops mid-epoch and still
    # ends the epoch): it counts as done only if its last batch (always reported) was reached.
    full = {b["epoch"] for b in batches if js.steps and b["step"] >= js.steps}
    with_batches = {b["epoch"] for b in batches}
    js.epochs_done = sum(1 for e in epochs_ev if e.get("epoch") in full or e.get("epoch") not in with_batches)
    _add_losses(js, batches, epochs_ev)
    if state == "running":
        _add_running(js, start, phases, batches, epochs_ev, config, now)
    else:
        js.phase = "ended"
    return js


def _add_losses(js: JobStatus, batches: list[dict], epochs_ev: list[dict]) -> None:
    """The history, the curve, the step and the losses of `js` from its batch and epoch events."""
    for ev in epochs_ev:
        for k, v in ev.items():
            if k not in ("event", "time", "epoch"):
                js.history.setdefault(k, []).append(v)
    if batches and js.steps:
        js.curve = [(b["epoch"] + b["step"] / js.steps, b.get("loss")) for b in batches]
        last = batches[-1]
        js.last_epoch = int(last["epoch"])
        if last["epoch"] == js.epochs_done or js.state != "running":  # the epoch in progress / that ran last
            js.step = int(last["step"])
        js.loss = _finite(last.get("loss"))
    if epochs_ev:
        js.val_loss = _finite(epochs_ev[-1].get("val_loss"))
        if js.loss is None or js.step == 0:
            js.loss = _finite(epochs_ev[-1].get("loss"))


def _add_running(js: JobStatus, start, phases, batches, epochs_ev, config: dict, now) -> None:
    """What a running job is doing (activity, phase) and its ETA."""
    if not start and phases:  # starting: the job process says what it is doing
        js.activity, js.activity_since = str(phases[-1].get("what") or ""), phases[-1].get("time")
    elif start and not batches and not epochs_ev:
        js.activity, js.activity_since = FIRST_BATCH, start.get("time")
    if start and js.epochs_done >= js.epochs:
        js.phase, js.step = "saving", js.steps  # every batch ran: not "batch 0/N" while saving
    elif js.steps and js.step >= js.steps:
        js.phase = "validating"
    batch_size = _count(config.get("batch_size")) or 128
    test_images = n_test_images(str(config.get("dataset", ""))) or TEST_IMAGES
    js.eta = eta(start, batches, epochs_ev, js.epochs, js.steps, batch_size, now, test_images)


def eta(
    start, batches, epochs_ev, epochs, steps, batch_size, now=None, test_images=TEST_IMAGES
) -> float | None:
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
    val = sorted(vals)[len(vals) // 2] if vals else per_step * math.ceil(test_images / batch_size) / 3
    done = len(epochs_ev)
    last = batches[-1] if batches else None
    step = last["step"] if last and last["epoch"] == done else 0
    left = (max(0, epochs - done) * steps - step) * per_step + max(0, epochs - done) * val + val + SAVE_S
    since = max([start["time"]] + [e["time"] for e in batches[-1:] + epochs_ev[-1:]])
    return max(0.0, left - (now - since))
