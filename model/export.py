"""Downloads: a decoded digit as PNG, latent means as CSV, a trained model as its .keras files.

All functions return bytes (ready for `st.download_button`) and touch no Keras code, so the UI can
call them freely.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import PurePath

import numpy as np

from model.images import MAX_SCALE as MAX_SCALE  # re-exported: export.png_bytes and its limit
from model.images import png_bytes as png_bytes
from model.paths import shown
from model.store import FILES, ModelRecord, StoreError


def latents_csv(z_mean, labels, index=None) -> bytes:
    """Latent means as CSV bytes with the header `index,label,z0,...,z{d-1}`.

    Args:
        z_mean: (N, d) latent means (e.g. of the test set).
        labels: (N,) integer labels.
        index: (N,) row indices into the dataset (default 0..N-1).
    """
    z = np.asarray(z_mean, np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or y.shape != (len(z),):
        raise ValueError(
            f"Expected z_mean (N, d) and labels (N,). Received: z_mean.shape={z.shape}, "
            f"labels.shape={y.shape}"
        )
    idx = np.arange(len(z)) if index is None else np.asarray(index)
    if idx.shape != (len(z),):
        raise ValueError(f"Expected index of shape ({len(z)},). Received: {idx.shape}")
    header = ",".join(["index", "label"] + [f"z{j}" for j in range(z.shape[1])])
    lines = [header]
    for i, label, row in zip(idx, y, z):
        lines.append(f"{int(i)},{int(label)}," + ",".join(f"{v:.6g}" for v in row))
    return ("\n".join(lines) + "\n").encode("ascii")


def model_file(record: ModelRecord, part: str) -> bytes:
    """The bytes of one saved part of a model: part = "encoder" or "decoder" (a .keras file)."""
    if part not in ("encoder", "decoder"):
        raise ValueError(f"Expected part 'encoder' or 'decoder'. Received: part={part!r}")
    path = record.path / f"{part}.keras"
    try:
        return path.read_bytes()
    except OSError as e:
        raise StoreError(f"Cannot read {shown(path)}: {e.strerror or e}. Fix: retrain the model.") from None


README = """Latent explorer model {id}

encoder.keras: x (N, 28, 28, 1) floats in [0, 1] -> [z_mean, z_log_var, z], each (N, {d})
decoder.keras: z (N, {d}) -> x_hat (N, 28, 28, 1) in (0, 1)
meta.json:     training config, history and test metrics

Load with Keras 3. The encoder's Sampling layer is custom ("latent_explorer>Sampling"): import
latent explorer's model.vae first, which registers it (the decoder needs nothing):

    import keras
    import model.vae  # registers latent_explorer>Sampling
    encoder = keras.saving.load_model("encoder.keras")
    decoder = keras.saving.load_model("decoder.keras")
"""


def _portable_meta(data: bytes) -> bytes:
    """meta.json for someone else: the `--npz` file it was trained on named by its file name only,
    not by the server's absolute path (the checksum beside it still identifies the file)."""
    try:
        meta = json.loads(data)
    except ValueError:
        return data
    extra = meta.get("extra") if isinstance(meta, dict) else None
    if isinstance(extra, dict) and isinstance(extra.get("npz"), str):
        extra["npz"] = PurePath(extra["npz"]).name
        return json.dumps(meta, indent=1).encode("utf-8")
    return data


def model_zip(record: ModelRecord) -> bytes:
    """A zip with the model's encoder.keras, decoder.keras, meta.json and a short README.txt,
    all in a folder named after the model id."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:  # .keras files are zips already
        for name in FILES:
            path = record.path / name
            try:
                data = path.read_bytes()
                if name == "meta.json":
                    data = _portable_meta(data)
                zf.writestr(f"{record.id}/{name}", data)
            except OSError as e:
                raise StoreError(
                    f"Cannot read {shown(path)}: {e.strerror or e}. Fix: retrain the model."
                ) from None
        zf.writestr(f"{record.id}/README.txt", README.format(id=record.id, d=record.config.latent_dim))
    return buf.getvalue()
