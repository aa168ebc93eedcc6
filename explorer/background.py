"""One runner for slow analysis work in the app's process (a t-SNE, a log-likelihood estimate).

A server is shared: however many sessions ask, at most one task runs at a time (the others wait in a
queue, in order), so four models' t-SNEs no longer take the CPU from every page at once. A task is
keyed (e.g. ("tsne", model id, seed)): sessions asking for the same key share one task. Each session
that wants a task keeps saying so (`want`, from its progress fragment, every second); a task that no
session has wanted for LEASE seconds (its tabs closed, or they switched away) is dropped from the queue
or stopped, and so is one every wanting session cancelled (`cancel`).

model/ does the numerics: a task is `fn(progress)`, where `progress(fraction, **info)` reports (info: anything
the page may show beside it, e.g. an estimate of the run time) and raises
`Cancelled` once the task is no longer wanted (model.analysis.tsne_in_child kills its child process
then; model.quality's estimate stops between batches). This module owns the thread and the status the
page shows. Finished results stay in memory (the last KEEP tasks) until `forget`.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

LEASE = 90.0  # seconds a task stays wanted after the last `want` (a hidden tab may tick once a minute)
KEEP = 32  # finished tasks (with their results) kept in memory


class Cancelled(Exception):
    """Raised by `progress` inside a task that is no longer wanted."""


@dataclass
class Task:
    key: Hashable
    label: str
    fn: Callable[[Callable[[float], None]], Any]
    seq: int
    state: str = "queued"  # queued | running | done | failed | cancelled
    wanted_by: dict = field(default_factory=dict)  # session id -> last `want` (monotonic)
    progress: float = 0.0
    queued: float = field(default_factory=time.monotonic)
    started: float | None = None
    ended: float | None = None
    result: Any = None
    error: str = ""
    why_cancelled: str = ""
    info: dict = field(default_factory=dict)  # what the task reported beside its progress (an estimate...)


def _lower_thread_priority(niceness: int = 10) -> None:
    """Run the calling thread `niceness` steps lower in CPU priority (Linux: each thread has its own nice
    value), so the work in the app's process leaves the CPU to the page's requests."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except (AttributeError, OSError):  # not Linux, or not permitted: run at the normal priority
        pass


class Runner:
    """Background tasks, one at a time, in the order asked (see the module docstring)."""

    def __init__(self, lease: float = LEASE):
        self.lease = lease
        self._lock = threading.Condition()
        self._tasks: dict[Hashable, Task] = {}
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ sessions
    def submit(self, key: Hashable, fn, who: str, label: str = "") -> dict:
        """Ask for task `key` on behalf of session `who`: queued unless it is queued, running or
        finished already (a done or failed one is kept until `forget`; a cancelled one starts again).
        Returns its status."""
        with self._lock:
            task = self._tasks.get(key)
            if task is None or task.state == "cancelled":
                task = self._tasks[key] = Task(key, label or str(key), fn, next(self._seq))
                self._ensure_thread()
                self._lock.notify_all()
            if task.state in ("queued", "running"):
                task.wanted_by[who] = time.monotonic()
            return self._status(task)

    def want(self, key: Hashable, who: str) -> None:
        """Session `who` still wants task `key` (call it at least every LEASE seconds)."""
        with self._lock:
            task = self._tasks.get(key)
            if task is not None and task.state in ("queued", "running"):
                task.wanted_by[who] = time.monotonic()

    def cancel(self, key: Hashable, who: str) -> None:
        """Session `who` no longer wants task `key`: it stops if nobody else does."""
        with self._lock:
            task = self._tasks.get(key)
            if task is not None:
                task.wanted_by.pop(who, None)
                if task.state in ("queued", "running") and not task.wanted_by:
                    self._drop(task, "cancelled")

    def forget(self, key: Hashable) -> None:
        """Drop a finished, failed or cancelled task (its result too), so a new submit starts afresh."""
        with self._lock:
            task = self._tasks.get(key)
            if task is not None and task.state not in ("queued", "running"):
                del self._tasks[key]

    def status(self, key: Hashable) -> dict:
        """{"state": idle|queued|running|done|failed|cancelled, "progress": 0..1, "elapsed": s (running
        or ended), "waiting": s, "ahead": [labels of the tasks before it], "error", "result", "info":
        what the task reported with `progress(fraction, **info)`}."""
        with self._lock:
            task = self._tasks.get(key)
            return self._status(task) if task else {"state": "idle", "progress": 0.0, "elapsed": 0.0}

    def wait(self, key: Hashable, timeout: float = 600.0) -> dict:
        """Block until task `key` is no longer queued or running (tests, scripts)."""
        end = time.monotonic() + timeout
        while self.status(key)["state"] in ("queued", "running") and time.monotonic() < end:
            time.sleep(0.05)
        return self.status(key)

    # ------------------------------------------------------------------ internals (lock held)
    def _status(self, task: Task) -> dict:
        now = time.monotonic()
        ahead = sorted(
            (t for t in self._tasks.values() if t.state in ("queued", "running") and t.seq < task.seq),
            key=lambda t: t.seq,
        )
        return {
            "state": task.state,
            "progress": task.progress,
            "elapsed": ((task.ended or now) - task.started) if task.started else 0.0,
            "waiting": now - task.queued,
            "ahead": [t.label for t in ahead] if task.state == "queued" else [],
            "error": task.error or task.why_cancelled,
            "result": task.result,
            "info": dict(task.info),
        }

    def _drop(self, task: Task, why: str) -> None:
        task.why_cancelled = why
        if task.state == "queued":
            task.state, task.ended = "cancelled", time.monotonic()
        # a running task sees it at its next `progress` call

    def _expired(self, task: Task) -> bool:
        now = time.monotonic()
        task.wanted_by = {w: t for w, t in task.wanted_by.items() if now - t < self.lease}
        return not task.wanted_by

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="analysis-runner", daemon=True)
            self._thread.start()

    def _next(self) -> Task | None:
        """The oldest queued task still wanted (others are dropped); None when the queue is empty."""
        for task in sorted(self._tasks.values(), key=lambda t: t.seq):
            if task.state != "queued":
                continue
            if self._expired(task):
                self._drop(task, "no open page wanted it any more")
                continue
            return task
        return None

    def _prune(self) -> None:
        ended = sorted((t for t in self._tasks.values() if t.ended is not None), key=lambda t: t.ended)
        for task in ended[: max(0, len(ended) - KEEP)]:
            del self._tasks[task.key]

    # ------------------------------------------------------------------ the worker thread
    def _work(self) -> None:
        _lower_thread_priority()
        while True:
            with self._lock:
                task = self._next()
                while task is None:
                    self._lock.wait(timeout=1.0)
                    task = self._next()
                task.state, task.started = "running", time.monotonic()

            def progress(fraction: float, task=task, **info) -> None:
                with self._lock:
                    task.progress = max(task.progress, min(1.0, float(fraction)))
                    task.info.update(info)
                    if not task.why_cancelled and self._expired(task):
                        task.why_cancelled = "no open page wanted it any more"
                    if task.why_cancelled:
                        raise Cancelled(task.why_cancelled)

            try:
                result = task.fn(progress)
            except Cancelled:
                state, result = "cancelled", None
            except Exception as e:  # shown on the page; the runner must never die silently
                state, result = "failed", None
                task.error = f"{type(e).__name__}: {e}"
            else:
                state = "done"
            with self._lock:
                task.state, task.result, task.ended = state, result, time.monotonic()
                if state == "done":
                    task.progress = 1.0
                self._prune()


RUNNER = Runner()  # the process-wide runner the page uses (its thread starts with the first task)


def session_id() -> str:
    """The id of the browser session running this script (one wanter of a task)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"
