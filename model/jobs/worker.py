"""The job process: `python -m model.jobs run JOB_DIR` (started by `model.jobs.start_job`).

It holds `job.lock` for its whole life, reads the job's `config.json` into a `VAEConfig` and calls
`model.train.train` with it, so the saved model's config is the job's config, field for field. Progress
goes to `progress.jsonl`; the end is a `done` event naming the model, or an `error` event saying why and
how to fix it. Before training starts it writes a `phase` event for each slow step (loading the data,
loading TensorFlow, building the model), so the page can say what it waits for. A job keeps only the
model in the store: no vae.weights.h5, TensorBoard logs or figures (`python -m model.train` writes those).
"""

from __future__ import annotations

import errno
import json
import sys
import traceback
from pathlib import Path

from filelock import FileLock, Timeout

from model import train  # TensorFlow loads only inside train.train()
from model.config import VAEConfig
from model.data import load_dataset
from model.errors import DataError, StoreError, TrainingError
from model.jobs.status import PHASES
from model.paths import HOME_ENV
from model.progress import write_event, write_phase
from model.store import ModelStore
from model.tflog import import_tensorflow

CONFIG = "config.json"


def _config(job_dir: Path):
    path = job_dir / CONFIG
    try:
        return VAEConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(
            f"Cannot read the job's config {path} ({type(e).__name__}: {e}). "
            "Fix: start the job again from the app or with model.jobs.start_job."
        ) from None


def _train(job_dir: Path, progress: Path) -> None:
    config = _config(job_dir)
    store = ModelStore()
    store.check_writable()  # before TensorFlow loads: fail fast
    data_phase, tf_phase, build_phase = PHASES
    write_phase(progress, data_phase)
    data = load_dataset(config.dataset)
    write_phase(progress, tf_phase)
    import_tensorflow()  # (quietly: model/tflog.py) the slowest step of a start
    write_phase(progress, build_phase)  # until Keras' `start` event
    latent, record, _ = train.train(
        config, data, store=store, progress=progress, verbose=2, extra={"job": job_dir.name}
    )
    m = record.test_metrics
    print(f"test loss {m['loss']:.2f} (reconstruction {m['reconstruction_loss']:.2f}, KL {m['kl_loss']:.2f})")
    print(f"saved model {record.id} in {store.root}", flush=True)
    write_event(progress, "done", model_id=record.id, test_metrics=m)


def run(job_dir: Path) -> int:
    """Train the job in `job_dir`; returns the process exit code. Anything that stops it is written as
    an `error` event, so the job's status always says why it stopped."""
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
        return fail(
            f"Another training job holds {lock.lock_file}. Fix: wait for it to finish or cancel it.", 2
        )
    except OSError as e:
        return fail(
            f"Cannot create the job lock {lock.lock_file}: {e.strerror or e}. "
            f"Fix: set {HOME_ENV} to a writable directory.",
            2,
        )
    try:
        _train(job_dir, progress)
        return 0
    except KeyboardInterrupt:
        return fail("interrupted; nothing was saved and the previous models are untouched", 130)
    except MemoryError:
        return fail("out of memory. Fix: use a smaller batch size or training subset.", 1)
    except (DataError, StoreError, TrainingError, ValueError) as e:  # their messages carry the fix
        return fail(str(e), 2)
    except OSError as e:
        traceback.print_exc()
        where = f" {e.filename}" if e.filename else ""
        fix = (
            "free disk space"
            if e.errno in (errno.ENOSPC, errno.EDQUOT)
            else f"set {HOME_ENV} to a writable directory"
        )
        return fail(
            f"File system error on{where}: {e.strerror or e}. Fix: {fix}, then start again; "
            "the previous models are untouched.",
            1,
        )
    except Exception as e:
        traceback.print_exc()
        return fail(
            f"Training crashed: {type(e).__name__}: {str(e)[:300]}. Fix: see the job log "
            f"{job_dir / 'log'}; the previous models are untouched.",
            1,
        )
    finally:
        lock.release()
