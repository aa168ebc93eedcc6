"""Caches between the page and `model/`: the loaded model, the test set and the arrays derived from it.

Cache keys are *model stamps* (`model_stamp`): the model id plus the size and mtime of its weight files.
A retrained model has a new id, so it gets new cache entries and replaces the old one without a restart;
a model directory whose files were damaged after loading gets a new stamp and is loaded (and refused)
again. Heavy objects are passed to the cached functions as `_`-prefixed arguments, which Streamlit does
not hash: the stamp alone is the key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from explorer import scatter, views
from explorer.context import Explorer, Latents
from explorer.serving import keep_compiled_functions
from model import bundle
from model.data import Dataset, is_builtin, model_dataset
from model.errors import DataError, StoreError
from model.measures import per_image_measures
from model.paths import home
from model.store import FILES, ModelRecord, ModelStore


def get_store() -> ModelStore:
    """The store under the current home. Not cached: LATENT_EXPLORER_HOME decides where it lives.

    On the first start with a store that has no MNIST model, installs the bundled model (model.bundle:
    file copies, no Keras); afterwards this costs one stat of the store's `.bundle-installed` marker."""
    store = ModelStore()
    try:
        bundle.install(store)
    except StoreError:
        pass  # an unwritable store: the first-run page offers training, whose error names the fix
    return store


def model_stamp(record: ModelRecord) -> str:
    """`<id>|<size>:<mtime_ns>` of each model file: changes whenever the model on disk changes.

    Byte-identical copies of a store (same id, sizes and mtimes, e.g. `shutil.copytree`) share a stamp.
    """
    parts = [record.id]
    for name in FILES:
        try:
            s = (record.path / name).stat()
            parts.append(f"{s.st_size}:{s.st_mtime_ns}")
        except OSError:
            parts.append("missing")
    return "|".join(parts)


def broken_models(store: ModelStore) -> list[str]:
    """One message per model directory the store cannot read (it leaves them out of `list()`)."""
    return list(store.broken().values())


# ----------------------------------------------------------------------------- cached resources


@st.cache_resource(max_entries=5, show_spinner="Loading the model…")
def _load_model(stamp: str, _root: str, _model_id: str):
    from model.latent import LatentModel  # lazy: loading needs Keras

    model = LatentModel.from_record(ModelStore(_root).record(_model_id))
    model.warm_up()  # compile encode/decode under this spinner, not on the user's first click
    return model


def load_model(store: ModelStore, record: ModelRecord):
    """The stored model `record`, loaded once per server and model stamp (the page's model, the compared
    one, the quality panel's reconstructions all share this cache). Raises StoreError."""
    return _load_model(model_stamp(record), str(store.root), record.id)


@st.cache_resource(max_entries=2, show_spinner="Loading the test set…")
def _dataset(name: str, home_dir: str, model_dir: str = "") -> Dataset:
    """A built-in dataset (model_dir ""), or the test set kept with a model trained on a user's data."""
    data = model_dataset(name, model_dir)
    _read_only(data.x_test, data.y_test)  # shared by every session
    return data


@st.cache_resource(max_entries=1, show_spinner="Loading the training images…")
def _all_points(name: str, home_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """A built-in dataset's test images then its training images, and their labels (read-only)."""
    if not is_builtin(name):
        raise DataError(
            f"Only the built-in datasets can show their training images here; {name!r} is a user's data. "
            "Fix: turn off 'Training images too'."
        )
    data = model_dataset(name, "")
    images = np.concatenate([data.x_test, data.x_train])
    labels = np.concatenate([data.y_test, data.y_train]).astype(np.int64)
    _read_only(images, labels)
    return images, labels


# ----------------------------------------------------------------------------- cached arrays


def _slider_bound(values: np.ndarray) -> float:
    """A symmetric slider range covering 99.9% of the test set, at least the prior's +-3."""
    q = float(np.quantile(np.abs(values), 0.999)) if len(values) else 0.0
    return float(min(10.0, max(3.0, np.ceil(q * 1.1 * 2) / 2)))


def _read_only(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


@st.cache_resource(max_entries=4, show_spinner="Encoding the test set…")
def latents(stamp: str, _model, _images: np.ndarray, _labels: np.ndarray) -> Latents:
    """The test set's posterior means and log-variances, its labels, its 2-D view and slider bounds.

    For latent_dim == 2 the view is the latent plane itself; above 2 it is a PCA projection of the means.
    One read-only copy shared by every session and run (st.cache_resource): st.cache_data would unpickle
    a fresh copy of the arrays on every run of every session.
    """
    z_mean, z_log_var = _model.encode(_images)  # (N, d) each
    d = z_mean.shape[1]
    if d == 2:
        mean, comps, explained = np.zeros(2, np.float32), np.eye(2, dtype=np.float32), np.ones(2)
    elif d == 1:
        mean, comps, explained = np.zeros(1, np.float32), np.array([[1.0], [0.0]], np.float32), np.ones(1)
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=0).fit(z_mean)
        mean, comps = pca.mean_.astype(np.float32), pca.components_.astype(np.float32)
        explained = pca.explained_variance_ratio_
    lat = Latents(
        z_mean=z_mean,
        z_log_var=z_log_var,
        labels=np.asarray(_labels).astype(np.int64),
        xy=((z_mean - mean) @ comps.T).astype(np.float32),
        proj_mean=mean,
        proj_components=comps,
        explained=np.asarray(explained, np.float64),
        bounds=np.array([_slider_bound(z_mean[:, i]) for i in range(d)], np.float32),
        center=(np.round(z_mean.mean(axis=0) * 20) / 20).astype(np.float32),  # the sliders' start
    )
    _read_only(*vars(lat).values())
    return lat


@st.cache_resource(max_entries=4, show_spinner="Measuring every test image…")
def measures(stamp: str, _model, _images: np.ndarray, _labels, _z_mean, _z_log_var) -> dict[str, np.ndarray]:
    """Every per-image measure of `model.measures` (reconstruction and KL terms, σ, k-NN agreement,
    distance to the centre), computed once per model and shared read-only by every tab."""
    out = per_image_measures(
        _model, _images, _labels, _z_mean, _z_log_var, reconstructions(stamp, _model, _z_mean)
    )
    _read_only(*out.values())
    return out


@st.cache_resource(max_entries=2, show_spinner="Decoding every test image's posterior mean…")
def reconstructions(stamp: str, _model, _z_mean: np.ndarray) -> np.ndarray:
    """The decoded posterior means of a model's test set, (N, 28, 28) float32 read-only: one batched decode
    per model, shared by the per-image measures and the pick preview's sprites."""
    recon = _model.decode(_z_mean)
    _read_only(recon)
    return recon


@st.cache_data(max_entries=16, show_spinner="Decoding the manifold…")
def manifold_png(stamp: str, _model, n: int, span: float, dims: tuple[int, int]) -> bytes:
    """The n x n decoded grid over [-span, span]^2 (one batched decode) as PNG bytes."""
    return views.to_png(_model.manifold(n=n, span=span, dims=dims))


@st.cache_resource(max_entries=2, show_spinner="Drawing the density image…")
def overview_raster(stamp: str, _xy: np.ndarray, _labels: np.ndarray, size: int = 700) -> np.ndarray:
    """Every point of a big scatter as an RGB image over the scatter's axis ranges (`scatter.axis_ranges`),
    coloured like its points, drawn under a sample of them (`scatter.overview_keep`)."""
    x_range, y_range = scatter.axis_ranges(_xy)
    img = views.latent_map(_xy, _labels, (*x_range, *y_range), size)
    _read_only(img)
    return img


@st.cache_resource(max_entries=4, show_spinner=False)
def map_base(stamp: str, _xy: np.ndarray, _labels: np.ndarray, extent: tuple, size: int) -> np.ndarray:
    """The live map's background: the test set as a (size, size, 3) raster (see `views.latent_map`).
    Read-only and shared (drawing on it copies first)."""
    base = views.latent_map(_xy, _labels, extent, size)
    _read_only(base)
    return base


@st.cache_data(max_entries=32, show_spinner=False)
def prior_samples(stamp: str, _model, n: int, seed: int) -> tuple[np.ndarray, list[bytes]]:
    """n draws z ~ N(0, I) and their decodings as PNG bytes (4x upscaled)."""
    z, images = _model.sample_prior(n, seed=seed)
    return z, [views.to_png(im, 4) for im in images]


@st.cache_data(max_entries=256, show_spinner=False)
def pick_pngs(stamp: str, _model, _images: np.ndarray, index: int, scale: int = 6) -> tuple[bytes, bytes]:
    """Test image `index` and its reconstruction (decoded posterior mean) as PNG bytes."""
    original = _images[index]
    recon = _model.reconstruct(original[None])[0]
    return views.to_png(original, scale), views.to_png(recon, scale)


def load_explorer(store: ModelStore, record: ModelRecord, with_train: bool = False) -> Explorer:
    """Load (or fetch from the caches) the model, its test set and latents. Raises StoreError/DataError.

    with_train: the training images too, after the test set (a built-in dataset's 60,000 for MNIST), with
    their own stamp, so no cache keyed by the stamp mixes them up with the test-set-only explorer."""
    stamp = model_stamp(record)
    model = load_model(store, record)
    keep_compiled_functions()  # idempotent: Streamlit's per-run clear_session would drop compiled functions
    name = record.config.dataset
    data = _dataset(name, str(Path(home()).resolve()), "" if is_builtin(name) else str(record.path))
    if model.latent_dim != record.config.latent_dim:  # pragma: no cover - LatentModel checks this too
        raise StoreError(f"Model {record.id!r} does not match its meta.json. Fix: retrain it.")
    names = tuple(data.class_names)
    if with_train:  # the training images after the test set: rows below len(x_test) stay test rows
        images, labels = _all_points(name, str(Path(home()).resolve()))
        lat = latents(stamp + "+train", model, images, labels)
        return Explorer(record, stamp + "+train", model, images, names, lat, n_test=len(data.x_test))
    lat = latents(stamp, model, data.x_test, data.y_test)
    return Explorer(record, stamp, model, data.x_test, names, lat)
