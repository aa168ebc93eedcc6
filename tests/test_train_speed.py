"""The training speed settings change how a step runs, never what it computes:
parallel chains give the whole batch's loss and gradients, the tf.data pipeline visits every image once
per epoch in a seeded order, and the thread set-up happens only where TensorFlow still allows it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import model.vae as vae_mod
from model.train import CHAINS_ENV, MAX_CHAINS, batches, parallel_chains
from model.vae import VAEConfig, build_vae

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (10, 28, 28, 1)).astype(np.float32) / 255.0


@pytest.mark.parametrize("chains", [2, 3, 16])  # 16 > the batch of 10: one chain (no empty slices)
def test_chains_give_the_whole_batchs_loss_and_gradients(chains, images, monkeypatch):
    # z = z_mean (no sampling noise), so both ways compute exactly the same function.
    monkeypatch.setattr(vae_mod.keras.random, "normal", lambda shape, **k: tf.zeros(shape, k.get("dtype")))
    vae = build_vae(VAEConfig())
    x = tf.constant(images)
    results = {}
    for k in (1, chains):
        vae.chains = k
        with tf.GradientTape() as tape:
            total, recon, kl = vae.loss_terms(x, training=True)
        grads = tape.gradient(total, vae.trainable_weights)
        results[k] = [float(total), float(recon), float(kl)], [g.numpy() for g in grads]
    (terms1, grads1), (terms_k, grads_k) = results[1], results[chains]
    np.testing.assert_allclose(terms_k, terms1, rtol=1e-5)
    assert terms1[0] > 100  # a real loss, not zeros
    for a, b in zip(grads_k, grads1):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_chains_train_and_evaluate_in_keras(images):
    vae = build_vae(VAEConfig())
    vae.chains = 3  # batches of 4, 4 and 2: the last is smaller than the chains (one chain then)
    hist = vae.fit(
        batches(images, 4, shuffle_seed=0),
        epochs=2,
        validation_data=batches(images, 4),
        shuffle=False,
        verbose=0,
    )
    assert all(np.isfinite(v).all() for v in hist.history.values())
    assert set(hist.history) >= {"loss", "val_loss", "reconstruction_loss", "kl_loss"}


def test_batches_visit_every_image_once_per_epoch_in_a_seeded_order():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) * np.ones((1, 28, 28, 1), np.float32)
    ds = batches(x, 4, shuffle_seed=7)
    assert ds.options().autotune.enabled is False

    def epoch(d):
        out = [b[:, 0, 0, 0].numpy() for b in d]
        assert [len(b) for b in out] == [4, 4, 2]
        return np.concatenate(out).astype(int).tolist()

    first, second = epoch(ds), epoch(ds)
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second  # reshuffled every epoch
    assert epoch(batches(x, 4, shuffle_seed=7)) == first  # same seed, same order
    assert epoch(batches(x, 4)) == list(range(10))  # no seed: in order (the test set)


def test_parallel_chains_in_a_fresh_process():
    # In a fresh process TensorFlow's threads can still be set: one chain per CPU, one thread per op.
    code = (
        "import tensorflow as tf; from model.train import parallel_chains; n = parallel_chains(); "
        "print(n, tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads())"
    )
    env = {k: v for k, v in os.environ.items() if k != CHAINS_ENV}
    cpus = len(os.sched_getaffinity(0))
    expected = f"{cpus} 1 {cpus}" if 2 <= cpus <= MAX_CHAINS else "1 0 0"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == expected
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**env, CHAINS_ENV: "3"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.split("\n")[-2] == "3 1 3"


def test_parallel_chains_after_tensorflow_started_keeps_its_threads(monkeypatch):
    tf.constant(1.0) + 1.0  # this process has run ops: threads are fixed now
    monkeypatch.delenv(CHAINS_ENV, raising=False)
    expected = 1 if tf.config.threading.get_intra_op_parallelism_threads() != 1 else None
    n = parallel_chains()
    assert n == expected or (expected is None and n >= 1)
    monkeypatch.setenv(CHAINS_ENV, "1")
    assert parallel_chains() == 1


@pytest.mark.parametrize("value", ["0", "two", "-1", "65"])
def test_bad_chains_env_is_a_clear_error(value, monkeypatch):
    monkeypatch.setenv(CHAINS_ENV, value)
    with pytest.raises(ValueError, match=rf"Expected {CHAINS_ENV} to be an integer in \[1, 64\].*Fix"):
        parallel_chains()
