"""model.vae: the seed's architecture, the Sampling layer, the loss and a tiny training run."""

import math

import keras
import numpy as np
import pytest

from model.data import load_dataset, to_float
from model.paths import HOME_ENV
from model.vae import VAE, Sampling, VAEConfig, build_decoder, build_encoder, build_vae, vae_losses


@pytest.fixture(scope="module")
def images(session_home):
    """The first 512 MNIST training images as the network's float input (N, 28, 28, 1)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(HOME_ENV, str(session_home))
        return to_float(load_dataset("mnist").x_train[:512])


# ----------------------------------------------------------------------------- architecture


def test_parameter_counts_equal_the_seed():
    encoder, decoder = build_encoder(), build_decoder()
    assert encoder.count_params() == 69_076
    assert decoder.count_params() == 65_089
    assert [tuple(o.shape) for o in encoder.outputs] == [(None, 2)] * 3
    assert tuple(decoder.outputs[0].shape) == (None, 28, 28, 1)
    assert [layer.name for layer in encoder.layers][-3:] == ["z_mean", "z_log_var", "z"]
    assert isinstance(encoder.get_layer("z"), Sampling)


def test_latent_dim_changes_only_the_latent_layers():
    cfg = VAEConfig(latent_dim=5)
    # z_mean/z_log_var: 2 * (16 * 5 + 5); decoder's first Dense: (5 + 1) * 3136.
    assert build_encoder(cfg).count_params() == 69_076 - 2 * 34 + 2 * 85
    assert build_decoder(cfg).count_params() == 65_089 - 3 * 3136 + 6 * 3136


def test_mixed_precision_keeps_float32_outputs():
    cfg = VAEConfig(precision="mixed_bfloat16")
    encoder, decoder = build_encoder(cfg), build_decoder(cfg)
    z_mean, z_log_var, z = encoder(np.zeros((2, 28, 28, 1), np.float32))
    assert z_mean.dtype == z_log_var.dtype == z.dtype == "float32"
    assert decoder(np.zeros((2, 2), np.float32)).dtype == "float32"


# ----------------------------------------------------------------------------- Sampling


def test_sampling_statistics():
    # As keras' gaussian_noise_test: a fixed seed, many draws, mean and std within a tolerance.
    layer = Sampling(seed=1337)
    z_mean = np.full((200, 50), 2.0, np.float32)
    z_log_var = np.full((200, 50), math.log(0.25), np.float32)  # std 0.5
    z = keras.ops.convert_to_numpy(layer([z_mean, z_log_var]))
    assert z.shape == (200, 50)
    assert abs(z.mean() - 2.0) < 0.02
    assert abs(z.std() - 0.5) < 0.02
    # Each latent coordinate gets its own noise (no noise shared by broadcasting).
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 0.25


def test_sampling_is_reproducible_per_seed_and_fresh_per_call():
    ones = np.ones((8, 3), np.float32)
    a, b, c = Sampling(seed=7), Sampling(seed=7), Sampling(seed=8)
    first_a = keras.ops.convert_to_numpy(a([ones, ones]))
    np.testing.assert_array_equal(first_a, keras.ops.convert_to_numpy(b([ones, ones])))
    assert not np.allclose(first_a, keras.ops.convert_to_numpy(c([ones, ones])))
    assert not np.allclose(first_a, keras.ops.convert_to_numpy(a([ones, ones])))  # the seed advances


def test_sampling_with_tiny_variance_returns_the_mean():
    z_mean = np.arange(6, dtype=np.float32).reshape(3, 2)
    z = keras.ops.convert_to_numpy(Sampling(seed=0)([z_mean, np.full_like(z_mean, -40.0)]))
    np.testing.assert_allclose(z, z_mean, atol=1e-6)


def test_sampling_get_config_round_trip():
    layer = Sampling(seed=42, name="z")
    config = layer.get_config()
    assert config["seed"] == 42 and config["name"] == "z"
    clone = Sampling.from_config(config)
    assert clone.seed == 42 and clone.name == "z"
    ones = np.ones((4, 2), np.float32)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer([ones, ones])), keras.ops.convert_to_numpy(clone([ones, ones]))
    )
    # Registered serializable: a .keras file can name it without custom_objects.
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "latent_explorer>Sampling"
    assert isinstance(keras.saving.deserialize_keras_object(serialized), Sampling)
    assert Sampling(seed=1).compute_output_shape([(None, 3), (None, 3)]) == (None, 3)


# ----------------------------------------------------------------------------- loss


def _numpy_losses(x, x_hat, z_mean, z_log_var, loss):
    x = x.reshape(len(x), -1).astype(np.float64)
    x_hat = np.clip(x_hat.reshape(len(x_hat), -1).astype(np.float64), 1e-7, 1 - 1e-7)
    if loss == "bce":
        per_pixel = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat))
    else:
        per_pixel = (x - x_hat) ** 2
    recon = 784 * per_pixel.mean(axis=1)
    kl = -0.5 * np.sum(1 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=1)
    return recon, kl


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_vae_losses_equal_a_numpy_computation(loss):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (5, 28, 28, 1)).astype(np.float32)
    x[0] = x[0] > 0.5  # a binary image too
    x_hat = rng.uniform(0.01, 0.99, (5, 28, 28, 1)).astype(np.float32)
    z_mean = rng.normal(0, 1.5, (5, 2)).astype(np.float32)
    z_log_var = rng.normal(0, 1, (5, 2)).astype(np.float32)
    recon, kl = vae_losses(x, x_hat, z_mean, z_log_var, loss)
    want_recon, want_kl = _numpy_losses(
        x, x_hat, z_mean.astype(np.float64), z_log_var.astype(np.float64), loss
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(recon), want_recon, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kl), want_kl, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_vae_evaluate_reports_the_seed_loss(images, loss):
    """The VAE's own test_step (what fit/evaluate report) equals 784*BCE (or MSE) + KL in numpy."""
    vae = build_vae(VAEConfig(loss=loss, seed=1))
    vae.build((None, 28, 28, 1))
    # Make sampling deterministic: z_log_var = -30 everywhere, so z = z_mean to ~1e-7.
    log_var = vae.encoder.get_layer("z_log_var")
    log_var.set_weights(
        [np.zeros_like(w) for w in log_var.get_weights()[:1]]
        + [np.full_like(log_var.get_weights()[1], -30.0)]
    )
    # Batches of 64 digits and 36 blank images, with outputs near 0 (bias -3) so the two batches' losses
    # differ a lot: the figure is the mean over the 100 images, not the mean of the two batch means.
    out = vae.decoder.layers[-1]
    out.set_weights([out.get_weights()[0], np.full_like(out.get_weights()[1], -3.0)])
    x = np.concatenate([images[:64], np.zeros_like(images[:36])])
    got = vae.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    z_mean, z_log_var, _ = (keras.ops.convert_to_numpy(t) for t in vae.encoder(x))
    x_hat = keras.ops.convert_to_numpy(vae.decoder(z_mean))
    recon, kl = _numpy_losses(x, x_hat, z_mean.astype(np.float64), z_log_var.astype(np.float64), loss)
    np.testing.assert_allclose(got["reconstruction_loss"], recon.mean(), rtol=1e-4)
    np.testing.assert_allclose(got["kl_loss"], kl.mean(), rtol=1e-4)
    np.testing.assert_allclose(got["loss"], recon.mean() + kl.mean(), rtol=1e-4)


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="Expected loss in"):
        vae_losses(np.zeros((1, 784)), np.zeros((1, 784)), np.zeros((1, 2)), np.zeros((1, 2)), "l1")
    with pytest.raises(ValueError, match="Expected loss in"):
        VAE(build_encoder(), build_decoder(), loss="l1")


# ----------------------------------------------------------------------------- training


def test_one_epoch_on_tiny_data_lowers_the_loss(images):
    vae = build_vae(VAEConfig(seed=0))
    before = vae.evaluate(images, batch_size=256, verbose=0, return_dict=True)
    history = vae.fit(images, epochs=1, batch_size=64, verbose=0).history
    after = vae.evaluate(images, batch_size=256, verbose=0, return_dict=True)
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss"}
    assert all(math.isfinite(v) for vs in history.values() for v in vs)
    assert after["loss"] < 0.9 * before["loss"], (before, after)
    assert after["reconstruction_loss"] < before["reconstruction_loss"]


def test_a_larger_beta_trades_reconstruction_for_a_smaller_kl(images):
    """β-VAE: the same data, seed and steps; β=4 ends with a lower KL and a higher reconstruction loss
    than β=0.5. The reported loss stays recon + KL; the objective recon + β·KL is its own metric."""
    results = {}
    for beta in (0.5, 4.0):
        config = VAEConfig(kl_weight=beta, latent_dim=8, batch_size=16, learning_rate=3e-3, seed=0)
        vae = build_vae(config)
        history = vae.fit(images, epochs=2, batch_size=16, verbose=0, shuffle=False).history
        assert set(history) == {"loss", "reconstruction_loss", "kl_loss", "objective"}
        m = vae.evaluate(images, batch_size=512, verbose=0, return_dict=True)
        assert m["loss"] == pytest.approx(m["reconstruction_loss"] + m["kl_loss"], rel=1e-4)
        assert m["objective"] == pytest.approx(m["reconstruction_loss"] + beta * m["kl_loss"], rel=1e-4)
        results[beta] = m
    assert results[4.0]["kl_loss"] < results[0.5]["kl_loss"], results
    assert results[4.0]["reconstruction_loss"] > results[0.5]["reconstruction_loss"], results


def test_kl_weight_is_checked_and_saved_by_the_vae():
    with pytest.raises(
        ValueError, match=r"Expected kl_weight to be a finite number >= 0\. Received: kl_weight=-1"
    ):
        VAE(build_encoder(), build_decoder(), kl_weight=-1)
    vae = build_vae(VAEConfig(kl_weight=2.5))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(vae))
    assert clone.kl_weight == vae.kl_weight == 2.5
    assert [m.name for m in build_vae(VAEConfig()).metrics] == ["loss", "reconstruction_loss", "kl_loss"]


def test_vae_get_config_round_trip():
    vae = build_vae(VAEConfig(loss="mse"))
    vae.build((None, 28, 28, 1))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(vae))
    assert isinstance(clone, VAE) and clone.loss_kind == "mse"
    assert clone.count_params() == vae.count_params() == 69_076 + 65_089


# ----------------------------------------------------------------------------- config


def test_config_defaults_are_the_seed():
    c = VAEConfig()
    assert (c.dataset, c.latent_dim, c.loss, c.epochs, c.batch_size) == ("mnist", 2, "bce", 30, 128)
    assert c.learning_rate == 1e-3 and c.limit is None and c.precision == "float32"


def test_config_round_trip_and_fingerprint():
    c = VAEConfig(latent_dim=3, loss="mse", limit=512)
    assert VAEConfig.from_dict(c.to_dict()) == c
    assert VAEConfig.from_dict({**c.to_dict(), "unknown_future_field": 1}, strict=False) == c
    assert c.fingerprint() == VAEConfig.from_dict(c.to_dict()).fingerprint()
    others = [
        VAEConfig(latent_dim=3, loss="mse", limit=512, **{k: v})
        for k, v in [
            ("dataset", "fashion_mnist"),
            ("epochs", 5),
            ("batch_size", 64),
            ("learning_rate", 1e-4),
            ("precision", "mixed_bfloat16"),
            ("seed", 1),
        ]
    ]
    assert len({c.fingerprint(), *(o.fingerprint() for o in others)}) == 7
    assert c.slug().startswith("mnist-z3-mse-e30-n512-") and c.slug().endswith(c.fingerprint())
    assert "/" not in VAEConfig(dataset="../../etc").slug()
    # numpy numbers (a slider, an array) give the same config as Python numbers
    assert (
        VAEConfig(epochs=np.int64(30), learning_rate=np.float64(1e-3)).fingerprint()
        == VAEConfig().fingerprint()
    )


def test_fields_added_later_keep_the_ids_of_stored_models():
    # The seed config's fingerprint before `lr_schedule` existed: models saved then must still be found.
    assert VAEConfig().fingerprint() == "746cb6e56c"
    assert VAEConfig(lr_schedule="cosine").fingerprint() != VAEConfig().fingerprint()
    assert (
        VAEConfig.from_dict({k: v for k, v in VAEConfig().to_dict().items() if k != "lr_schedule"})
        == VAEConfig()
    )


def test_cosine_schedule_decays_the_learning_rate_to_zero_over_the_run(images):
    with pytest.raises(ValueError, match="steps_per_epoch"):
        build_vae(VAEConfig(lr_schedule="cosine"))
    rates = {}
    for schedule in ("constant", "cosine"):
        config = VAEConfig(epochs=2, batch_size=64, lr_schedule=schedule)
        vae = build_vae(config, steps_per_epoch=len(images) // 64)
        lr0 = float(vae.optimizer.learning_rate)
        vae.fit(images, epochs=2, batch_size=64, verbose=0, shuffle=False)
        rates[schedule] = (lr0, float(vae.optimizer.learning_rate), int(vae.optimizer.iterations))
    assert rates["constant"][:2] == pytest.approx((1e-3, 1e-3))
    lr0, lr_end, steps = rates["cosine"]
    assert (
        steps == 2 * (len(images) // 64)
        and lr0 == pytest.approx(1e-3)
        and lr_end == pytest.approx(0, abs=1e-9)
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(loss="l1"), "loss"),
        (dict(precision="float16"), "precision"),
        (dict(latent_dim=0), "latent_dim"),
        (dict(latent_dim=65), "latent_dim"),
        (dict(latent_dim=2.5), "latent_dim"),
        (dict(epochs=0), "epochs"),
        (dict(epochs=True), "epochs"),
        (dict(batch_size=-1), "batch_size"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=1.5), "learning_rate"),
        (dict(learning_rate="fast"), "learning_rate"),
        (dict(limit=0), "limit"),
        (dict(limit="all"), "limit"),
        (dict(seed=-1), "seed"),
        (dict(seed=1.5), "seed"),
        (dict(dataset=""), "dataset"),
        (dict(lr_schedule="linear"), "lr_schedule"),
    ],
)
def test_config_validation_errors(kwargs, name):
    with pytest.raises(ValueError, match=rf"^Expected {name} .*Received: {name}="):
        VAEConfig(**kwargs)
