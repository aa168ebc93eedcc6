"""Latent traversals: one row per latent dimension, decoding z + t·e_i for t in -span…+span.

Session keys: trav_open (expander), trav_from, trav_span, trav_steps, trav_dl (download).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import session, views
from explorer.panels.common import fmt, lazy_expander
from model import analysis

SCALE = 2  # 3 for latent sizes up to 4 (few rows)


@st.cache_data(max_entries=64, show_spinner=False)
def traversal_grid(stamp: str, z: tuple, span: float, steps: int, _model) -> np.ndarray:
    """The decoded traversal (d, steps, 28, 28) around z, one batched decode, cached per model and z."""
    return analysis.traversal(_model, np.array(z, np.float32), span, steps)


@st.cache_data(max_entries=64, show_spinner=False)
def _grid_png(stamp: str, z: tuple, span: float, steps: int, scale: int, _model) -> bytes:
    return views.to_png(views.image_grid(traversal_grid(stamp, z, span, steps, _model)), scale)


def traversal_base(ex, z_sliders, source: str) -> tuple[np.ndarray, str]:
    """The traversal's centre: the pick's posterior mean, or the sliders (also when there is no pick)."""
    pick = session.pick()
    if source == "pick" and pick is not None:
        return ex.latents.z_mean[pick], f"{ex.point_name(pick)}'s z_mean"
    return np.asarray(z_sliders, np.float32), "the sliders"


def traversal_panel(ex, z_sliders) -> None:
    box, is_open = lazy_expander(
        "Latent traversals: what each dimension does", "trav_open", ":material/view_module:"
    )
    if not is_open:
        return
    with box:
        c1, c2, c3 = st.columns([2, 2, 2])
        source = c1.radio(
            "Around",
            ["pick", "sliders"],
            key="trav_from",
            horizontal=True,
            format_func={"pick": "the pick", "sliders": "the sliders"}.get,
        )
        span = c2.slider(
            "Span (t from −span to +span)", 0.5, 6.0, analysis.TRAVERSAL_SPAN, step=0.5, key="trav_span"
        )
        steps = c3.slider("Steps", 3, 15, analysis.TRAVERSAL_STEPS, key="trav_steps")
        z, what = traversal_base(ex, z_sliders, source)
        key = tuple(round(float(v), 4) for v in z)
        png = _grid_png(ex.stamp, key, float(span), int(steps), SCALE + (ex.latent_dim <= 4), ex.model)
        st.image(
            png,
            output_format="PNG",
            width="content",
            caption=f"row i decodes z + t·e_i (z[{0}] … z[{ex.latent_dim - 1}] top to bottom); "
            f"columns t = −{span:g} … +{span:g} in {steps} steps",
            alt=f"traversal grid around {what} z = {fmt(z)}: row i decodes z + t·e_i for z[0] … "
            f"z[{ex.latent_dim - 1}], columns t from −{span:g} to +{span:g} in {steps} steps",
        )
        st.caption(
            f"Centre: {what} = `{fmt(z)}`"
            + (" (no pick yet: using the sliders)" if source == "pick" and session.pick() is None else "")
            + f". All {ex.latent_dim * steps} digits come from one batched decode."
        )
        d1, d2, d3 = st.columns([2, 2, 2])
        d1.download_button(
            "Traversal PNG",
            png,
            file_name=f"traversal_{ex.record.id}.png",
            mime="image/png",
            on_click="ignore",
            key="trav_dl",
        )
        dim = d2.selectbox(
            "Row to animate", range(ex.latent_dim), key="trav_gif_dim", format_func=lambda i: f"z[{i}]"
        )
        d3.download_button(
            f"z[{dim}] as animated GIF",
            lambda: analysis.gif_bytes(
                traversal_grid(ex.stamp, key, float(span), int(steps), ex.model)[dim], scale=4
            ),
            file_name=f"traversal_z{dim}_{ex.record.id}.gif",
            mime="image/gif",
            on_click="ignore",
            key="trav_gif",
        )
