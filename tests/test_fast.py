"""The fast preset: VAEConfig.fast() and `python -m model.train --fast` keep the seed's model,
loss, optimizer and precision; only the batch size, the learning rate (and its schedule) and the number of
epochs change, and explicit flags override the preset. Its speed and quality are measured by
bench/train_speed.py, not here."""

import numpy as np
import pytest

from model.config import FAST_PRESET
from model.latent import LatentModel
from model.store import ModelStore
from model.train import main
from model.vae import VAEConfig, build_vae


def test_fast_preset_changes_only_batch_size_learning_rate_and_epochs():
    seed, fast = VAEConfig(), VAEConfig.fast()
    assert FAST_PRESET.keys() == {"batch_size", "epochs", "learning_rate", "lr_schedule"}
    assert (fast.batch_size, fast.epochs, fast.learning_rate, fast.lr_schedule) == (64, 20, 2e-3, "cosine")
    others = lambda c: {k: v for k, v in c.to_dict().items() if k not in FAST_PRESET}  # noqa: E731
    assert others(fast) == others(seed)  # loss, float32, latent 2, dataset, seed
    assert (seed.batch_size, seed.epochs, seed.learning_rate, seed.precision, seed.lr_schedule) == (
        128,
        30,
        1e-3,
        "float32",
        "constant",
    )
    assert fast.fingerprint() != seed.fingerprint()  # a fast model never passes for a seed-config one
    assert VAEConfig.fast(epochs=30, learning_rate=5e-4) == VAEConfig(
        batch_size=64, epochs=30, learning_rate=5e-4, lr_schedule="cosine"
    )
    with pytest.raises(ValueError, match="batch_size"):
        VAEConfig.fast(batch_size=0)


def test_fast_model_is_the_seeds_model():
    fast, seed = build_vae(VAEConfig.fast(), steps_per_epoch=938), build_vae(VAEConfig())
    for a, b in ((fast.encoder, seed.encoder), (fast.decoder, seed.decoder)):
        assert [type(layer).__name__ for layer in a.layers] == [type(layer).__name__ for layer in b.layers]
        assert [w.shape for w in a.weights] == [w.shape for w in b.weights]
        assert {layer.compute_dtype for layer in a.layers} == {"float32"}
    assert sum(m.count_params() for m in (fast.encoder, fast.decoder)) == 69_076 + 65_089


def test_cli_fast_flag_trains_the_preset_and_explicit_flags_win(empty_home, tmp_path):
    out = ["--limit", "256", "--no-figures", "--out", str(tmp_path / "out")]
    assert main(["--fast", "--epochs", "1", *out]) == 0
    assert (
        main(
            [
                "--fast",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--lr",
                "0.0005",
                "--lr-schedule",
                "constant",
                *out,
            ]
        )
        == 0
    )
    assert main(["--epochs", "1", *out]) == 0
    assert main(["--epochs", "1", "--lr-schedule", "cosine", *out]) == 0
    records = sorted(ModelStore().list(), key=lambda r: r.created)
    assert [r.config for r in records] == [
        VAEConfig.fast(epochs=1, limit=256),
        VAEConfig(epochs=1, limit=256, batch_size=32, learning_rate=0.0005),
        VAEConfig(epochs=1, limit=256),
        VAEConfig(epochs=1, limit=256, lr_schedule="cosine"),
    ]
    assert [len(r.history["loss"]) for r in records] == [1, 1, 1, 1]
    fast = LatentModel.from_record(ModelStore().record(records[0].id))
    images = fast.decode(np.zeros((2, 2), np.float32))
    assert images.dtype == np.float32 and images.shape == (2, 28, 28)


def test_cli_fast_without_epochs_uses_the_presets_20(empty_home, tmp_path, monkeypatch):
    # The config is built from the flags before any training: stop right there.
    import model.train as train_mod

    seen = {}

    def fake_train(config, *a, **k):
        seen["config"] = config
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "train", fake_train)
    assert main(["--fast", "--no-figures", "--out", str(tmp_path / "out")]) == 2
    assert seen["config"] == VAEConfig.fast() and seen["config"].epochs == 20


def test_steps_per_execution_keeps_results_and_progress(empty_home, tmp_path, monkeypatch):
    import model.train as train_mod
    from model.progress import read_events

    assert [train_mod.steps_per_execution(n) for n in (1, 2, 20, 128, 469)] == [1, 1, 2, 16, 16]
    config = VAEConfig(epochs=1, limit=2048, batch_size=64)  # 32 steps: 4 per execution
    runs = {}
    for spe in (1, train_mod.STEPS_PER_EXECUTION):
        monkeypatch.setattr(train_mod, "STEPS_PER_EXECUTION", spe)
        progress = tmp_path / f"progress-{spe}.jsonl"
        _, _, vae = train_mod.train(config, verbose=0, progress=progress)
        assert vae.steps_per_execution == train_mod.steps_per_execution(32)
        runs[spe] = vae.history.history
        batches = [e for e in read_events(progress) if e["event"] == "batch"]
        assert batches[-1]["step"] == 32 and all(0 < b["step"] <= 32 for b in batches)
    one, many = runs.values()
    assert one.keys() == many.keys()
    for k in one:  # the same steps in the same order: the same losses
        assert many[k] == pytest.approx(one[k], rel=1e-4), k
