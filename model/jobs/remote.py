"""What a Ray worker runs for one job: `train_job`, the body of the job's Ray task.

It trains with `model.train.train`, the same code as a local job, and keeps nothing on the worker:
progress events go into the sweep's event queue (a `ray.util.queue.Queue`, an actor the driver drains
into the job's progress.jsonl on the app machine), and the trained model comes back as the task's
return value (the bytes of encoder.keras and decoder.keras plus what meta.json needs), which the
driver writes into its own store with `ModelStore.save_bytes`. No shared filesystem is needed.

Nothing here imports Ray: the driver wraps `train_job` with `ray.remote(...)`.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
from pathlib import Path

from model.config import VAEConfig
from model.paths import HOME_ENV

CHAINS_ENV = "LATENT_EXPLORER_CHAINS"


class _Capture:
    """A stand-in for the model store given to `train`: keeps what `ModelStore.save` would write, as
    bytes, so the app machine can save it (the same fields, by the same writer)."""

    def __init__(self):
        self.saved: dict | None = None

    def save(self, encoder, decoder, config, **kwargs):
        with tempfile.TemporaryDirectory() as d:
            parts = {}
            for name, part in (("encoder.keras", encoder), ("decoder.keras", decoder)):
                part.save(Path(d) / name)
                parts[name] = (Path(d) / name).read_bytes()
        kwargs.pop("make_current", None)
        self.saved = {"parts": parts, "config": config.to_dict(), **kwargs}
        return None


def _threads(cpus: int) -> None:
    """Train with as many threads as the task's CPUs (Ray schedules by them; TensorFlow would use every
    core of the machine)."""
    cpus = max(1, int(cpus))
    os.environ[CHAINS_ENV] = str(cpus)  # model.train.parallel_chains: one chain per CPU of the task
    if cpus == 1:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # this worker process already ran TensorFlow ops: keep its threads
            pass


def train_job(config: dict, job_id: str, events, *, data_home: str | None = None, cpus: int = 1) -> dict:
    """Train `config` (a VAEConfig dict) for job `job_id`; put its progress events into `events`.

    `data_home`: the app's LATENT_EXPLORER_HOME, used for the dataset cache when this worker sees it
    (the same machine, or a shared disk); elsewhere the worker's own home caches the data.
    Returns {"parts": {encoder.keras, decoder.keras: bytes}, "config", "history", "test_metrics",
    "train_seconds", "files", "extra", "host", "pid"}. Exceptions (a bad config, divergence, a
    KeyboardInterrupt from `ray.cancel`) reach the driver as the task's error.
    """
    if data_home and Path(data_home).is_dir() and os.access(data_home, os.W_OK):
        os.environ[HOME_ENV] = data_home
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from model import train
    from model.data import load_dataset
    from model.progress import JsonlProgress

    cfg = VAEConfig.from_dict(config)
    _threads(cpus)
    data = load_dataset(cfg.dataset)
    n = min(len(data.x_train), cfg.limit or len(data.x_train))
    steps = math.ceil(n / cfg.batch_size)

    class QueueProgress(JsonlProgress):
        """The progress callback of a local job, sending each event to the driver instead of a file."""

        def emit(self, event: str, **fields) -> None:
            import time

            events.put((job_id, {"event": event, "time": time.time(), **fields}))

    capture = _Capture()
    train.train(cfg, data, store=capture, verbose=0, callbacks=[QueueProgress(os.devnull, cfg.epochs, steps)])
    return {**capture.saved, "host": socket.gethostname(), "pid": os.getpid()}
