"""Interpolation: a row of digits decoded along the straight line between two latent points (the picks,
the sliders, the origin). Widget keys: interp_a, interp_b, interp_steps.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import cache, session, views

THUMB_SCALE = 3


def interpolation_panel(ex: cache.Explorer, z_sliders: np.ndarray) -> np.ndarray | None:
    """A row of digits decoded along the straight line between two points. Returns the path (K, d)."""
    st.subheader("Interpolation")
    zm, labels = ex.latents.z_mean, ex.latents.labels
    pick, prev = session.pick(), session.pick_prev()

    def test_point(row):
        if row is None:
            return None, None
        return f"test #{row} (label {ex.class_name(labels[row])})", zm[row]

    # Option labels stay fixed (the browser keeps a keyed selectbox's old labels); the caption names
    # the actual endpoints.
    ends = {
        "prev": ("previous pick", *test_point(prev)),
        "pick": ("current pick", *test_point(pick)),
        "sliders": ("slider position", "the sliders", z_sliders),
        "origin": ("origin (z = 0)", "z = 0", np.zeros(ex.latent_dim, np.float32)),
    }
    fallback = {"prev": "origin", "pick": "sliders", "sliders": "sliders", "origin": "origin"}
    c1, c2, c3 = st.columns([2, 2, 2])
    a = c1.selectbox("From", list(ends), index=0, key="interp_a", format_func=lambda k: ends[k][0])
    b = c2.selectbox("To", list(ends), index=1, key="interp_b", format_func=lambda k: ends[k][0])
    steps = c3.slider("Steps", 3, 16, 10, key="interp_steps")
    used = [k if ends[k][2] is not None else fallback[k] for k in (a, b)]
    path, images = ex.model.interpolate(ends[used[0]][2], ends[used[1]][2], steps)  # one batched decode
    st.image(
        [views.to_png(im, THUMB_SCALE) for im in images],
        width=28 * THUMB_SCALE,
        output_format="PNG",
        caption=[f"t={t:.2f}" for t in np.linspace(0, 1, steps)],
    )
    note = f"From {ends[used[0]][1]} to {ends[used[1]][1]} (the grey line on the map)."
    missing = [ends[k][0] for k in (a, b) if ends[k][2] is None]
    if missing:
        note += f" No {' or '.join(missing)} yet: click points in the scatter to interpolate between them."
    st.caption(note)
    return path
