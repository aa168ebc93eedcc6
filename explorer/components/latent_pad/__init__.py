"""The latent pad: latent sliders (and a draggable latent plane for a 2-D model) decoded in the browser.

A Streamlit v1 component served from `frontend/` (index.html, pad.js and the vendored TensorFlow.js files
in `frontend/vendor/`, see README.md). The decoder runs in the page, so the digit follows the pointer while
dragging with no server round trip; the server hears z once, on release.

The session values `z_keys` (z0..z{d-1}) stay the source of truth: the pad shows them, and writes the z the
user commits back into them (in the `on_change` callback, before the script runs), so everything after the
pad reads them exactly as it read the server-side sliders. When the server moves them (a pick, a new model,
a test setting them), the pad gets a new revision number and follows.

Traffic: the decoder's weights (~0.25 MB for the seed's decoder) and the 2-D background go to the browser
once per model per session; later runs send only z, the bounds and the revision (~0.2 kB). If the
browser lost them (its frame was rebuilt), it asks again with a `need` value.
"""

from __future__ import annotations

import base64
import functools
import os
from pathlib import Path

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from explorer import session
from model.env import env_flag
from model.images import png_bytes

FRONTEND = Path(__file__).resolve().parent / "frontend"
ASSETS = (
    "index.html",
    "pad.js",
    "vendor/tf-core.es2017.min.js",
    "vendor/tf-backend-cpu.es2017.min.js",
    "vendor/tf-backend-wasm.es2017.min.js",
    "vendor/tfjs-backend-wasm-simd.wasm",
)
ENV = "LATENT_EXPLORER_PAD"  # set to 0 to use the server-side sliders instead
STATE = "latent_pad"  # this module's own state: session.own(STATE), key "_latent_pad"
STEP = 0.01

_component = components.declare_component("latent_pad", path=str(FRONTEND))


def unavailable() -> str | None:
    """Why the pad cannot be used in this server (turned off, files missing), or None."""
    if not env_flag(ENV, True):
        return f"The in-browser decoder is turned off ({ENV}={os.environ[ENV]})."
    missing = [a for a in ASSETS if not (FRONTEND / a).is_file()]
    if missing:
        return (
            f"The in-browser decoder's files are missing ({', '.join(missing)} in {FRONTEND}). "
            f"Fix: run {FRONTEND.parent / 'refresh_assets.sh'}."
        )
    return None


def pack_decoder(layers: list[dict]) -> tuple[list[dict], bytes]:
    """`LatentModel.decoder_weights()` -> (JSON-able layer specs, one little-endian float32 blob).

    Each weight array becomes {"shape", "offset", "size"} (offset and size in floats into the blob)."""
    spec, chunks, offset = [], [], 0
    for layer in layers:
        entry = {k: v for k, v in layer.items() if k != "weights"}
        if layer.get("weights"):
            entry["weights"] = []
            for w in layer["weights"]:
                a = np.ascontiguousarray(w, "<f4")
                entry["weights"].append({"shape": list(a.shape), "offset": offset, "size": int(a.size)})
                chunks.append(a.tobytes())
                offset += a.size
        spec.append(entry)
    return spec, b"".join(chunks)


@st.cache_data(max_entries=4, show_spinner=False)
def _packed(model_key: str, _model) -> tuple[list[dict], bytes]:
    return pack_decoder(_model.decoder_weights())


@st.cache_data(max_entries=4, show_spinner=False)
def _background(model_key: str, _rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(np.asarray(_rgb, np.uint8))).decode("ascii")


def _state() -> dict:
    state = session.own(STATE)
    for key, value in {"sent": None, "known": None, "rev": 0, "error": None}.items():
        state.setdefault(key, value)
    return state


def _on_change(key: str, z_keys: list[str], bounds: list[float]) -> None:
    """The browser sent a value: a committed z, a request for the weights, or an error."""
    value = st.session_state.get(key)
    if not isinstance(value, dict):
        return
    state = _state()
    if "error" in value:
        state["error"] = browser_text(value["error"])
    elif "need" in value:
        state["sent"] = None  # send the weights again on this run
    elif "z" in value:
        z = browser_z(value["z"], len(z_keys))
        if z is not None:
            clipped = session.set_z(z, bounds)  # the keys are session.z_keys(len(bounds))
            state["known"] = clipped if clipped == z else None  # clipped: resend


def browser_text(value, limit: int = 300) -> str:
    """A message the browser sent, as one line of at most `limit` printable characters (shown as plain
    text, never as markdown)."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(c if c.isprintable() else " " for c in text[: 4 * limit])
    return " ".join(text.split())[:limit] or "no reason given"


def browser_z(value, d: int) -> list[float] | None:
    """A z the browser sent, if it is a list of d finite numbers (not bools), as floats; else None."""
    if not isinstance(value, list) or len(value) != d:
        return None
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        try:
            v = float(v)
        except OverflowError:  # a JSON integer beyond float
            return None
        if not np.isfinite(v):
            return None
        out.append(v)
    return out


def retry() -> None:
    """Forget a browser error so the next run tries the pad again (with the weights sent anew)."""
    state = _state()
    state["error"] = state["sent"] = None


def latent_pad(
    z_keys: list[str],
    bounds,
    *,
    model_key: str,
    model,
    background: np.ndarray | None = None,
    extent=None,
    key: str = "latent_pad",
) -> str | None:
    """Draw the pad for the session values `z_keys`; returns None, or why it is not drawn (the caller then
    draws server-side sliders and shows the reason).

    Args:
        z_keys: session-state keys of the latent values, one per dimension.
        bounds: (d,) symmetric range of each dimension.
        model_key: names the model (its stamp): the browser caches the decoder under it.
        model: a `model.latent.LatentModel` (only `decoder_weights()` is called, once per model).
        background: (H, W, 3) uint8 picture of the latent plane for a 2-D model (sent once per model).
        extent: (x0, x1, y0, y1) the picture covers (2-D models only).
    """
    reason = unavailable()
    state = _state()
    if reason is None and state["error"]:
        # the browser's words are shown as plain text (never markdown), with a way to try again
        st.text(f"Your browser could not start the in-browser decoder: {state['error']}")
        st.button("Retry the in-browser decoder", key=f"{key}_retry", on_click=retry)
        reason = "The in-browser decoder did not start (the reason is above)."
    send = state["sent"] != model_key  # the weights go once per model per session (or when asked again)
    if reason is None and send:
        try:
            spec, blob = _packed(model_key, model)
        except ValueError as e:
            reason = f"This model's decoder cannot run in the browser: {e}"
    if reason is not None:
        return reason
    ss = st.session_state
    z = [float(ss[k]) for k in z_keys]
    if state["known"] != z:  # moved by the server (or first run): the browser must follow
        state["rev"] += 1
        state["known"] = z
    d = len(z)
    args = {
        "model": model_key,
        "d": d,
        "z": z,
        "rev": state["rev"],
        "step": STEP,
        "bounds": [float(b) for b in bounds],
        "extent": [float(v) for v in extent] if d == 2 and extent is not None else None,
    }
    if send:
        args.update(
            spec=spec,
            weights=blob,
            background=_background(model_key, background) if d == 2 and background is not None else None,
        )
        state["sent"] = model_key
    _component(
        **args,
        key=key,
        default=None,
        on_change=functools.partial(_on_change, key, list(z_keys), args["bounds"]),
    )
    return None
