"""Training progress as JSON lines, for a UI (or anyone) following a training process.

Each line is one event: {"event": "phase"|"start"|"batch"|"epoch"|"done"|"error", "time": ..., ...}.
A `phase` event ({"what": "loading TensorFlow"...}) says what a job does before training starts
(`write_phase`; model.jobs.status.PHASES lists them).
The file is append-only, so a reader can tail it while the trainer writes. Reading and writing events
needs no Keras; the Keras callback `JsonlProgress` is built on first access (importing Keras then).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path


def _make_callback_class():
    import keras  # lazy: reading and writing events (model.jobs, the page) needs no Keras

    class JsonlProgress(keras.callbacks.Callback):
        """Append progress events to `path`; batch events at most every `every_s` seconds."""

        def __init__(self, path, epochs: int, steps: int, every_s: float = 0.5):
            super().__init__()
            self.path, self.epochs, self.steps, self.every_s = Path(path), epochs, steps, every_s
            self._last = 0.0
            self._epoch = 0

        def emit(self, event: str, **fields) -> None:
            write_event(self.path, event, **fields)

        def on_train_begin(self, logs=None):
            self.emit("start", epochs=self.epochs, steps=self.steps, pid=os.getpid())

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            # With steps_per_execution > 1 Keras reports every that-many batches, and its last report
            # of an epoch can name a batch past the end (e.g. 471 of 469): clamp it.
            step = min(batch + 1, self.steps) if self.steps else batch + 1
            now = time.time()
            if now - self._last >= self.every_s or step == self.steps:
                self._last = now
                self.emit("batch", epoch=self._epoch, step=step, **_floats(logs))

        def on_epoch_end(self, epoch, logs=None):
            self.emit("epoch", epoch=epoch, **_floats(logs))

    JsonlProgress.__qualname__ = "JsonlProgress"
    return JsonlProgress


def __getattr__(name):  # PEP 562: `from model.progress import JsonlProgress` imports Keras only then
    if name == "JsonlProgress":
        cls = globals()["JsonlProgress"] = _make_callback_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _floats(logs) -> dict:
    return {k: float(v) for k, v in (logs or {}).items()}


def write_event(path, event: str, **fields) -> None:
    line = json.dumps({"event": event, "time": time.time(), **fields})
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()


def write_phase(path, what: str) -> None:
    """A `phase` event: the process now does `what` (e.g. "loading TensorFlow")."""
    write_event(path, "phase", what=what)


EVENTS = ("start", "phase", "batch", "epoch", "done", "error")
_COUNTS = ("epoch", "step", "steps", "epochs", "pid")  # non-negative integers wherever they appear
_NEEDS = {"batch": ("epoch", "step"), "epoch": ("epoch",)}  # what model.jobs.status reads unguarded


def checked_event(ev) -> dict | None:
    """`ev` as an event model.jobs.status can read, or None if it is not one: a JSON object with a
    known "event", a finite "time", non-negative integer counts (epoch, step, steps, epochs, pid),
    a string message/model_id, and numbers for everything else (the loss terms; NaN is allowed:
    a diverged loss is reported as such). Fields of another type are dropped; a batch or epoch
    event without its epoch (and step) is dropped whole."""
    if not isinstance(ev, dict) or ev.get("event") not in EVENTS:
        return None
    t = ev.get("time")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        return None
    out = {"event": ev["event"], "time": float(t)}
    for k, v in ev.items():
        if k in out:
            continue
        if k in _COUNTS:
            ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
        elif k in ("message", "model_id", "what"):
            ok = isinstance(v, str) or v is None
        elif k == "test_metrics":
            ok = isinstance(v, dict)
        else:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if ok:
            out[k] = v
    if any(k not in out for k in _NEEDS.get(out["event"], ())):
        return None
    return out


def read_events(path) -> list[dict]:
    """All complete, well-formed events in `path` (`checked_event`): a torn last line, a line of
    another JSON type or with fields of the wrong type is skipped, never raised on."""
    try:
        text = Path(path).read_text(errors="replace")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return []
    events = []
    for line in text.splitlines():
        try:
            ev = checked_event(json.loads(line))
        except (ValueError, RecursionError):
            continue
        if ev is not None:
            events.append(ev)
    return events
