"""Weights files: check a --weights path, load one into a VAE (this project's .weights.h5, the seed's
Keras 2 .h5, or a store model directory), and write a VAE's weights (atomically). Keras is imported
inside the functions: checking a path needs no TensorFlow."""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

import h5py

from model.errors import StoreError, TrainingError
from model.paths import atomic_write_bytes

WEIGHTS_FIX = (
    "Fix: give a .weights.h5 file written by `python -m model.train` (e.g. vae_cnn/vae.weights.h5), "
    "the seed's Keras 2 .h5 (e.g. vae_cnn_mnist.h5), or a model directory from the store, "
    "trained with the same --latent-dim."
)


def check_weights_path(path) -> None:
    """Cheap checks of a --weights path (no TensorFlow needed): it exists and, if a file, is HDF5."""
    path = Path(path)
    if path.is_dir():
        return
    if not path.is_file():
        raise TrainingError(f"Weights file not found: {path}. {WEIGHTS_FIX}")
    if not path.name.endswith((".h5", ".hdf5")):
        raise TrainingError(
            f"{path} is not an HDF5 weights file (expected a name ending in .weights.h5 "
            f"or .h5). {WEIGHTS_FIX}"
        )
    try:
        ok = h5py.is_hdf5(str(path))
    except OSError:
        ok = False
    if not ok:
        raise TrainingError(
            f"Could not read {path}: it is not a valid HDF5 weights file (corrupt or not HDF5). {WEIGHTS_FIX}"
        )


def load_weights(vae, path: Path) -> None:
    """Load weights into a built VAE.

    Accepts a Keras 3 `.weights.h5` (what `python -m model.train` writes), the seed's Keras 2 `.h5`
    (`vae.save_weights('vae_cnn_mnist.h5')`: same layers in the same order, so Keras' legacy HDF5
    reader fills the encoder and decoder exactly), or a model directory of the store.
    Raises TrainingError naming the problem and the fix.
    """
    from model.latent import load_keras

    path = Path(path)
    check_weights_path(path)
    if path.is_dir():
        missing = [n for n in ("encoder.keras", "decoder.keras") if not (path / n).is_file()]
        if missing:
            raise TrainingError(
                f"{path} is a directory without {' and '.join(missing)}, so it is not a "
                f"saved model. {WEIGHTS_FIX}"
            )
        try:
            enc = load_keras(path / "encoder.keras", "encoder", path.name)
            dec = load_keras(path / "decoder.keras", "decoder", path.name)
        except StoreError as e:
            raise TrainingError(str(e)) from None
        try:
            vae.encoder.set_weights(enc.get_weights())
            vae.decoder.set_weights(dec.get_weights())
        except ValueError as e:
            raise TrainingError(
                f"Weights in {path} do not fit this model ({e}). Fix: use the same "
                "--latent-dim as the saved model."
            ) from None
        return
    try:
        with warnings.catch_warnings():  # Keras warns per skipped layer before raising on a mismatch
            warnings.simplefilter("ignore")
            vae.load_weights(path)
    except OSError as e:  # h5py: not an HDF5 file, truncated, unreadable
        raise TrainingError(
            f"Could not read {path}: it is not a valid HDF5 weights file (corrupt or "
            f"truncated: {str(e).splitlines()[0][:200]}). {WEIGHTS_FIX}"
        ) from None
    except Exception as e:  # ValueError on shape/layer mismatches, KeyError on foreign layouts
        raise TrainingError(
            f"Weights in {path} do not fit this model ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:300]}). {WEIGHTS_FIX}"
        ) from None


def weights_bytes(vae) -> bytes:
    """The VAE's weights as `.weights.h5` bytes, built in memory.

    HDF5 writing straight to a full disk crashed the process (SIGSEGV in h5py's cleanup, leaving a
    partial file); in memory nothing can fail that way, and the bytes then go through
    `atomic_write_bytes`, where a full disk is a plain OSError. Falls back to a temp file if this
    Keras has no in-memory H5 store."""
    try:
        from keras.src.saving import saving_lib

        buf = io.BytesIO()
        h5 = saving_lib.H5IOStore(buf, mode="w")
        saving_lib._save_state(
            vae, weights_store=h5, assets_store=None, inner_path="", visited_saveables=set()
        )
        h5.close()
        return buf.getvalue()
    except (ImportError, AttributeError, TypeError):  # a Keras whose internals moved
        with tempfile.TemporaryDirectory() as d:
            vae.save_weights(Path(d) / "vae.weights.h5")
            return (Path(d) / "vae.weights.h5").read_bytes()


def save_weights(vae, path: Path) -> Path:
    """Write the VAE's weights to `path` (a .weights.h5) atomically: all of it or nothing."""
    try:
        atomic_write_bytes(path, weights_bytes(vae))
    except OSError as e:  # name the file asked for, not the temp file
        raise OSError(e.errno, e.strerror, str(path)) from None
    return path
