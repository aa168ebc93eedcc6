"""model.quality: the IWAE log-likelihood bound, k-NN accuracy on latent means, the comparison table."""

import json
import os

import numpy as np
import pytest

from model import quality
from model.latent import LatentModel


@pytest.fixture(scope="module")
def tiny(session_home):
    """A model trained for 1 epoch on 2,000 MNIST images (not stored), with its dataset."""
    from model import paths
    from model.data import load_dataset
    from model.train import train
    from model.vae import VAEConfig

    old = os.environ.get(paths.HOME_ENV)
    os.environ[paths.HOME_ENV] = str(session_home)  # read the cached data only
    try:
        data = load_dataset("mnist")
        model, _, _ = train(VAEConfig(epochs=1, limit=2000), data, store=None, verbose=0)
    finally:
        if old is None:
            os.environ.pop(paths.HOME_ENV)
        else:
            os.environ[paths.HOME_ENV] = old
    return model, data


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_likelihood_is_the_training_loss(loss):
    """-log p(x|z) is exactly the reconstruction term the model was trained on."""
    import keras

    from model.vae import vae_losses

    rng = np.random.default_rng(0)
    x = rng.random((6, 28, 28, 1)).astype(np.float32)
    x_hat = rng.random((6, 28, 28, 1)).astype(np.float32)
    recon, _ = vae_losses(x, x_hat, np.zeros((6, 2)), np.zeros((6, 2)), loss)
    ll = quality.log_likelihood(x.reshape(6, 784).astype(np.float64), x_hat.reshape(6, 784), loss)
    np.testing.assert_allclose(-ll, keras.ops.convert_to_numpy(recon), rtol=1e-4)


def test_k1_estimate_is_the_elbo_and_matches_the_test_loss(tiny):
    model, data = tiny
    x = data.x_test[:500]
    est = quality.iwae(model, x, k=16, seed=1)
    loss = model.evaluate(x)["loss"]  # the negative ELBO, z sampled once per image
    assert est["elbo_nll"] == pytest.approx(loss, rel=0.02)
    one = quality.iwae(model, x, k=1, seed=1)
    assert one["iwae_nll"] == pytest.approx(one["elbo_nll"])
    assert one["iwae_nll"] == pytest.approx(loss, rel=0.02)


def test_bound_tightens_with_more_samples(tiny):
    model, data = tiny
    x = data.x_test[:300]
    lw = quality.log_weights(model, x, k=32, seed=2)
    assert lw.shape == (32, 300) and np.all(np.isfinite(lw))
    nll = {k: quality.iwae(model, x, k=k, seed=3)["iwae_nll"] for k in (1, 4, 32)}
    assert nll[1] > nll[4] > nll[32]  # a larger K gives a higher log-likelihood bound on average
    est = quality.iwae(model, x, k=32, seed=3)
    assert est["iwae_nll"] <= est["elbo_nll"]  # Jensen: log-mean-exp >= mean, for every image
    assert est["iwae_nll"] > 0 and est["n"] == 300 and est["k"] == 32
    assert "Bernoulli" in est["likelihood"]


def test_iwae_is_reproducible_and_rejects_bad_k(tiny):
    model, data = tiny
    x = data.x_test[:50]
    assert quality.iwae(model, x, k=4, seed=7)["iwae_nll"] == quality.iwae(model, x, k=4, seed=7)["iwae_nll"]
    with pytest.raises(ValueError, match="Expected k to be a positive integer. Received: k=0"):
        quality.iwae(model, x, k=0)


def test_iwae_reports_progress_and_stops_when_told(tiny):
    model, data = tiny
    seen = []
    quality.iwae(model, data.x_test[:200], k=64, progress=seen.append)  # 64 images per batch: 4 batches
    assert seen == sorted(seen) and len(seen) == 4 and seen[-1] == 1.0

    class Stop(Exception):
        pass

    def stop(fraction):
        seen.append(fraction)
        raise Stop

    seen.clear()
    with pytest.raises(Stop):
        quality.iwae(model, data.x_test[:200], k=64, progress=stop)
    assert len(seen) == 1  # stopped after the first batch, not at the end


def test_knn_accuracy_is_above_chance(tiny):
    model, data = tiny
    r = quality.knn_accuracy(model, data, k=5, n_train=5000, n_test=2000)
    assert r["n_train"] == 5000 and r["n_test"] == 2000
    assert 0.10 < r["chance"] < 0.13  # MNIST's classes are nearly balanced
    assert r["knn_accuracy"] > r["chance"] + 0.08, r


def test_evaluate_quality_caches_and_compare_shows_it(home):
    from model.data import load_dataset
    from model.store import ModelStore

    store = ModelStore()
    rec = store.current()
    model = LatentModel.from_record(store.record(rec.id))
    data = load_dataset("mnist")
    assert quality.cached(rec.id) == {}
    row = quality.compare(store.list())[0]
    assert row["iwae_nll"] is None and row["knn_accuracy"] is None
    assert row["test_loss"] == pytest.approx(rec.test_metrics["loss"])
    assert row["reconstruction"] + row["kl"] == pytest.approx(row["test_loss"], rel=1e-5)

    r = quality.evaluate_quality(model, data, n_iwae=100, k_iwae=4, n_knn_train=1000)
    assert r["iwae_n"] == 100 and r["iwae_k"] == 4 and r["knn_n_train"] == 1000
    assert r["iwae_nll"] <= r["elbo_nll"]
    saved = json.loads(quality.cache_path(rec.id).read_text())
    assert saved["iwae_nll"] == r["iwae_nll"] and saved["knn_accuracy"] == r["knn_accuracy"]
    row = quality.compare(store.list())[0]
    assert set(row) == set(quality.COLUMNS)
    assert row["iwae_nll"] == r["iwae_nll"] and row["knn_accuracy"] == r["knn_accuracy"]
    assert row["latent_dim"] == 2 and row["dataset"] == "mnist" and row["id"] == rec.id
    assert row["kl_weight"] == rec.config.kl_weight == 1.0


def test_corrupt_cache_is_ignored_and_wrong_dataset_refused(home, tiny):
    from model.store import ModelStore

    rec = ModelStore().current()
    path = quality.cache_path(rec.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert quality.cached(rec.id) == {}
    assert quality.compare([rec])[0]["iwae_nll"] is None

    model, data = tiny
    from model.data import Dataset

    other = Dataset(
        "fashion_mnist",
        data.x_train[:10],
        data.y_train[:10],
        data.x_test[:10],
        data.y_test[:10],
        data.class_names,
    )
    with pytest.raises(ValueError, match="Expected the 'mnist' dataset .* Received: 'fashion_mnist'"):
        quality.evaluate_quality(model, other)


def test_cli_estimates_the_current_model_and_prints_the_table(home, capsys):
    from model.store import ModelStore

    rec = ModelStore().current()
    assert quality.main(["--n", "50", "--k", "2"]) == 0
    out = capsys.readouterr().out
    q = quality.cached(rec.id)
    assert q["iwae_n"] == 50 and q["iwae_k"] == 2
    assert f"-log p(x) <= {q['iwae_nll']:.2f} nats" in out
    assert out.splitlines()[1].startswith("dataset\tlatent_dim") and rec.id in out.splitlines()[-1]
    assert quality.main(["--model", "no-such-model"]) == 2
    assert "error: No model 'no-such-model'" in capsys.readouterr().err
