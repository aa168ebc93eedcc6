"""Train the VAE (or load trained weights), save it to the model store and draw the seed's figures.

python -m model.train                         # the seed: MNIST, BCE, 30 epochs, batch 128
python -m model.train --mse                   # MSE reconstruction term (seed's -m)
python -m model.train --limit 512 --epochs 1  # a quick run on the first 512 images
python -m model.train --fast                  # fast preset: batch 64, lr 2e-3 cosine-decayed, 20 epochs
python -m model.train --weights vae_cnn/vae.weights.h5   # load instead of train (seed's -w)
python -m model.train --weights vae_cnn_mnist.h5         # ... also the seed's own Keras 2 weights
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from model.config import FAST_PRESET, VAEConfig, add_config_arguments, flags
from model.config import config_from_args as _config_from_args
from model.data import Dataset, is_builtin, load_dataset, test_set_bytes, to_float
from model.errors import DataError, StoreError, TrainingError
from model.paths import file_sha256
from model.progress import write_event
from model.store import TEST_SET, ModelStore
from model.weights import check_weights_path, load_weights, save_weights

# Keras and TensorFlow are imported inside the functions that use them: the CLI checks its arguments,
# the store and the weights file before that slow import (fail fast), and model.jobs imports this
# module without loading TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow's first import

# Training steps per call of Keras' compiled train function: the same steps and results, less time per
# epoch (fewer Python round trips; bench/train_speed.py, README "Performance"). Callbacks, and so
# progress events, see every that-many batches (and the last), so small runs use fewer: at least 8
# reports per epoch.
STEPS_PER_EXECUTION = 16


def steps_per_execution(steps_per_epoch: int) -> int:
    """STEPS_PER_EXECUTION, lowered so that an epoch still reports progress at least 8 times."""
    return max(1, min(STEPS_PER_EXECUTION, steps_per_epoch // 8))


def _quiet_tf():
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)


def batches(x: np.ndarray, batch_size: int, *, shuffle_seed: int | None = None):
    """A tf.data pipeline of `batch_size` batches of `x` (float32 images), reshuffled every epoch when
    `shuffle_seed` is given (the same order for the same seed).

    tf.data's autotuning is off: with it on (as in the pipeline Keras builds from numpy arrays), dropping
    each epoch's iterator waited for the autotune thread's sleep, leaving the CPU idle for a large part
    of most epochs (README "Performance" has the figures). Nothing here needs tuning: batches are
    gathers from memory.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    images = tf.constant(x)
    if shuffle_seed is None:
        ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    else:
        n = len(x)
        ds = (
            tf.data.Dataset.range(n)
            .shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .map(lambda i: tf.gather(images, i))
        )
    return ds.prefetch(2).with_options(options)


CHAINS_ENV = "LATENT_EXPLORER_CHAINS"
MAX_CHAINS = 8


def parallel_chains() -> int:
    """How many parallel chains to cut each training batch into (VAE.chains), setting TF's threads.

    TensorFlow's default on a small CPU splits every op over all cores; this tiny network's ops are too
    small for that to pay. Cutting the batch into one slice per core, each op on one thread, keeps
    every core busy with its own slice, in less wall and CPU time per step (README "Performance";
    bench/train_speed.py measures whole epochs). Same gradients, same model.

    Uses one chain per CPU when there are 2..MAX_CHAINS of them and no GPU, and only while TensorFlow's
    threads can still be set (before its first op in this process); else 1 (TF's defaults). The
    environment variable LATENT_EXPLORER_CHAINS=K forces K (1 turns it off).
    """
    import tensorflow as tf

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    forced = os.environ.get(CHAINS_ENV, "").strip()
    if forced:
        if not forced.isdigit() or not 1 <= int(forced) <= 64:
            raise ValueError(
                f"Expected {CHAINS_ENV} to be an integer in [1, 64]. Received: {forced!r}. "
                f"Fix: unset it or set e.g. {CHAINS_ENV}=1."
            )
        chains = int(forced)
    elif 2 <= cpus <= MAX_CHAINS and not tf.config.list_physical_devices("GPU"):
        chains = cpus
    else:
        return 1
    if chains == 1:
        return 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(chains)
    except RuntimeError:  # TensorFlow already ran ops here (tests, a notebook): keep its threads
        if tf.config.threading.get_intra_op_parallelism_threads() != 1:
            return 1
    return chains


def train(
    config: VAEConfig,
    data: Dataset | None = None,
    *,
    store: ModelStore | None = None,
    verbose: int | str = "auto",
    progress: str | os.PathLike | None = None,
    log_dir: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    callbacks=(),
    extra: dict | None = None,
):
    """Train (or load) a VAE, evaluate it on the test set and save it to the store.

    Args:
        config: what to train; `config.dataset` is loaded unless `data` is given.
        data: the dataset to use (e.g. a user .npz loaded by the caller).
        store: where to save the model (None: do not save).
        verbose: Keras' fit verbosity.
        progress: append JSON-lines progress events to this file (see model.progress).
        log_dir: TensorBoard log directory.
        weights: load these weights instead of training (see `load_weights`).
        callbacks: extra Keras callbacks.
        extra: more JSON-serialisable facts to keep in the model's meta.json.

    Returns (LatentModel, ModelRecord or None, the Keras VAE). Nothing is saved if training fails or
    is interrupted, so the store's previous models are untouched.
    """
    from model.latent import LatentModel
    from model.progress import JsonlProgress
    from model.tflog import keras  # TensorFlow without its start-up noise on stderr
    from model.vae import build_vae

    _quiet_tf()
    data = data or load_dataset(config.dataset)
    x_train = to_float(data.x_train[: config.limit] if config.limit else data.x_train)
    x_test = to_float(data.x_test)
    steps = math.ceil(len(x_train) / config.batch_size)
    chains = parallel_chains()
    vae = build_vae(config, steps_per_execution=steps_per_execution(steps), steps_per_epoch=steps)
    vae.chains = chains
    vae.build((None, 28, 28, 1))
    history: dict = {}
    t0 = time.perf_counter()
    if weights:
        load_weights(vae, Path(weights))
    else:
        cbs = [keras.callbacks.TerminateOnNaN(), *callbacks]
        if progress:
            cbs.append(JsonlProgress(progress, config.epochs, steps))
        if log_dir:
            cbs.append(keras.callbacks.TensorBoard(log_dir=str(log_dir)))
        hist = vae.fit(
            batches(x_train, config.batch_size, shuffle_seed=config.seed),
            epochs=config.epochs,
            validation_data=batches(x_test, config.batch_size),
            shuffle=False,  # shuffled above
            callbacks=cbs,
            verbose=verbose,
        )
        history = hist.history
        losses = history.get("loss", [])
        if not losses or not all(math.isfinite(v) for v in losses):
            raise TrainingError(
                f"Training diverged (loss became NaN/inf at epoch {len(losses)}). "
                "Fix: lower the learning rate (--lr) or use a larger batch size."
            )
    train_seconds = time.perf_counter() - t0
    latent = LatentModel(vae.encoder, vae.decoder, config)
    metrics = latent.evaluate(data.x_test)
    if not all(math.isfinite(v) for v in metrics.values()):
        raise TrainingError(f"The model gives non-finite test losses {metrics}. Fix: retrain.")
    record = None
    if store is not None:
        # a model trained on a user's data keeps its test set, so the page can explore it later
        files = None if is_builtin(config.dataset) else {TEST_SET: test_set_bytes(data)}
        record = store.save(
            vae.encoder,
            vae.decoder,
            config,
            history=history,
            test_metrics=metrics,
            train_seconds=train_seconds,
            files=files,
            extra={"weights_from": str(weights) if weights else None, **(extra or {})},
        )
        latent.record = record
    return latent, record, vae


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error ("error: ... (see --help)", exit 2) instead of usage + error."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    """The command line: one flag per VAEConfig field (`model.config.add_config_arguments`), the
    preset and shortcuts (--fast, --mse, --npz) and what to do with the result. `config_from_args`
    turns the parsed arguments into the VAEConfig."""
    p = _Parser(
        prog="python -m model.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    fast = " ".join(
        f"{flags(k)[0]} {v:g}" if isinstance(v, float) else f"{flags(k)[0]} {v}"
        for k, v in FAST_PRESET.items()
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help=f"the fast preset VAEConfig.fast(): {fast}, the rest as the seed; explicit flags override it",
    )
    p.add_argument("--mse", action="store_true", help="MSE reconstruction loss instead of BCE (--loss mse)")
    p.add_argument("--npz", help="train on a user .npz (x_train, y_train, x_test, y_test)")
    p.add_argument(
        "-w",
        "--weights",
        help="load these trained weights (.weights.h5 or a model directory) instead of training",
    )
    p.add_argument(
        "--out",
        default="vae_cnn",
        help="directory for figures, weights and TensorBoard logs (default %(default)s)",
    )
    p.add_argument("--progress", help="append JSON-lines progress events to this file")
    p.add_argument("--no-store", action="store_true", help="do not save the model to the store")
    p.add_argument("--no-figures", action="store_true", help="skip the two PNG figures")
    p.add_argument(
        "--no-files",
        action="store_true",
        help="write nothing to --out (no weights file, TensorBoard logs or figures): only the model store",
    )
    p.add_argument("--summary", action="store_true", help="print the Keras model summaries")
    return p


def config_from_args(args: argparse.Namespace) -> VAEConfig:
    """The VAEConfig of parsed `parser()` arguments: the seed's (or --fast's) with the config flags
    given, --mse and --npz (a user .npz names the dataset). ValueError names a bad flag and the fix."""
    config = _config_from_args(args, VAEConfig.fast() if getattr(args, "fast", False) else VAEConfig())
    if getattr(args, "mse", False):
        if args.loss not in (None, "mse"):
            raise ValueError(
                f"Expected --mse or --loss {args.loss}, not both. Received: both. Fix: drop one of them."
            )
        config = config.replace(loss="mse")
    if getattr(args, "npz", None):
        config = config.replace(dataset=_npz_name(args.npz))
    return config


def _npz_digest(path: str) -> str:
    try:
        return file_sha256(path)
    except OSError:  # load_dataset reports the unreadable file
        return hashlib.sha256().hexdigest()


def _npz_name(path: str, digest: str | None = None) -> str:
    """A dataset name for a user .npz: its stem plus a hash of its bytes, so two different files never
    share a model fingerprint (and never pass for MNIST)."""
    return f"npz-{Path(path).stem}-{(digest or _npz_digest(path))[:8]}"


def main(argv=None, *, extra: dict | None = None) -> int:
    """The command line; `extra` (more facts for the model's meta.json) is for callers such as tests."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a malformed command line (2, already printed on one line)
        return e.code if isinstance(e.code, int) else 2

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        if args.progress:
            try:
                write_event(args.progress, "error", message=msg)
            except OSError:
                pass
        return 2

    record = None
    try:
        config = config_from_args(args)
        data = load_dataset(config.dataset, npz=args.npz)
        store = _check_before_training(args, config)
        facts = dict(extra or {})
        if args.npz:  # a checked reference to the user's file (its test set is kept with the model)
            facts.update(npz=str(Path(args.npz).resolve()), npz_sha256=_npz_digest(args.npz))
        latent, record, vae = train(
            config,
            data,
            store=store,
            progress=args.progress,
            log_dir=None if args.weights or args.no_files else Path(args.out) / "logs",
            weights=args.weights,
            extra=facts or None,
        )
        _after_training(args, latent, record, vae, data, store)
        return 0
    except (DataError, StoreError, TrainingError, ValueError) as e:
        return fail(str(e))
    except OSError as e:  # e.g. an unwritable --out or --progress file, a full disk
        return fail(_write_problem(e, record))
    except KeyboardInterrupt:
        return fail("interrupted; nothing was saved and the previous models are untouched")


def _check_before_training(args: argparse.Namespace, config: VAEConfig) -> ModelStore | None:
    """Fail fast, before TensorFlow loads: the store is writable, the weights file and the figures'
    latent dims are right. The store to save into (None with --no-store)."""
    store = None if args.no_store else ModelStore()
    if store is not None:
        store.check_writable()
    if args.weights:
        check_weights_path(args.weights)
    if args.no_files:
        args.no_figures = True
    if not args.no_figures and config.latent_dim < 2:
        raise ValueError(
            "Expected --latent-dim of at least 2 for the figures. Received: "
            f"--latent-dim {config.latent_dim}. Fix: add --no-figures."
        )
    return store


def _after_training(args: argparse.Namespace, latent, record, vae, data: Dataset, store) -> None:
    """The summaries, the weights file, the test losses, the saved model, the figures, the done event."""
    out = Path(args.out)
    if args.summary:
        vae.encoder.summary()
        vae.decoder.summary()
        vae.summary()
    if not args.weights and not args.no_files:
        save_weights(vae, out / "vae.weights.h5")
    m = latent.evaluate(data.x_test) if record is None else record.test_metrics
    print(f"test loss {m['loss']:.2f} (reconstruction {m['reconstruction_loss']:.2f}, KL {m['kl_loss']:.2f})")
    if record is not None:
        print(f"saved model {record.id} in {store.root}")
        if store.current_id() != record.id and (why := store.why_not_default(record)):
            print(f"not made the default model for new tabs: {why} (pick it in the page's sidebar)")
    if not args.no_figures:
        from model.figures import write_figures  # lazy: matplotlib

        for path in write_figures(latent, data, out):
            print(f"wrote {path}")
    if args.progress:
        write_event(args.progress, "done", model_id=record.id if record else None, test_metrics=m)


def _write_problem(e: OSError, record) -> str:
    """What went wrong writing a file, and the fix (a full disk says whether the model was saved)."""
    where = f" {e.filename}" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        saved = f" The model {record.id} was saved before that." if record is not None else ""
        return (
            f"cannot write{where}: the disk is full ({e.strerror}). Fix: free disk space, "
            f"or use --no-files to write only the model store.{saved}"
        )
    return f"cannot write{where}: {e.strerror or e}. Fix: choose a writable --out / --progress path."


if __name__ == "__main__":
    sys.exit(main())
