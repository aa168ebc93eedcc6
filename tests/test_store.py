"""model.store: save -> load round trip, clear errors for broken models, atomic saves, sweeping."""

import json
import os
import shutil
import subprocess

import keras
import numpy as np
import pytest

from model import store as store_mod
from model.latent import LatentModel
from model.paths import HOME_ENV
from model.store import ModelStore, StoreError
from model.vae import VAEConfig, build_decoder, build_vae


@pytest.fixture
def store(session_home, tmp_path):
    """A private copy of the session's store (one tiny trained model, current)."""
    shutil.copytree(session_home / "models", tmp_path / "models")
    return ModelStore(tmp_path / "models")


@pytest.fixture(scope="module")
def untrained():
    """An untrained encoder/decoder pair (random weights are enough to compare outputs)."""
    vae = build_vae(VAEConfig(seed=3))
    vae.build((None, 28, 28, 1))
    return vae


@pytest.fixture(scope="module")
def probe():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (16, 28, 28), dtype=np.uint8), rng.normal(0, 2, (16, 2)).astype(np.float32)


def _dirs(root):
    return sorted(p.name for p in root.iterdir())


# ----------------------------------------------------------------------------- round trip


def test_save_then_load_gives_identical_outputs(tmp_path, untrained, probe):
    images, z = probe
    store = ModelStore(tmp_path / "models")
    config = VAEConfig(seed=3, epochs=2)
    history = {"loss": [500.0, 400.0], "val_loss": [450.0, 390.0]}
    record = store.save(
        untrained.encoder,
        untrained.decoder,
        config,
        history=history,
        test_metrics={"loss": 390.0, "reconstruction_loss": 380.0, "kl_loss": 10.0},
        train_seconds=1.5,
        extra={"note": "x"},
    )
    assert record.path == tmp_path / "models" / record.id and record.id.startswith(config.slug())
    assert sorted(os.listdir(record.path)) == ["decoder.keras", "encoder.keras", "meta.json"]
    assert store.current().id == record.id
    assert store.find(config).id == record.id and store.find(VAEConfig(seed=4)) is None
    again = store.record(record.id)
    assert again.config == config and again.history == history and again.extra == {"note": "x"}
    assert again.test_metrics["loss"] == 390.0 and again.train_seconds == 1.5

    in_memory = LatentModel(untrained.encoder, untrained.decoder, config)
    loaded = LatentModel.from_record(store.record(record.id))
    assert loaded.id == record.id and loaded.config == config and loaded.latent_dim == 2
    for got, want in zip(loaded.encode(images), in_memory.encode(images)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.decode(z), in_memory.decode(z))
    # The Sampling layer (and its seed) survive the .keras round trip.
    assert loaded.encoder.get_layer("z").seed == 3


def test_list_current_set_current_delete(store, tmp_path):
    first = store.current()
    assert [r.id for r in store.list()] == [first.id]
    assert store.list(dataset="fashion_mnist") == [] and len(store.list(dataset="mnist")) == 1
    assert first.config == VAEConfig(epochs=1, limit=512)
    assert first.label.startswith("mnist · z2 · bce · 1 ep, test loss ")
    # A second (copied) model, made current, then deleted: current falls back to the newest left.
    second_id = first.id + "-copy"
    shutil.copytree(first.path, store.root / second_id)
    store.set_current(second_id)
    assert store.current().id == second_id
    store.delete(second_id)
    assert not (store.root / second_id).exists()
    assert store.current().id == first.id
    assert not [p for p in store.root.iterdir() if p.name.startswith(".tmp-")]
    with pytest.raises(StoreError, match="No model 'nope'"):
        store.set_current("nope")
    with pytest.raises(StoreError, match="Invalid model id"):
        store.record("../models")
    assert ModelStore(tmp_path / "absent").list() == [] and ModelStore(tmp_path / "absent").current() is None


# ----------------------------------------------------------------------------- broken models


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage, expected",
    [
        (
            lambda p: (p / "encoder.keras").write_bytes(b"garbage" * 100),
            "is not a valid .keras file (corrupt or truncated)",
        ),
        (lambda p: _truncate(p / "decoder.keras"), "is not a valid .keras file (corrupt or truncated)"),
        (lambda p: (p / "decoder.keras").unlink(), "is missing decoder.keras"),
        (lambda p: _zip_without_model(p / "encoder.keras"), "Could not load the encoder of model"),
    ],
)
def test_corrupt_or_missing_keras_file_gives_store_error(store, damage, expected):
    rec = store.current()
    damage(rec.path)
    with pytest.raises(StoreError) as info:
        LatentModel.from_record(store.record(rec.id))
    message = str(info.value)
    assert expected in message
    assert rec.id in message and "Fix:" in message and "\n" not in message


def _zip_without_model(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not a keras model")


@pytest.mark.parametrize(
    "meta, expected",
    [
        ("{ not json", "has a corrupt meta.json"),
        ("[1, 2, 3]", "has a corrupt meta.json (expected a JSON object, received list)"),
        ('{"format": 1}', "has a corrupt meta.json (no 'config' entry)"),
        ('{"format": 1, "config": {"loss": "l1"}}', "has a corrupt meta.json (Expected loss in"),
        ('{"format": "one", "config": {}}', "has a corrupt meta.json (expected an integer format"),
        ('{"format": 99, "config": {}}', "was saved by a newer latent explorer (format 99 > 1)"),
        (b"\xff\xfe\x00garbage", "has a corrupt meta.json"),
        (None, "has no meta.json: it is incomplete"),
    ],
)
def test_bad_meta_json_gives_store_error(store, meta, expected):
    rec = store.current()
    meta_path = rec.path / "meta.json"
    if meta is None:
        meta_path.unlink()
    elif isinstance(meta, bytes):
        meta_path.write_bytes(meta)
    else:
        meta_path.write_text(meta)
    for call in (store.record, lambda i: LatentModel.from_record(store.record(i))):
        with pytest.raises(StoreError) as info:
            call(rec.id)
        assert expected in str(info.value) and "Fix:" in str(info.value)
    # A broken model is left out of the list, and current() does not fail because of it.
    assert store.list() == [] and store.current() is None


def test_incompatible_weights_give_store_error(store, tmp_path):
    rec = store.current()
    build_decoder(VAEConfig(latent_dim=3)).save(tmp_path / "decoder3.keras")
    shutil.copy(tmp_path / "decoder3.keras", rec.path / "decoder.keras")
    with pytest.raises(StoreError, match=r"Incompatible encoder/decoder: .* Fix: retrain"):
        LatentModel.from_record(store.record(rec.id))
    # encoder and decoder swapped
    shutil.copy(rec.path / "encoder.keras", tmp_path / "enc.keras")
    shutil.copy(tmp_path / "decoder3.keras", rec.path / "encoder.keras")
    shutil.copy(tmp_path / "enc.keras", rec.path / "decoder.keras")
    with pytest.raises(StoreError, match="Incompatible encoder/decoder"):
        LatentModel.from_record(store.record(rec.id))


def test_swapped_encoder_and_decoder_are_named(store, tmp_path):
    rec = store.current()
    enc, dec = rec.path / "encoder.keras", rec.path / "decoder.keras"
    os.rename(enc, tmp_path / "enc.keras")
    os.rename(dec, enc)
    os.rename(tmp_path / "enc.keras", dec)
    with pytest.raises(
        StoreError,
        match=r"encoder.keras and decoder.keras are swapped: encoder.keras looks "
        r"like a decoder \(input \(2,\), output \(28, 28, 1\)\) .* Fix: swap",
    ):
        LatentModel.from_record(store.record(rec.id))
    os.rename(enc, tmp_path / "enc.keras")  # swapped back, it loads
    os.rename(dec, enc)
    os.rename(tmp_path / "enc.keras", dec)
    assert LatentModel.from_record(store.record(rec.id)).decode(np.zeros((1, 2))).shape == (1, 28, 28)
    shutil.copy(dec, enc)  # two decoders
    with pytest.raises(
        StoreError,
        match=r"encoder.keras looks like a decoder \(input \(2,\), output "
        r"\(28, 28, 1\)\), so both files hold the same half",
    ):
        LatentModel.from_record(store.record(rec.id))


def test_meta_latent_size_must_match_the_files(store):
    rec = store.current()
    meta = json.loads((rec.path / "meta.json").read_text())
    meta["config"]["latent_dim"] = 3
    (rec.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="latent size 2 but meta.json says 3"):
        LatentModel.from_record(store.record(rec.id))


def test_unsafe_keras_file_is_refused(store, tmp_path):
    """Files are loaded with safe_mode: a Lambda (arbitrary Python code) is refused, not run."""
    rec = store.current()
    z = keras.Input((2,))
    x = keras.layers.Dense(784)(z)
    x = keras.layers.Lambda(lambda t: t * 1.0)(x)
    evil = keras.Model(z, keras.layers.Reshape((28, 28, 1))(x))
    evil.save(rec.path / "decoder.keras")
    with pytest.raises(StoreError, match="Could not load the decoder of model .*safe"):
        LatentModel.from_record(store.record(rec.id))


# ----------------------------------------------------------------------------- atomic saves


class Boom(Exception):
    pass


@pytest.mark.parametrize(
    "error", [OSError(28, "No space left on device"), Boom("killed mid-save"), KeyboardInterrupt()]
)
def test_failure_mid_save_leaves_no_partial_model(store, untrained, monkeypatch, error):
    before = _dirs(store.root)
    current = store.current().id

    def save_then_fail(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a decoder")  # a partial file in the temp dir
        raise error

    monkeypatch.setattr(untrained.decoder, "save", save_then_fail)
    expected = StoreError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected) as info:
        store.save(untrained.encoder, untrained.decoder, VAEConfig(seed=3))
    if isinstance(error, OSError):
        assert "No space left on device" in str(info.value) and "the previous model is untouched" in str(
            info.value
        )
    assert _dirs(store.root) == before  # no temp dir, no new model dir
    assert store.current().id == current
    assert LatentModel.from_record(store.record(current)).decode(np.zeros((1, 2))).shape == (1, 28, 28)


def _dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_sweep_removes_temp_dirs_of_dead_processes_only(store):
    dead = store.root / f".tmp-{_dead_pid()}-mnist-z2-bce-e30-abc"
    junk = store.root / ".tmp-notapid-x"
    mine = store.root / f".tmp-{os.getpid()}-saving-now"
    alive = store.root / f".tmp-{os.getppid()}-saving-elsewhere"
    for d in (dead, junk, mine, alive):
        d.mkdir()
        (d / "encoder.keras").write_bytes(b"partial")
    assert [r.id for r in store.list()] == [store.current().id]  # temp dirs are never models
    removed = store.sweep()
    assert sorted(removed) == sorted([dead, junk])
    assert not dead.exists() and not junk.exists() and mine.exists() and alive.exists()


def test_unwritable_store_gives_store_error(tmp_path, untrained, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="Cannot create the model store .*Fix: set LATENT_EXPLORER_HOME"):
        ModelStore(blocker / "models").save(untrained.encoder, untrained.decoder, VAEConfig())
    monkeypatch.setenv(HOME_ENV, str(blocker / "home"))
    with pytest.raises(StoreError, match="Fix: set LATENT_EXPLORER_HOME to a writable directory"):
        ModelStore()


def test_unwritable_store_directory_gives_store_error(tmp_path, untrained, monkeypatch):
    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setattr(store_mod.os, "access", lambda path, mode: False)  # also fails as root
    with pytest.raises(StoreError, match=r"The model store .* is not writable"):
        ModelStore(root).save(untrained.encoder, untrained.decoder, VAEConfig())
    assert list(root.iterdir()) == []


# ------------------------------------------------------------------ bad fields, broken, delete, size


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("created", 1e300, "expected created to be a time"),  # time.localtime(1e300): OverflowError
        ("created", 10**400, "created"),  # an int too large for a float
        ("created", float("nan"), "expected created to be finite"),
        ("created", "yesterday", "expected created to be a number"),
        ("created", -5, "expected created to be a time"),
        ("train_seconds", float("inf"), "expected train_seconds to be finite"),
        ("train_seconds", [1], "expected train_seconds to be a number"),
        ("test_metrics", {"loss": "low"}, "expected test_metrics['loss'] to be a number"),
        ("test_metrics", [1, 2], "expected test_metrics to be a JSON object"),
        ("history", {"loss": 3.0}, "expected history['loss'] to be a list"),
        ("history", {"loss": [1.0, None]}, "expected history['loss'] values to be a number"),
        ("extra", "x", "expected extra to be a JSON object"),
        ("extra", {"weights_from": 7}, "expected extra['weights_from'] to be a string"),
        ("format", True, "expected an integer format"),
    ],
)
def test_every_field_read_from_meta_json_is_validated(store, field, value, expected):
    """Before the fix a "created" of 1e300 was accepted here and then took the whole page down."""
    rec = store.current()
    meta = json.loads((rec.path / "meta.json").read_text())
    meta[field] = value
    (rec.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError) as info:
        store.record(rec.id)
    assert expected in str(info.value) and rec.id in str(info.value) and "Fix:" in str(info.value)
    assert store.list() == [] and store.broken() == {rec.id: str(info.value)}
    assert store.current_id() == rec.id and store.current() is None


def test_every_readable_record_has_a_label(store):
    rec = store.current()
    meta = json.loads((rec.path / "meta.json").read_text())
    meta.update(created=2**33 - 1, test_metrics={"loss": float("nan")}, history={"loss": [float("nan")]})
    (rec.path / "meta.json").write_text(json.dumps(meta))
    assert "z2" in store.record(rec.id).label


def test_delete_any_model_and_the_store_size(store):
    rec = store.current()
    copy = store.root / "copy-of-the-model"
    shutil.copytree(rec.path, copy)
    (copy / "meta.json").write_text("garbage")
    size = store.size_bytes()
    assert size > sum(p.stat().st_size for p in rec.path.iterdir())  # both directories counted
    assert set(store.broken()) == {"copy-of-the-model"}
    store.delete("copy-of-the-model")  # a broken model can be deleted
    assert store.broken() == {} and store.size_bytes() < size
    store.delete(rec.id)  # so can the current one; current() then has nothing to fall back to
    assert store.list() == [] and store.current() is None and store.size_bytes() < 1000
    assert not list(store.root.glob(".tmp-*"))
    with pytest.raises(StoreError, match="Invalid model id"):
        store.delete("../models")


def test_extra_files_are_saved_with_the_model_atomically(tmp_path, untrained, monkeypatch):
    store = ModelStore(tmp_path / "models")
    rec = store.save(
        untrained.encoder, untrained.decoder, VAEConfig(dataset="npz-x-12345678"), files={"test.npz": b"data"}
    )
    assert (rec.path / "test.npz").read_bytes() == b"data"
    with pytest.raises(ValueError, match="plain extra file name"):
        store.save(untrained.encoder, untrained.decoder, VAEConfig(), files={"meta.json": b"x"})
    assert [r.id for r in store.list()] == [rec.id] and not list(store.root.glob(".tmp-*"))


def test_write_model_dir_keeps_a_copy_another_process_wrote_first(tmp_path):
    store = ModelStore(tmp_path / "models")
    meta = {"id": "m1"}
    assert store.write_model_dir("m1", meta, {"a.bin": lambda p: p.write_bytes(b"first")}, what="x") is True
    # a second writer of the same id (two sessions installing the bundle at once) keeps the first copy
    assert store.write_model_dir("m1", meta, {"a.bin": lambda p: p.write_bytes(b"second")}, what="x") is False
    assert (store.root / "m1" / "a.bin").read_bytes() == b"first"
    assert json.loads((store.root / "m1" / "meta.json").read_text()) == meta
    assert not list(store.root.glob(".tmp-*"))


def test_write_model_dir_failure_names_what_failed_and_leaves_nothing(tmp_path):
    store = ModelStore(tmp_path / "models")

    def full_disk(path):
        raise OSError(28, "No space left on device")

    with pytest.raises(StoreError, match=r"Could not install the bundled model to .*No space left.*Fix"):
        store.write_model_dir("m2", {}, {"a.bin": full_disk}, what="install the bundled model")
    assert not list(store.root.iterdir())


def test_save_bytes_of_a_much_worse_model_keeps_the_default(store, untrained, tmp_path):
    """A model trained elsewhere (a Ray worker's bytes) goes through the same default rule as `save`."""
    default = store.current()
    loss = default.test_metrics["loss"]
    untrained.encoder.save(tmp_path / "e.keras")
    untrained.decoder.save(tmp_path / "d.keras")
    parts = {
        "encoder.keras": (tmp_path / "e.keras").read_bytes(),
        "decoder.keras": (tmp_path / "d.keras").read_bytes(),
    }
    cfg = default.config.replace(seed=77)
    worse = store.save_bytes(parts, cfg, test_metrics={"loss": 1.5 * loss})
    assert store.current_id() == default.id and "20% higher" in store.why_not_default(worse)
    better = store.save_bytes(parts, cfg.replace(seed=78), test_metrics={"loss": 0.9 * loss})
    assert store.current_id() == better.id
