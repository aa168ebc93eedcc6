"""The pick preview: the test image under the pointer at once, and a click's pick painted at once.

A Streamlit v2 component (`st.components.v2`: inline html/css/js in the page, no iframe, no build step;
`preview.js`, `preview.css`). It attaches to the test-set scatter that Streamlit's `st.plotly_chart` draws
in the same document (its `plotly_hover` and `plotly_click` events; the row index comes from the
points' `customdata`), so the scatter stays Streamlit's Plotly chart with its box/lasso selection.

- Hover: the point's test image and its reconstruction are drawn in the preview at once, from two
  sprites the browser keeps per model (no server round trip).
- Click: the pick's images are drawn the same way, then the server hears the pick once (a trigger
  value); the pick, the sliders and the URL follow in the fragment run that triggers, while the page
  already shows the pick. Once attached, the component turns the chart's click selection off in the
  browser (Plotly `clickmode` "event" instead of Streamlit's "event+select", set just before each
  press), so a click neither repaints the 10k WebGL points as a selection nor sends a second rerun; box
  and lasso still select through Streamlit as before.

Sprites: the N test images and their reconstructions (decoded posterior means, the images the pick panel
shows) as two grayscale PNGs of 28×28 tiles, `COLS` per row (MNIST: 1.7 MB and 3.3 MB against 7.8 MB
raw each; see docs/pick-latency.md), sent once per model per session when the browser asks for them
(`need`), so the page's first run neither waits for the 10k decodes (a worker thread makes them, once per
model per server) nor carries them. A browser that lost them (a reload is a new session) asks again.

Without the component (`LATENT_EXPLORER_PICK_PREVIEW=0`, the browser reported an error, or its script
never ran) nothing changes the chart: Streamlit's own click selection picks, on the
server, as before.
"""

from __future__ import annotations

import base64
import io
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import streamlit as st
import streamlit.components.v2 as components

from explorer import cache, events, session
from model.env import env_flag
from model.images import to_uint8

HERE = Path(__file__).resolve().parent
ENV = "LATENT_EXPLORER_PICK_PREVIEW"  # set to 0 for the server-side pick only
STATE = "pick_preview"  # session.own(STATE): {"need": model key or None, "error": str or None}
KEY = "pick_preview"
COLS = 100  # sprite tiles per row: 10,000 images -> a 2800 × 2800 PNG
MAX_IMAGES = 20_000  # more (e.g. all 70,000 MNIST images): 5x the sprites and decodes; the server picks
TILE = 28

_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pick-preview-sprites")
_component = components.component(
    "latent_explorer.pick_preview",
    html=(HERE / "preview.html").read_text(encoding="utf-8"),
    css=(HERE / "preview.css").read_text(encoding="utf-8"),
    js=(HERE / "preview.js").read_text(encoding="utf-8"),
)


def sprite(images: np.ndarray, cols: int = COLS) -> np.ndarray:
    """(N, H, W) grey images (uint8, or float in [0, 1]) as one (ceil(N / cols) * H, cols * W) uint8
    image, row-major: image i at tile (i // cols, i % cols); the unused tiles are black."""
    a = to_uint8(images)
    if a.ndim != 3 or len(a) == 0:
        raise ValueError(f"Expected images of shape (N, H, W), N >= 1. Received: shape={a.shape}")
    n, h, w = a.shape
    rows = -(-n // cols)
    full = np.zeros((rows * cols, h, w), np.uint8)
    full[:n] = a
    return full.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def png_data_url(img: np.ndarray) -> str:
    """A grayscale uint8 image as a PNG data URL (lossless: the browser draws the exact pixels)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(img, np.uint8), mode="L").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def build_sprites(images: np.ndarray, recon: np.ndarray) -> dict:
    """The two sprites of a model as PNG data URLs: the test images and their reconstructions (the decoded
    posterior means, what `LatentModel.reconstruct` gives, batched)."""
    return {"orig": png_data_url(sprite(images)), "recon": png_data_url(sprite(recon))}


@st.cache_resource(max_entries=2, show_spinner=False)
def _sprites(model_key: str, stamp: str, _model, _images: np.ndarray, _z_mean: np.ndarray) -> Future:
    """The sprites of a model, shared by every session, built in a worker thread from its first run on
    (10k decodes: ~2 s on a quiet 2-core machine): the run that answers a browser's `need` waits only
    for what is left, and no run waits before a browser asks."""
    return _POOL.submit(
        lambda: build_sprites(_images, cache.reconstructions(stamp, _model, _z_mean))  # shared decode
    )


def unavailable() -> str | None:
    """Why the preview is not used in this session (turned off, or the browser reported an error)."""
    if not env_flag(ENV, True):
        return f"The instant pick preview is turned off ({ENV}={os.environ[ENV]})."
    if err := _state()["error"]:
        return f"The instant pick preview stopped: {err}"
    return None


def _state() -> dict:
    state = session.own(STATE)
    for key, value in {"need": None, "error": None}.items():
        state.setdefault(key, value)
    return state


def browser_row(value, n: int) -> int | None:
    """A test-set row the browser sent: a whole number in [0, n) (not a bool), else None."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    row = events.as_row(value)  # finite, whole, non-negative
    return row if row is not None and row < n else None


def _on_pick(n: int) -> None:
    row = browser_row(_result().get("pick"), n)
    if row is not None:
        session.set_pick(row)


def _on_need() -> None:
    need = _result().get("need")  # the model key the browser has no sprites for: send them on this run
    _state()["need"] = need if isinstance(need, str) else None


def _on_error() -> None:
    from explorer.components.latent_pad import browser_text

    _state()["error"] = browser_text(_result().get("error"))


def _result() -> dict:
    value = st.session_state.get(KEY)
    return value if isinstance(value, dict) or hasattr(value, "get") else {}


def pick_preview(ex, chart_key: str = "scatter") -> str | None:
    """Draw the preview for the scatter with widget key `chart_key` (a `st.plotly_chart` whose points carry
    their test-set row in `customdata`); returns None, or why it is not drawn (the scatter's own click
    selection then picks, as without the component)."""
    reason = unavailable()
    state = _state()
    if state["error"]:
        st.text(reason)  # the browser's words, as plain text (never markdown)
    if reason is not None:
        return reason
    n = len(ex.images)
    if n > MAX_IMAGES:
        return f"The instant pick preview holds at most {MAX_IMAGES:,} images; this scatter has {n:,}."
    key = f"{ex.stamp}:{n}"  # the model and its image set (the test set, or more)
    data = {
        "model": key,
        "n": n,
        "n_test": int(ex.n_test),  # rows from here on are training images
        "cols": COLS,
        "chart": chart_key,
        "pick": session.pick(),
    }
    sprites = _sprites(key, ex.stamp, ex.model, ex.images, ex.latents.z_mean)  # started once per model
    if state["need"] == key:  # the browser asked for this model's sprites (once per document)
        try:
            data.update(sprites.result())
        except Exception as e:  # any failure: say so; the chart's own click then picks
            state["error"] = f"the test images could not be prepared ({type(e).__name__}: {e})"
            st.text(unavailable())
            return unavailable()
        data["labels"] = ex.latents.labels.tolist()
        data["names"] = list(ex.class_names)
        state["need"] = None
    _component(
        key=KEY,
        data=data,
        on_pick_change=lambda: _on_pick(n),
        on_need_change=_on_need,
        on_error_change=_on_error,
    )
    return None
