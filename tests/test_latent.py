"""model.latent.LatentModel: the numpy facade the UI uses (batched encode/decode, manifold, views)."""

import numpy as np
import pytest

from model import latent as latent_module
from model.data import load_dataset
from model.latent import LatentModel
from model.paths import HOME_ENV
from model.store import ModelStore


@pytest.fixture(scope="module")
def latent(session_home):
    """The session's tiny trained model, loaded from its store (read only)."""
    store = ModelStore(session_home / "models")
    return LatentModel.from_record(store.record(store.current().id))


@pytest.fixture(scope="module")
def digits(session_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(HOME_ENV, str(session_home))
        ds = load_dataset("mnist")
    return ds.x_test[:300], ds.y_test[:300]


def test_decode_shape_dtype_and_range(latent):
    z = np.random.default_rng(0).normal(0, 3, (7, 2))
    images = latent.decode(z)
    assert images.shape == (7, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert latent.decode(z[0]).shape == (1, 28, 28)  # a single vector
    np.testing.assert_allclose(latent.decode(z[0])[0], images[0], atol=1e-6)
    assert latent.decode(np.zeros((0, 2))).shape == (0, 28, 28)
    assert latent.decode([[0.5, -0.5]]).shape == (1, 28, 28)  # lists are fine


@pytest.mark.parametrize("z", [np.zeros((3, 3)), np.zeros((2, 2, 2)), np.zeros(5), np.zeros((1, 1))])
def test_decode_rejects_bad_z_shape(latent, z):
    with pytest.raises(ValueError, match=r"Expected z of shape \(N, 2\). Received: z.shape="):
        latent.decode(z)


def test_decode_rejects_non_finite_z(latent):
    with pytest.raises(ValueError, match="finite"):
        latent.decode([[0.0, np.nan]])


def test_manifold_matches_per_cell_decode(latent):
    n, span = 5, 3.0
    image = latent.manifold(n=n, span=span)
    assert image.shape == (n * 28, n * 28) and image.dtype == np.float32
    grid = np.linspace(-span, span, n)
    for i in range(n):
        for j in range(n):
            want = latent.decode([[grid[j], grid[::-1][i]]])[0]  # row i: z[1] = grid reversed
            got = image[i * 28 : (i + 1) * 28, j * 28 : (j + 1) * 28]
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"cell {i},{j}")
    # The seed's orientation: top-left is (z0, z1) = (-span, +span), bottom-right (+span, -span).
    np.testing.assert_allclose(image[:28, :28], latent.decode([[-span, span]])[0], atol=1e-5)
    np.testing.assert_allclose(image[-28:, -28:], latent.decode([[span, -span]])[0], atol=1e-5)
    np.testing.assert_allclose(image[:28, -28:], latent.decode([[span, span]])[0], atol=1e-5)


def test_manifold_dims_are_x_then_y(latent):
    image = latent.manifold(n=3, span=2.0, dims=(1, 0))  # x axis = z[1], y axis = z[0]
    np.testing.assert_allclose(image[:28, -28:], latent.decode([[2.0, 2.0]])[0], atol=1e-5)
    np.testing.assert_allclose(image[:28, :28], latent.decode([[2.0, -2.0]])[0], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [dict(n=0), dict(span=0), dict(dims=(0, 0)), dict(dims=(0, 2)), dict(base=[0.0, 0.0, 0.0]), dict(n=2.5)],
)
def test_manifold_rejects_bad_arguments(latent, kwargs):
    with pytest.raises(ValueError, match="Expected"):
        latent.manifold(**kwargs)


def test_encode_in_chunks_equals_one_call(latent, digits, monkeypatch):
    images = digits[0][:50]
    whole_mean, whole_log_var = latent.encode(images)
    assert whole_mean.shape == whole_log_var.shape == (50, 2) and whole_mean.dtype == np.float32
    z = np.random.default_rng(1).normal(0, 2, (50, 2)).astype(np.float32)
    whole_decoded = latent.decode(z)
    monkeypatch.setattr(latent_module, "CHUNK", 7)  # 50 = 7 * 7 + 1: uneven chunks, a last chunk of one
    chunk_mean, chunk_log_var = latent.encode(images)
    np.testing.assert_allclose(chunk_mean, whole_mean, atol=1e-5)
    np.testing.assert_allclose(chunk_log_var, whole_log_var, atol=1e-5)
    np.testing.assert_allclose(latent.decode(z), whole_decoded, atol=1e-5)


def test_encode_accepts_uint8_and_float_images(latent, digits):
    images = digits[0][:10]
    from_uint8 = latent.encode(images)[0]
    from_float = latent.encode(images.astype(np.float32)[..., None] / 255.0)[0]
    np.testing.assert_allclose(from_uint8, from_float, atol=1e-6)
    empty_mean, empty_log_var = latent.encode(np.zeros((0, 28, 28), np.uint8))
    assert empty_mean.shape == empty_log_var.shape == (0, 2)


def test_reconstruct_prior_interpolate_evaluate(latent, digits):
    images, _ = digits
    rec = latent.reconstruct(images[:4])
    np.testing.assert_allclose(rec, latent.decode(latent.encode(images[:4])[0]), atol=1e-6)
    z, samples = latent.sample_prior(6, seed=5)
    assert z.shape == (6, 2) and samples.shape == (6, 28, 28)
    np.testing.assert_array_equal(latent.sample_prior(6, seed=5)[0], z)
    path, frames = latent.interpolate([-1.0, 2.0], [3.0, 0.0], steps=5)
    np.testing.assert_allclose(path[[0, 2, 4]], [[-1, 2], [1, 1], [3, 0]], atol=1e-6)
    np.testing.assert_allclose(frames[-1], latent.decode([[3.0, 0.0]])[0], atol=1e-5)
    metrics = latent.evaluate(images)
    assert set(metrics) == {"loss", "reconstruction_loss", "kl_loss"}
    assert np.isfinite(list(metrics.values())).all()
    assert metrics["loss"] == pytest.approx(metrics["reconstruction_loss"] + metrics["kl_loss"])
    # Close to the test loss saved at training time (a tiny model: same regime, z sampled afresh).
    assert metrics["loss"] == pytest.approx(latent.record.test_metrics["loss"], rel=0.1)


def test_identity(latent):
    assert latent.latent_dim == 2 and latent.id == latent.record.id
    assert latent.config.limit == 512 and latent.config.epochs == 1


def _numpy_decoder(spec, z):
    """A plain numpy forward pass over `decoder_weights()` (the recipe the browser's pad follows)."""
    act = {
        "relu": lambda v: np.maximum(v, 0),
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "linear": lambda v: v,
    }
    x = np.asarray(z, np.float64)
    for layer in spec:
        if layer["kind"] == "dense":
            w, b = layer["weights"]
            x = x @ w + b
        elif layer["kind"] == "reshape":
            x = x.reshape(len(x), *layer["shape"])
        else:  # transposed convolution, padding "same": scatter each input pixel, then crop
            k, b = layer["weights"]  # (kh, kw, out, in)
            (kh, kw), (sh, sw) = layer["kernel_size"], layer["strides"]
            n, h, w_, _ = x.shape
            full = np.zeros((n, (h - 1) * sh + kh, (w_ - 1) * sw + kw, k.shape[2]))
            for a in range(kh):
                for c in range(kw):
                    full[:, a : a + (h - 1) * sh + 1 : sh, c : c + (w_ - 1) * sw + 1 : sw] += x @ k[a, c].T
            ph, pw = max(kh - sh, 0) // 2, max(kw - sw, 0) // 2
            x = full[:, ph : ph + h * sh, pw : pw + w_ * sw] + b
        x = act[layer.get("activation", "linear")](x)
    return x[..., 0]


def test_decoder_weights_rebuild_the_decoder(latent):
    spec = latent.decoder_weights()
    assert [layer["kind"] for layer in spec] == [
        "dense",
        "reshape",
        "conv2d_transpose",
        "conv2d_transpose",
        "conv2d_transpose",
    ]
    assert spec[0]["weights"][0].shape == (latent.latent_dim, 7 * 7 * 64)
    assert all(w.dtype == np.float32 for layer in spec for w in layer.get("weights", []))
    z = np.random.default_rng(0).normal(size=(4, latent.latent_dim)) * 2
    np.testing.assert_allclose(_numpy_decoder(spec, z), latent.decode(z), atol=1e-5)
