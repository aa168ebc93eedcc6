"""The fast preset (issue 6): VAEConfig.fast() and `python -m model.train --fast` keep the seed's model
and loss; only the compute precision (bf16 convolutions, float32 weights and loss) and the learning rate
change. Its speed and 30-epoch quality are measured by bench/train_speed.py, not here."""
import numpy as np
import pytest

from model.config import FAST_LEARNING_RATE
from model.store import ModelStore
from model.train import main
from model.vae import VAEConfig, build_vae


def test_fast_preset_changes_only_precision_and_learning_rate():
    seed, fast = VAEConfig(), VAEConfig.fast()
    assert (fast.precision, fast.learning_rate) == ("mixed_bfloat16", FAST_LEARNING_RATE)
    same = {k: v for k, v in fast.to_dict().items() if k not in ("precision", "learning_rate")}
    assert same == {k: v for k, v in seed.to_dict().items() if k not in ("precision", "learning_rate")}
    assert (seed.precision, seed.learning_rate) == ("float32", 1e-3)  # the default stays the seed's
    assert fast.fingerprint() != seed.fingerprint()  # a fast model never passes for a seed-config one
    assert VAEConfig.fast(epochs=5, learning_rate=5e-4) == VAEConfig(
        epochs=5, learning_rate=5e-4, precision="mixed_bfloat16")
    with pytest.raises(ValueError, match="batch_size"):
        VAEConfig.fast(batch_size=0)


def test_fast_model_computes_in_bfloat16_with_float32_weights_and_loss():
    vae = build_vae(VAEConfig.fast())
    vae.build((None, 28, 28, 1))
    layers = {l.name: l for m in (vae.encoder, vae.decoder) for l in m.layers}
    convs = [l for l in layers.values() if "conv" in l.name and l.name != "decoder_output"]
    assert len(convs) == 4 and all(l.compute_dtype == "bfloat16" for l in convs)
    # The heads that feed the loss compute in float32: z_mean, z_log_var and the sigmoid output.
    assert {layers[n].compute_dtype for n in ("z_mean", "z_log_var", "decoder_output")} == {"float32"}
    assert {w.dtype for w in vae.weights} == {"float32"}
    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype(np.float32)
    before = [w.numpy().copy() for w in vae.trainable_weights]
    logs = vae.train_on_batch(x, return_dict=True)
    assert set(logs) == {"loss", "reconstruction_loss", "kl_loss"}
    assert all(np.isfinite(v) for v in logs.values())
    assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + logs["kl_loss"], rel=1e-5)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, vae.trainable_weights))
    assert vae.decoder(np.zeros((3, 2), np.float32)).dtype == "float32"


def test_cli_fast_flag_trains_the_preset_and_explicit_flags_win(empty_home, tmp_path):
    quick = ["--limit", "256", "--epochs", "1", "--no-figures", "--out", str(tmp_path / "out")]
    assert main(["--fast", *quick]) == 0
    assert main(["--fast", "--lr", "0.0005", "--precision", "float32", *quick]) == 0
    assert main(quick) == 0
    configs = [r.config for r in sorted(ModelStore().list(), key=lambda r: r.created)]
    assert configs == [VAEConfig.fast(epochs=1, limit=256),
                       VAEConfig(epochs=1, limit=256, learning_rate=0.0005),
                       VAEConfig(epochs=1, limit=256)]
    fast = ModelStore().load(ModelStore().find(VAEConfig.fast(epochs=1, limit=256)).id)
    images = fast.decode(np.zeros((2, 2), np.float32))
    assert images.dtype == np.float32 and images.shape == (2, 28, 28)
    assert np.all((images >= 0) & (images <= 1))
