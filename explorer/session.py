"""The state panels share, per browser tab (st.session_state), and `own`, the home of a panel's own state.

Shared (functions below; tests and code may set the keys too):
  z0..z{d-1}      the latent values (slider widget keys); written only through `set_z`, which clips
  pick, pick_prev the picked test row (int or None) and the pick before it
  selection       test rows of the scatter's box/lasso selection (list or None)
  user_digit      {"image": (28, 28) uint8, "source": str} the user's preprocessed picture, or None
  _timings        server-side milliseconds of the last run: decode_ms, panel_ms, page_ms
  _model          this tab's model id (None: not chosen yet); _model_offer: one trained elsewhere, offered
  _stamp, _applied_pick, _pick_error, _scatter_pick   bookkeeping of `sync_latents` and the scatter
A panel's private state is one dict, `own("<panel>")`, used beside the panel's code (the latent pad's is
`_latent_pad`). Widget keys belong to the panel that draws the widget.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st


def own(owner: str) -> dict:
    """The private state of panel `owner` in this tab: one dict under the key `_<owner>`."""
    return st.session_state.setdefault(f"_{owner}", {})


def widget_value(key: str) -> Any:
    """The value (or event) of the widget with this key, read in its callback."""
    return st.session_state.get(key)


def init() -> None:
    """Create the shared keys once per tab."""
    for key, value in (("pick", None), ("pick_prev", None), ("_applied_pick", None), ("_stamp", None)):
        st.session_state.setdefault(key, value)
    st.session_state.setdefault("_timings", {})


def z_keys(d: int) -> list[str]:
    return [f"z{i}" for i in range(d)]


def z_values(d: int) -> np.ndarray:
    """The current latent values z0..z{d-1} as (d,) float32 (0 where not set yet)."""
    return np.array([float(st.session_state.get(k, 0.0)) for k in z_keys(d)], np.float32)


def set_z(z, bounds) -> list[float]:
    """Move the latent values (the sliders) to z, clipped to their symmetric range [-bounds[i], bounds[i]];
    returns the values set. Every writer of z (sliders' callbacks, pad, links, pick) goes through here."""
    b = np.asarray(bounds, np.float64)
    clipped = [float(v) for v in np.clip(np.asarray(z, np.float64), -b, b)]
    for k, v in zip(z_keys(len(clipped)), clipped):
        st.session_state[k] = v
    return clipped


def sync_latents(stamp: str, center, bounds, z_means, n_images: int) -> None:
    """Before the sliders are drawn: start a new model at `center`, clip the values, validate `pick` and
    move the values to a new pick's posterior mean (`z_means[pick]`)."""
    ss = st.session_state
    if ss["_stamp"] != stamp:  # a new model: start at the centre of its test set (or at the pick)
        ss["_stamp"] = stamp
        ss["_applied_pick"] = None
        set_z(center, bounds)
    set_z(z_values(len(bounds)), bounds)
    pick_ = ss.get("pick")
    if pick_ is not None and not (isinstance(pick_, (int, np.integer)) and 0 <= pick_ < n_images):
        ss["_pick_error"] = f"Expected a test image index in [0, {n_images - 1}]. Received: pick={pick_!r}"
        ss["pick"] = pick_ = None
    if pick_ != ss["_applied_pick"]:
        if ss["_applied_pick"] is not None and pick_ is not None:
            ss["pick_prev"] = ss["_applied_pick"]
        ss["_applied_pick"] = pick_
        if pick_ is not None:  # move the sliders to the pick's posterior mean
            set_z(z_means[pick_], bounds)


def pick() -> int | None:
    return st.session_state.get("pick")


def pick_prev() -> int | None:
    return st.session_state.get("pick_prev")


def set_pick(row: int | None, *, keep_z: bool = False) -> None:
    """Make test row `row` the pick (also a button callback). keep_z: the latent values stay where they
    are instead of jumping to the pick's posterior mean (a link that carries both)."""
    ss = st.session_state
    ss["pick"] = None if row is None else int(row)
    if keep_z:
        ss["_applied_pick"] = ss["pick"]


def pop_pick_error() -> str | None:
    return st.session_state.pop("_pick_error", None)


def scatter_pick(default: int | None) -> int | None:
    return st.session_state.get("_scatter_pick", default)


def set_scatter_pick(row: int | None) -> None:
    st.session_state["_scatter_pick"] = row


def selection_rows() -> list[int]:
    return list(st.session_state.get("selection") or [])


def set_selection(rows) -> None:
    """Store a box/lasso selection (an empty one, or None, clears it). Also a button callback."""
    st.session_state["selection"] = list(rows) if rows else None


def user_digit() -> dict | None:
    return st.session_state.get("user_digit")


def set_user_digit(image: np.ndarray | None, source: str = "") -> None:
    """The user's preprocessed picture (None clears it). Also a button callback."""
    st.session_state["user_digit"] = None if image is None else {"image": image, "source": source}


def record_timings(**ms: float) -> None:
    st.session_state["_timings"] = {**st.session_state.get("_timings", {}), **ms}


def tab_model() -> str | None:
    """The id of the model this tab explores (None until the first run chose one)."""
    return st.session_state.get("_model")


def set_tab_model(model_id: str | None) -> None:
    """Explore `model_id` in this tab only (also a button callback)."""
    st.session_state["_model"] = model_id
    if st.session_state.get("_model_offer") == model_id:
        st.session_state.pop("_model_offer", None)


def model_offer() -> str | None:
    return st.session_state.get("_model_offer")


def set_model_offer(model_id: str | None) -> None:
    """Offer a model trained elsewhere ("Explore it"); None dismisses the offer (a button callback)."""
    st.session_state["_model_offer"] = model_id
