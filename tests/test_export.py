"""model.export: PNG of a decoded digit, CSV of latent means, the model's .keras files."""

import csv
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from model import export
from model.latent import LatentModel
from model.store import StoreError


def test_png_of_a_decoded_digit_round_trips():
    rng = np.random.default_rng(0)
    digit = rng.random((28, 28)).astype(np.float32)
    img = Image.open(io.BytesIO(export.png_bytes(digit)))
    assert img.format == "PNG" and img.mode == "L" and img.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(img), np.rint(digit * 255).astype(np.uint8))

    big = np.asarray(Image.open(io.BytesIO(export.png_bytes(digit, scale=10))))
    assert big.shape == (280, 280)
    np.testing.assert_array_equal(big[::10, ::10], np.asarray(img))  # crisp nearest-neighbour blocks
    np.testing.assert_array_equal(big[9::10, 9::10], np.asarray(img))

    u8 = (digit * 255).astype(np.uint8)[..., None]  # (28, 28, 1) uint8 is accepted as is
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(export.png_bytes(u8)))), u8[..., 0])


@pytest.mark.parametrize(
    "image, scale, words",
    [
        (np.zeros((2, 28, 28)), 1, r"Expected a 2-D image \(H, W\). Received: shape=\(2, 28, 28\)"),
        (np.zeros((28, 28)), 0, "Expected an integer scale"),
        (np.zeros((28, 28)), 2.5, "Expected an integer scale"),
        (np.full((28, 28), np.nan), 1, "finite"),
    ],
)
def test_png_bad_input(image, scale, words):
    with pytest.raises(ValueError, match=words):
        export.png_bytes(image, scale)


def test_latent_csv():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 3)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    rows = list(csv.reader(io.StringIO(export.latents_csv(z, y).decode())))
    assert rows[0] == ["index", "label", "z0", "z1", "z2"]
    assert len(rows) == 51
    assert [int(r[0]) for r in rows[1:]] == list(range(50))
    assert [int(r[1]) for r in rows[1:]] == y.tolist()
    np.testing.assert_allclose(np.array([r[2:] for r in rows[1:]], float), z, rtol=1e-5)

    sub = export.latents_csv(z[:2], y[:2], index=[7, 42]).decode().splitlines()
    assert sub[1].startswith("7,") and sub[2].startswith("42,")
    with pytest.raises(ValueError, match=r"Expected z_mean \(N, d\) and labels \(N,\)"):
        export.latents_csv(z, y[:3])


def test_model_files_and_zip_load_back(home):
    import keras

    import model.vae  # noqa: F401  registers Sampling
    from model.store import FILES, ModelStore

    store = ModelStore()
    rec = store.current()
    enc = export.model_file(rec, "encoder")
    assert enc == (rec.path / "encoder.keras").read_bytes() and zipfile.is_zipfile(io.BytesIO(enc))
    assert export.model_file(rec, "decoder") == (rec.path / "decoder.keras").read_bytes()

    data = export.model_zip(rec)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert names == {f"{rec.id}/{n}" for n in (*FILES, "README.txt")}
        out = home / "unzipped"
        zf.extractall(out)
    decoder = keras.saving.load_model(out / rec.id / "decoder.keras", safe_mode=True)
    encoder = keras.saving.load_model(out / rec.id / "encoder.keras", safe_mode=True)
    latent = LatentModel.from_record(store.record(rec.id))
    z = np.random.default_rng(0).normal(size=(4, latent.latent_dim)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(decoder(z))[..., 0], latent.decode(z), atol=1e-6)
    x = latent.decode(z)[..., None]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(encoder(x)[0]), latent.encode(x)[0], atol=1e-5)


def test_missing_model_file_is_a_store_error(home):
    from model.store import ModelStore

    rec = ModelStore().current()
    (rec.path / "decoder.keras").unlink()
    with pytest.raises(StoreError, match="Cannot read .*decoder.keras.*Fix: retrain"):
        export.model_file(rec, "decoder")
    with pytest.raises(StoreError, match="Fix: retrain"):
        export.model_zip(rec)
    with pytest.raises(ValueError, match="Expected part 'encoder' or 'decoder'"):
        export.model_file(rec, "weights")


def test_the_zip_of_an_npz_model_names_its_data_file_without_the_servers_path(home):
    import json

    from model.store import ModelStore

    store = ModelStore()
    rec = store.current()
    meta = json.loads((rec.path / "meta.json").read_text())
    meta["extra"] = {**meta.get("extra", {}), "npz": "/srv/private/datasets/digits.npz", "npz_sha256": "ab12"}
    (rec.path / "meta.json").write_text(json.dumps(meta))
    rec = store.record(rec.id)
    with zipfile.ZipFile(io.BytesIO(export.model_zip(rec))) as zf:
        raw = zf.read(f"{rec.id}/meta.json").decode()
    assert "/srv/private" not in raw
    zipped = json.loads(raw)
    assert zipped["extra"]["npz"] == "digits.npz" and zipped["extra"]["npz_sha256"] == "ab12"
    assert zipped["config"] == meta["config"] and zipped["history"] == meta["history"]  # nothing else changed
