"""The bundled model (model/bundled/mnist-seed, model.bundle): reproducible, verified, installed once.

tests/conftest.py turns installing off for the suite (LATENT_EXPLORER_BUNDLE=0); the `bundle_on`
fixture turns it back on here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from model import bundle
from model.config import VAEConfig
from model.latent import LatentModel
from model.store import ModelStore, StoreError

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "streamlit_app.py")


@pytest.fixture
def bundle_on(monkeypatch):
    monkeypatch.setenv(bundle.ENV, "1")


def page_text(at: AppTest) -> str:
    return "\n".join(
        str(e.value)
        for kind in ("markdown", "caption", "info", "error", "warning", "subheader", "title")
        for e in at.get(kind)
    )


# ----------------------------------------------------------------------------- the committed files


def test_bundle_is_the_seed_config_small_and_matches_its_fingerprints():
    meta = bundle.read_meta()
    assert VAEConfig.from_dict(meta["config"]) == VAEConfig()  # 30 epochs, batch 128, BCE, z=2, seed 0
    bundle.verify_files()
    sizes = {p.name: p.stat().st_size for p in bundle.BUNDLE_DIR.iterdir()}
    assert set(sizes) == {"encoder.keras", "decoder.keras", "meta.json"}
    assert sum(sizes.values()) < 1_000_000, sizes
    m = meta["test_metrics"]  # the full test set, as training reports it
    assert m["loss"] == pytest.approx(m["reconstruction_loss"] + m["kl_loss"])
    assert m["loss"] < 160, "a trained seed model is at ~147-150; the quick preview is at ~182"
    assert meta["extra"]["bundled"] is True
    assert meta["extra"]["bundle"]["command"] == bundle.COMMAND


def test_a_changed_file_fails_the_fingerprint(tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(bundle.BUNDLE_DIR, copy)
    data = bytearray((copy / "decoder.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "decoder.keras").write_bytes(bytes(data))
    with pytest.raises(StoreError, match="decoder.keras does not match its fingerprint"):
        bundle.verify_files(copy)


def test_installed_bundle_loads_with_safe_mode_and_reproduces_its_slice_loss(
    empty_home, bundle_on, monkeypatch
):
    import keras

    calls = []
    real = keras.saving.load_model
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: calls.append(k) or real(*a, **k))
    store = ModelStore()
    model_id = bundle.install(store)
    latent = LatentModel.from_record(store.record(model_id))  # the store -> LatentModel path the app uses
    assert len(calls) == 2 and all(k.get("safe_mode") is True for k in calls)
    recorded = bundle.read_meta()["extra"]["bundle"]["slice"]
    now = bundle.slice_loss(latent)
    for key in ("loss", "reconstruction_loss", "kl_loss"):
        assert now[key] == pytest.approx(recorded[key], abs=0.5), key
    # the deterministic slice loss is the same number twice in a row (no hidden sampling state)
    assert bundle.slice_loss(latent)["loss"] == pytest.approx(now["loss"], abs=1e-3)


# ----------------------------------------------------------------------------- installing


def test_install_into_an_empty_store_makes_it_current_and_explorable(empty_home, bundle_on):
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    text = page_text(at)
    assert "No trained model" not in text
    assert "bundled model trained with the seed's settings" in text
    store = ModelStore()
    record = store.current()
    assert record is not None and record.extra.get("bundled") is True
    assert "bundled" in record.label
    assert [r.id for r in store.list()] == [record.id]
    picker = next(s for s in at.selectbox if s.label == "Model to explore")
    assert picker.value == record.id
    assert at.get("plotly_chart"), "the explorer (scatter) is shown"


def test_install_is_idempotent_and_cheap_once_done(empty_home, bundle_on, monkeypatch):
    store = ModelStore()
    first = bundle.install(store)
    assert first and (store.root / bundle.MARKER).is_file()
    assert store.current().id == first
    monkeypatch.setattr(bundle, "read_meta", lambda *a: pytest.fail("read the bundle again"))
    assert bundle.install(store) is None
    assert [r.id for r in store.list()] == [first]


def test_a_deleted_bundle_is_not_reinstalled(empty_home, bundle_on):
    store = ModelStore()
    model_id = bundle.install(store)
    store.delete(model_id)
    assert bundle.install(store) is None
    assert store.list() == [] and store.current() is None
    at = AppTest.from_file(APP, default_timeout=60).run()  # a new start of the app
    assert not at.exception
    assert "No trained model yet" in page_text(at)
    assert not at.get("plotly_chart")
    assert ModelStore().list() == [], "the first-run page starts nothing and installs nothing"


def test_a_store_with_another_mnist_model_does_not_get_it(home, bundle_on):
    store = ModelStore()
    before = store.current()
    assert before.config.dataset == "mnist"
    assert bundle.install(store) is None
    assert [r.id for r in store.list()] == [before.id] and store.current().id == before.id
    assert (store.root / bundle.MARKER).is_file()


def _fake_record(store: ModelStore, model_id: str, dataset: str) -> None:
    """A meta.json-only model directory: enough for ModelStore.list/current (no Keras files needed)."""
    path = store.root / model_id
    path.mkdir(parents=True)
    (path / "meta.json").write_text(
        json.dumps(
            {"format": 1, "id": model_id, "created": 1.0, "config": VAEConfig(dataset=dataset).to_dict()}
        )
    )


def test_a_store_with_only_another_dataset_gets_it_but_keeps_its_current_model(empty_home, bundle_on):
    store = ModelStore()
    _fake_record(store, "fashion-one", "fashion_mnist")
    store.set_current("fashion-one")
    model_id = bundle.install(store)
    assert model_id and store.record(model_id).extra["bundled"]
    assert store.current().id == "fashion-one"


def test_off_switch(empty_home, monkeypatch):
    monkeypatch.setenv(bundle.ENV, "0")
    store = ModelStore()
    assert bundle.install(store) is None
    assert store.list() == [] and not (store.root / bundle.MARKER).exists()


def test_a_failure_mid_install_leaves_no_visible_record(empty_home, bundle_on, monkeypatch):
    store = ModelStore()
    real = shutil.copyfile

    def failing(src, dst, *a, **k):
        if Path(src).name == "decoder.keras":
            real(src, dst)
            raise OSError(28, "No space left on device")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(bundle.shutil, "copyfile", failing)
    with pytest.raises(StoreError, match="No space left on device"):
        bundle.install(store)
    assert store.list() == [] and store.current() is None
    assert [p.name for p in store.root.iterdir()] == [], "no temp directory, no marker, no current.json"
    # an interruption (Ctrl-C, a killed session) mid-copy leaves nothing either
    monkeypatch.setattr(bundle.shutil, "copyfile", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        bundle.install(store)
    assert list(store.root.iterdir()) == []
    # the next start installs it completely
    monkeypatch.setattr(bundle.shutil, "copyfile", real)
    model_id = bundle.install(store)
    assert sorted(p.name for p in (store.root / model_id).iterdir()) == [
        "decoder.keras",
        "encoder.keras",
        "meta.json",
    ]
    bundle.verify_files(store.root / model_id, bundle.read_meta())


def test_a_killed_install_leaves_a_temp_dir_that_is_never_listed_and_is_swept(empty_home, bundle_on):
    store = ModelStore()
    store.root.mkdir(parents=True, exist_ok=True)
    stale = store.root / ".tmp-999999999-bundle-x"  # a dead process's half copy
    stale.mkdir()
    (stale / "encoder.keras").write_bytes(b"half")
    assert store.list() == []
    model_id = bundle.install(store)
    assert not stale.exists() and [r.id for r in store.list()] == [model_id]


def test_installing_needs_no_keras(tmp_path):
    code = (
        "import sys; from model import bundle; from model.store import ModelStore; "
        "s = ModelStore(sys.argv[1]); i = bundle.install(s); assert i and s.current().id == i, i; "
        "bad = [m for m in ('keras', 'tensorflow') if m in sys.modules]; assert not bad, bad"
    )
    env = {**os.environ, bundle.ENV: "1"}
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "models")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_damaged_bundle_is_refused_and_the_first_run_page_says_so(
    empty_home, bundle_on, tmp_path, monkeypatch
):
    """It showed "No trained model yet" with no word that the bundle had been refused."""
    copy = tmp_path / "bundled"
    shutil.copytree(bundle.BUNDLE_DIR, copy)
    assert bundle.refusal(copy) is None
    data = bytearray((copy / "decoder.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "decoder.keras").write_bytes(bytes(data))
    monkeypatch.setattr(bundle.install, "__defaults__", (None, copy))
    monkeypatch.setattr(bundle.refusal, "__defaults__", (copy,))
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    assert ModelStore().list() == []  # never installed
    text = page_text(at)
    assert "No trained model yet" in text and "The bundled model was refused" in text
    (why,) = [t.value for t in at.text if "fingerprint" in t.value]
    assert "decoder.keras does not match its fingerprint" in why and str(copy) not in why
    (copy / "meta.json").write_text("[1]")
    assert "missing or unreadable" in bundle.refusal(copy)
