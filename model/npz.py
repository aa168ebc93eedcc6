"""A user's `.npz` dataset read and checked: the four arrays x_train, y_train, x_test, y_test, images
(N, 28, 28) in [0, 255] (uint8, or floats in [0, 1] or [0, 255]) and integer labels, each problem named
with its fix (model.errors.DataError).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.errors import DataError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _image_shape(x: np.ndarray, name: str, origin: str) -> np.ndarray:
    """An x array as (N, 28, 28): (N, 28, 28, 1) and flattened (N, 784) images are accepted."""
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    elif x.ndim == 2 and x.shape[1] == 784:  # flattened images
        x = x.reshape(-1, 28, 28)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DataError(f"{origin}: expected {name} of shape (N, 28, 28), received {x.shape}.")
    return x


def _image_values(x: np.ndarray, name: str, origin: str) -> np.ndarray:
    """(N, 28, 28) images as uint8: [0, 1] floats are scaled to [0, 255]; DataError names what is wrong."""
    if x.shape[0] == 0:
        raise DataError(f"{origin}: {name} is empty.")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{origin}: {name} must hold numbers, received {x.dtype}.")
    finite = bool(np.all(np.isfinite(x)))
    if finite and np.issubdtype(x.dtype, np.floating) and x.size and float(x.max()) <= 1.0:
        x = x * 255.0
    if not finite or x.min() < 0 or x.max() > 255:
        raise DataError(f"{origin}: {name} values must be in [0, 255] (or [0, 1] floats).")
    return np.rint(x).astype(np.uint8)


def _labels(y: np.ndarray, name: str, origin: str) -> np.ndarray:
    """A y array as uint8 class labels; DataError unless it holds integers in [0, 255]."""
    if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() > 255)):
        got = (
            f"{y.dtype} in [{y.min()}, {y.max()}]"
            if y.size and np.issubdtype(y.dtype, np.number)
            else str(y.dtype)
        )
        raise DataError(f"{origin}: {name} must hold integer class labels in [0, 255], received {got}.")
    return y.astype(np.uint8)


def validate(arrays: dict, origin: str) -> dict[str, np.ndarray]:
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(
            f"{origin}: expected arrays {list(NPZ_KEYS)}, missing {missing}. "
            "Fix: np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)."
        )
    out = {}
    for split in ("train", "test"):
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"])
        x = _image_shape(x, f"x_{split}", origin)
        if y.shape != (x.shape[0],):
            raise DataError(f"{origin}: expected y_{split} of shape ({x.shape[0]},), received {y.shape}.")
        out[f"x_{split}"] = _image_values(x, f"x_{split}", origin)
        out[f"y_{split}"] = _labels(y, f"y_{split}", origin)
    return out


def load_npz(path: Path) -> dict[str, np.ndarray]:
    fix = "Fix: give a file written by numpy.savez with x_train/y_train/x_test/y_test."
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a single array saved with np.save
            raise DataError(f"{path} holds a single array, not an .npz archive of named arrays. {fix}")
        with loaded as f:
            return {k: f[k] for k in f.files}
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"Dataset file not found: {path}. Fix: check the path.") from None
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, ...
        raise DataError(
            f"{path} is not a readable .npz file ({type(e).__name__}: {e}). "
            "Fix: give a file written by numpy.savez with x_train/y_train/x_test/y_test."
        ) from None
