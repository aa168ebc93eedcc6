"""model.config: one VAEConfig from the command line to the saved model; strict where it is new input,
lenient where an old meta.json is read; the CLI's flags derived from the fields."""

import json
import shutil
from dataclasses import fields
from pathlib import Path

import pytest

from model.config import (
    FAST_PRESET,
    QUICK_PRESET,
    VAEConfig,
    add_config_arguments,
    config_from_args,
    field_name,
    flags,
    option,
)
from model.store import ModelStore

BUNDLED = Path(__file__).resolve().parents[1] / "model" / "bundled" / "mnist-seed"


def test_from_dict_rejects_an_unknown_key_naming_it_and_the_known_ones():
    with pytest.raises(ValueError) as e:
        VAEConfig.from_dict({"epochs": 3, "learnig_rate": 0.5})
    message = str(e.value)
    assert message.startswith("Expected config fields among dataset, latent_dim, loss, epochs")
    assert "Received unknown field: 'learnig_rate'" in message
    assert "Fix: rename 'learnig_rate' to 'learning_rate'" in message
    assert all(f.name in message for f in fields(VAEConfig))
    with pytest.raises(ValueError, match=r"unknown fields: 'a', 'b'\. Fix: remove it"):
        VAEConfig.from_dict({"a": 1, "b": 2})
    with pytest.raises(TypeError, match="Expected a dict of config fields. Received: list"):
        VAEConfig.from_dict([("epochs", 3)])
    assert VAEConfig.from_dict({"epochs": 3}) == VAEConfig(epochs=3)


def test_an_old_meta_json_with_an_unknown_key_still_loads(home):
    """A model saved by another version (a key this one does not know) is read leniently by the store."""
    store = ModelStore()
    src = store.current()
    meta = json.loads((src.path / "meta.json").read_text())
    meta["config"]["dropout"] = 0.1  # a field some other version had
    meta["config"].pop("lr_schedule", None)  # and one this version added later
    dst = store.root / "old-model"
    shutil.copytree(src.path, dst)
    (dst / "meta.json").write_text(json.dumps(meta))
    record = store.record("old-model")
    assert record.config == src.config
    assert "old-model" in {r.id for r in store.list()}


def test_kl_weight_one_keeps_todays_fingerprint_and_model_ids():
    meta = json.loads((BUNDLED / "meta.json").read_text())
    assert "kl_weight" not in meta["config"]  # saved before the field existed
    config = VAEConfig.from_dict(meta["config"], strict=False)
    assert config.kl_weight == 1.0
    assert meta["id"].startswith(config.slug() + "-")  # the id the bundled model was saved with
    assert VAEConfig(kl_weight=1).fingerprint() == VAEConfig().fingerprint() == "746cb6e56c"
    assert VAEConfig(kl_weight=4).fingerprint() != VAEConfig().fingerprint()
    assert VAEConfig(kl_weight=4).fingerprint() != VAEConfig(kl_weight=0.5).fingerprint()
    assert VAEConfig(kl_weight=4).to_dict()["kl_weight"] == 4.0  # an int becomes a float: one id


@pytest.mark.parametrize("beta", [-1, -0.5, float("nan"), float("inf"), "2", True, None])
def test_kl_weight_is_checked(beta):
    with pytest.raises(
        ValueError, match=r"^Expected kl_weight to be a finite number >= 0\. Received: kl_weight="
    ):
        VAEConfig(kl_weight=beta)
    assert VAEConfig(kl_weight=0).kl_weight == 0.0


def test_presets_are_classmethods_with_overrides():
    assert VAEConfig.preset("seed") == VAEConfig()
    assert VAEConfig.quick() == VAEConfig(epochs=3, limit=10_000) == VAEConfig(**QUICK_PRESET)
    assert VAEConfig.fast() == VAEConfig(**FAST_PRESET)
    assert VAEConfig.quick(dataset="fashion_mnist").dataset == "fashion_mnist"
    with pytest.raises(
        ValueError, match=r"Expected a preset in \('seed', 'fast', 'quick'\)\. Received: 'slow'"
    ):
        VAEConfig.preset("slow")


def test_every_field_has_a_flag_help_and_label():
    import argparse

    p = argparse.ArgumentParser()
    add_config_arguments(p)
    options = {s for a in p._actions for s in a.option_strings}
    for f in fields(VAEConfig):
        opt = option(f.name)
        assert opt.help and opt.label, f.name
        assert set(flags(f.name)) <= options, f.name
        assert f"--{f.name.replace('_', '-')}" in options  # every field under its own name too
        assert field_name(flags(f.name)[0]) == f.name
    assert flags("kl_weight")[0] == "--beta" and flags("learning_rate")[0] == "--lr"
    assert field_name("beta") == "kl_weight"
    with pytest.raises(ValueError, match=r"Expected a config field among dataset .*Received: 'dropout'"):
        field_name("dropout")


def test_config_from_args_parses_every_field_and_names_a_bad_flag():
    import argparse

    p = argparse.ArgumentParser()
    add_config_arguments(p)
    argv = (
        "--dataset fashion_mnist --latent-dim 3 --loss mse --epochs 2 --batch-size 64 --lr 0.002 "
        "--limit 512 --precision mixed_bfloat16 --seed 7 --lr-schedule cosine --beta 4"
    ).split()
    config = config_from_args(p.parse_args(argv))
    assert config == VAEConfig(
        dataset="fashion_mnist",
        latent_dim=3,
        loss="mse",
        epochs=2,
        batch_size=64,
        learning_rate=0.002,
        limit=512,
        precision="mixed_bfloat16",
        seed=7,
        lr_schedule="cosine",
        kl_weight=4.0,
    )
    assert all(getattr(config, f.name) != f.default for f in fields(VAEConfig))  # the test covers all
    assert config_from_args(p.parse_args([])) == VAEConfig()
    assert config_from_args(p.parse_args(["--epochs", "5"]), VAEConfig.fast()) == VAEConfig.fast(epochs=5)
    for argv, message in [
        (["--beta", "-1"], "argument --beta: expected a finite number >= 0, received '-1'"),
        (["--kl-weight", "nan"], "argument --beta: expected a finite number >= 0, received 'nan'"),
        (["--beta", "big"], "argument --beta: expected a finite number >= 0, received 'big'"),
        (["--latent-dim", "65"], "argument --latent-dim: expected an integer in [1, 64], received '65'"),
        (["--loss", "l1"], "argument --loss: invalid choice: 'l1' (choose from 'bce', 'mse')"),
    ]:
        with pytest.raises(ValueError) as e:
            config_from_args(p.parse_args(argv))
        assert str(e.value) == message


def test_the_picker_label_names_beta_only_when_it_is_not_one(tmp_path):
    from model.store import ModelRecord

    label = ModelRecord("m", tmp_path, VAEConfig(kl_weight=4, epochs=1)).label
    assert label.startswith("mnist · z2 · bce · β 4 · 1 ep · ")
    assert "β" not in ModelRecord("m", tmp_path, VAEConfig(epochs=1)).label
