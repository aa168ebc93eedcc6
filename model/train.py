"""Train the VAE (or load trained weights), save it to the model store and draw the seed's figures.

    python -m model.train                         # the seed: MNIST, BCE, 30 epochs, batch 128
    python -m model.train --mse                   # MSE reconstruction term (seed's -m)
    python -m model.train --limit 512 --epochs 1  # a quick run on the first 512 images
    python -m model.train --weights vae_cnn/vae.weights.h5   # load instead of train (seed's -w)
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from model.data import DataError, Dataset, load_dataset, to_float  # noqa: E402
from model.store import ModelStore, StoreError  # noqa: E402
from model.vae import LOSSES, PRECISIONS, VAEConfig  # noqa: E402


class TrainingError(RuntimeError):
    """Training failed (NaN loss, bad weights file...); the message says what to do."""


def _quiet_tf():
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)


def load_weights(vae, path: Path) -> None:
    """Load weights into a built VAE from a `.weights.h5` file or a model-store directory."""
    import keras

    from model.api import _load_keras

    path = Path(path)
    if path.is_dir():
        enc = _load_keras(path / "encoder.keras", "encoder", path.name)
        dec = _load_keras(path / "decoder.keras", "decoder", path.name)
        try:
            vae.encoder.set_weights(enc.get_weights())
            vae.decoder.set_weights(dec.get_weights())
        except ValueError as e:
            raise TrainingError(f"Weights in {path} do not fit this model ({e}). Fix: use the same "
                                "--latent-dim as the saved model.") from None
        return
    if not path.is_file():
        raise TrainingError(f"Weights file not found: {path}. Fix: give a .weights.h5 file written by "
                            "`python -m model.train` (e.g. vae_cnn/vae.weights.h5) or a model directory.")
    try:
        vae.load_weights(path)
    except Exception as e:
        raise TrainingError(f"Could not load weights from {path}: {type(e).__name__}: "
                            f"{str(e).splitlines()[0][:300]}. Fix: give a .weights.h5 file saved by this "
                            "tool with the same --latent-dim.") from None
    del keras


def train(config: VAEConfig, data: Dataset | None = None, *, store: ModelStore | None = None,
          verbose: int | str = "auto", progress: str | os.PathLike | None = None,
          log_dir: str | os.PathLike | None = None, weights: str | os.PathLike | None = None,
          callbacks=()):
    """Train (or load) a VAE, evaluate it on the test set and save it to the store.

    Returns (LatentModel, ModelRecord or None). Nothing is saved if training fails or is interrupted,
    so the store's previous models are untouched.
    """
    import keras

    from model.api import LatentModel
    from model.progress import JsonlProgress
    from model.vae import build_vae

    _quiet_tf()
    data = data or load_dataset(config.dataset)
    x_train = to_float(data.x_train[: config.limit] if config.limit else data.x_train)
    x_test = to_float(data.x_test)
    vae = build_vae(config)
    vae.build((None, 28, 28, 1))
    history: dict = {}
    t0 = time.perf_counter()
    if weights:
        load_weights(vae, Path(weights))
    else:
        steps = math.ceil(len(x_train) / config.batch_size)
        cbs = [keras.callbacks.TerminateOnNaN(), *callbacks]
        if progress:
            cbs.append(JsonlProgress(progress, config.epochs, steps))
        if log_dir:
            cbs.append(keras.callbacks.TensorBoard(log_dir=str(log_dir)))
        hist = vae.fit(x_train, epochs=config.epochs, batch_size=config.batch_size,
                       validation_data=(x_test, None), shuffle=True, callbacks=cbs, verbose=verbose)
        history = hist.history
        losses = history.get("loss", [])
        if not losses or not all(math.isfinite(v) for v in losses):
            raise TrainingError(f"Training diverged (loss became NaN/inf at epoch {len(losses)}). "
                                "Fix: lower the learning rate (--lr) or use a larger batch size.")
    train_seconds = time.perf_counter() - t0
    latent = LatentModel(vae.encoder, vae.decoder, config)
    metrics = latent.evaluate(data.x_test)
    if not all(math.isfinite(v) for v in metrics.values()):
        raise TrainingError(f"The model gives non-finite test losses {metrics}. Fix: retrain.")
    record = None
    if store is not None:
        record = store.save(vae.encoder, vae.decoder, config, history=history, test_metrics=metrics,
                            train_seconds=train_seconds, extra={"weights_from": str(weights) if weights else None})
        latent.record = record
    return latent, record, vae


def write_figures(latent, data: Dataset, out: Path, span: float = 4.0, n: int = 30) -> list[Path]:
    """The seed's vae_mean.png and digits_over_latent.png, in `out`."""
    from model.figures import latent_scatter, manifold_figure

    out.mkdir(parents=True, exist_ok=True)
    z_mean, _ = latent.encode(data.x_test)
    return [latent_scatter(z_mean, data.y_test, out / "vae_mean.png", data.class_names),
            manifold_figure(latent.manifold(n, span), span, out / "digits_over_latent.png")]


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {s!r}")
    return v


def _learning_rate(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), received {s!r}") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), received {s!r}")
    return v


def parser() -> argparse.ArgumentParser:
    d = VAEConfig()
    p = argparse.ArgumentParser(prog="python -m model.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=_positive_int, default=d.epochs, help="epochs (default %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="default %(default)s")
    p.add_argument("--mse", action="store_true", help="MSE reconstruction loss instead of BCE")
    p.add_argument("-w", "--weights", help="load these trained weights (.weights.h5 or a model "
                   "directory) instead of training")
    p.add_argument("--limit", type=_positive_int, help="train on the first N training images only")
    p.add_argument("--out", default="vae_cnn", help="directory for figures, weights and TensorBoard "
                   "logs (default %(default)s)")
    p.add_argument("--latent-dim", type=_positive_int, default=d.latent_dim, help="default %(default)s")
    p.add_argument("--dataset", default=d.dataset, choices=("mnist", "fashion_mnist"))
    p.add_argument("--npz", help="train on a user .npz (x_train, y_train, x_test, y_test)")
    p.add_argument("--lr", type=_learning_rate, default=d.learning_rate, help="RMSprop learning rate")
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--progress", help="append JSON-lines progress events to this file")
    p.add_argument("--no-store", action="store_true", help="do not save the model to the store")
    p.add_argument("--no-figures", action="store_true", help="skip the two PNG figures")
    p.add_argument("--summary", action="store_true", help="print the Keras model summaries")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from model.progress import write_event

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        if args.progress:
            write_event(args.progress, "error", message=msg)
        return 2

    try:
        config = VAEConfig(dataset=args.dataset, latent_dim=args.latent_dim,
                           loss="mse" if args.mse else LOSSES[0], epochs=args.epochs,
                           batch_size=args.batch_size, learning_rate=args.lr, limit=args.limit,
                           precision=args.precision, seed=args.seed)
        data = load_dataset(args.dataset, npz=args.npz)
        out = Path(args.out)
        store = None if args.no_store else ModelStore()
        if store is not None:
            store._writable()
        latent, record, vae = train(config, data, store=store, progress=args.progress,
                                    log_dir=None if args.weights else out / "logs", weights=args.weights)
        if args.summary:
            vae.encoder.summary()
            vae.decoder.summary()
            vae.summary()
        if not args.weights:
            out.mkdir(parents=True, exist_ok=True)
            vae.save_weights(out / "vae.weights.h5")
        m = latent.evaluate(data.x_test) if record is None else record.test_metrics
        print(f"test loss {m['loss']:.2f} (reconstruction {m['reconstruction_loss']:.2f}, "
              f"KL {m['kl_loss']:.2f})")
        if record is not None:
            print(f"saved model {record.id} in {store.root}")
        if not args.no_figures:
            for path in write_figures(latent, data, out):
                print(f"wrote {path}")
        if args.progress:
            write_event(args.progress, "done", model_id=record.id if record else None, test_metrics=m)
        return 0
    except (DataError, StoreError, TrainingError, ValueError) as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return fail("interrupted; nothing was saved and the previous models are untouched")


if __name__ == "__main__":
    sys.exit(main())
