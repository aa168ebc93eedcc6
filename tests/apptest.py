"""Helpers for tests that run the page headless with Streamlit's AppTest (fixtures: tests/conftest.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
DIGIT_CAPTION = "decoder(z) for the slider values"


def run_app(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def shown(at: AppTest, media: dict, caption: str, scale: int | None = None) -> list[np.ndarray]:
    """The images whose caption contains `caption`, as uint8 arrays (downscaled by `scale`)."""
    out = []
    for el in at.image:
        for url, cap in zip(el.value, el.captions):
            if caption in cap:
                file_id = url.rsplit("/", 1)[1].split(".")[0]
                a = np.asarray(Image.open(io.BytesIO(media[file_id])).convert("L"))
                out.append(a[::scale, ::scale] if scale else a)
    return out


def server_digit(at: AppTest, media: dict) -> np.ndarray:
    """The server's decode of the sliders' z as the page offers it: the "PNG 28×28" download, (28, 28)."""
    (el,) = [e for e in at.get("download_button") if e.proto.label == "PNG 28×28"]
    file_id = el.proto.url.rsplit("/", 1)[1].split(".")[0]
    return np.asarray(Image.open(io.BytesIO(media[file_id])).convert("L"))


def page_text(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "error", "warning", "subheader", "title")
        for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def scatter_spec(at: AppTest) -> dict:
    """The figure of the test-set scatter (the chart with WebGL traces)."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (spec,) = [sp for sp in specs if any(t.get("type") == "scattergl" for t in sp["data"])]
    return spec


def sliders(at: AppTest, d: int = 2) -> np.ndarray:
    """The latent values: session keys z0..z{d-1}, which the in-browser pad writes on release."""
    return np.array([at.session_state[f"z{i}"] for i in range(d)], np.float32)


def page_z(at: AppTest, d: int = 2) -> np.ndarray:
    """The latent values the page shows: the session keys, which the latent pad is also told to show."""
    z = sliders(at, d)
    args, _ = pad(at)
    assert np.allclose(args["z"], z), (args["z"], z)
    return z


def pad(at: AppTest) -> tuple[dict, dict]:
    """The latent pad component's JSON args and {name: bytes} of its binary args."""
    (el,) = [e for e in at.get("component_instance") if e.proto.component_name.endswith("latent_pad")]
    return json.loads(el.proto.json_args), {a.key: a.bytes for a in el.proto.special_args}


def link_app(**params):
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update(params)
    return at.run()


def plotly_array(v):
    """Plotly JSON arrays may be plain lists or {dtype, bdata} (base64) typed arrays."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        return np.frombuffer(base64.b64decode(v["bdata"]), np.dtype(v["dtype"]))
    return np.asarray(v, float)


def png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def seven() -> bytes:
    """A dark '7' drawn on white paper."""
    img = Image.new("L", (200, 300), 245)
    ImageDraw.Draw(img).line([(40, 40), (160, 40), (80, 270)], fill=10, width=18)
    return png(img)


def traces(at) -> dict:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {t.get("name"): t for t in spec["data"]}


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def untrained_model(latent_dim: int = 8):
    """Save an untrained model of `latent_dim` in the current home's store (it becomes the current one):
    its weights are random, enough for the page. Returns (record, LatentModel)."""
    from model.latent import LatentModel
    from model.store import ModelStore
    from model.vae import VAEConfig, build_decoder, build_encoder

    config = VAEConfig(latent_dim=latent_dim, epochs=1, limit=256)
    store = ModelStore()
    record = store.save(build_encoder(config), build_decoder(config), config)
    return record, LatentModel.from_record(store.record(record.id))
