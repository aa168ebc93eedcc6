"""Training progress as JSON lines, for a UI (or anyone) following a training process.

Each line is one event: {"event": "phase"|"start"|"batch"|"epoch"|"done"|"error", "time": ..., ...}.
A `phase` event ({"what": "loading TensorFlow"...}) says what a job does before training starts
(`write_phase`; model.jobs.status.PHASES lists them).
The file is append-only, so a reader can tail it while the trainer writes. Reading and writing events
needs no Keras; the Keras callback `JsonlProgress` is built on first access (importing Keras then).
"""

from __future__ import annotations

import json
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


def read_events(path) -> list[dict]:
    """All complete events in `path` (a torn last line is ignored)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events
