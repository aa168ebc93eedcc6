"""model.measures: the per-image values the scatter can be coloured by."""

import numpy as np
import pytest

from model import measures


@pytest.fixture(scope="module")
def latent(reference):
    return reference[0]


@pytest.fixture(scope="module")
def digits(reference):
    data = reference[1]
    return data.x_test[:200], data.y_test[:200]


def test_measures_are_the_losss_own_terms_per_image(latent, digits):
    images, labels = digits
    m = measures.per_image_measures(latent, images, labels)
    assert set(m) == set(measures.MEASURES)
    assert all(v.shape == (200,) and v.dtype == np.float32 for v in m.values())
    # recompute by hand, independently of vae_losses: 784 * mean BCE at the posterior mean, and the KL formula
    z_mean, z_log_var = latent.encode(images)
    x = images.reshape(200, -1).astype(np.float64) / 255.0
    x_hat = np.clip(latent.decode(z_mean).reshape(200, -1).astype(np.float64), 1e-7, 1 - 1e-7)
    bce = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat)).sum(1)
    np.testing.assert_allclose(m["recon"], bce, rtol=2e-3)
    kl = -0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var)).sum(1)
    np.testing.assert_allclose(m["kl"], kl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m["sigma"], np.exp(0.5 * z_log_var).mean(1), rtol=1e-5)
    np.testing.assert_allclose(m["radius"], np.linalg.norm(z_mean, axis=1), rtol=1e-5)
    assert ((m["knn"] >= 0) & (m["knn"] <= 1)).all()
    # the mean of the per-image terms is the evaluation's scale (evaluate samples z: only close)
    ev = latent.evaluate(images)
    assert abs(m["recon"].mean() - ev["reconstruction_loss"]) < 0.1 * ev["reconstruction_loss"]


def test_knn_agreement_against_brute_force():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 3)).astype(np.float32)
    labels = rng.integers(0, 3, 60)
    got = measures.knn_agreement(z, labels, k=5)
    d = ((z[:, None] - z[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    want = (labels[np.argsort(d, axis=1)[:, :5]] == labels[:, None]).mean(1)
    np.testing.assert_allclose(got, want)


def test_knn_agreement_with_duplicates_and_tiny_sets():
    z = np.zeros((4, 2), np.float32)  # all the same point: self may not come first
    labels = np.array([1, 1, 1, 2])
    np.testing.assert_allclose(measures.knn_agreement(z, labels, k=5), [2 / 3, 2 / 3, 2 / 3, 0])
    assert measures.knn_agreement(z[:1], labels[:1]).tolist() == [1.0]
    with pytest.raises(ValueError, match="Expected z_means"):
        measures.knn_agreement(z, labels[:2])


def test_worst_rows():
    v = np.array([3.0, np.nan, 9.0, 9.0, -1.0])
    assert measures.worst(v, 3) == [2, 3, 0]
    assert measures.worst(v, 2, worse_high=False) == [4, 0]
    assert measures.worst([], 5) == []
