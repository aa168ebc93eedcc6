"""Interpolation: a row of digits decoded along the straight line between two latent points (the picks,
a test image of another class, the sliders, the origin). Widget keys: interp_a, interp_b, interp_steps.

The defaults always show a change: from the previous pick (before there is one: a test image of another
class than the end's) to the current pick (before there is one: a test image chosen at random, the same on
every rerun).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import context, session, views
from explorer.panels.common import fmt, thumbnail_row

THUMB_SCALE = 3


def other_class_row(labels, row: int, seed: int = 0) -> int:
    """A test row whose label differs from `labels[row]`, drawn at random with `seed` (pure: the same
    row for the same arguments). Returns `row` itself when every label is the same."""
    labels = np.asarray(labels)
    others = np.flatnonzero(labels != labels[row])
    return int(np.random.default_rng(seed).choice(others)) if len(others) else int(row)


def interpolation_panel(ex: context.Explorer, z_sliders: np.ndarray, with_map: bool = False):
    """A row of digits decoded along the straight line between two points. Returns the path (K, d) and,
    with `with_map`, a placeholder beside the row for the map of the path (else None)."""
    st.subheader("Interpolation")
    zm, labels = ex.latents.z_mean, ex.latents.labels
    pick, prev = session.pick(), session.pick_prev()
    # without a pick: a test image drawn once per model (seeded), so reruns show the same row
    anchor = pick if pick is not None else int(np.random.default_rng(len(zm)).integers(len(zm)))
    other = other_class_row(labels, anchor, seed=anchor)

    def test_point(row, note=""):
        if row is None:
            return None, None
        return f"{ex.point_name(row)} (label {ex.class_name(labels[row])}{note})", zm[row]

    # Option labels stay fixed (the browser keeps a keyed selectbox's old labels); the caption names
    # the actual endpoints.
    ends = {
        "prev": ("previous pick", *test_point(prev)),
        "pick": ("current pick", *test_point(pick)),
        "other": ("a test image of another class", *test_point(other, ", another class")),
        "sliders": ("slider position", "the sliders", z_sliders),
        "origin": ("origin (z = 0)", "z = 0", np.zeros(ex.latent_dim, np.float32)),
    }
    fallback = {"prev": ends["other"], "pick": ("", *test_point(anchor, ", chosen at random"))}
    c1, c2, c3 = st.columns([2, 2, 2])
    a = c1.selectbox("From", list(ends), index=0, key="interp_a", format_func=lambda k: ends[k][0])
    b = c2.selectbox("To", list(ends), index=1, key="interp_b", format_func=lambda k: ends[k][0])
    steps = c3.slider("Steps", 3, 16, 10, key="interp_steps")
    start, end = (ends[k] if ends[k][2] is not None else fallback[k] for k in (a, b))
    path, images = ex.model.interpolate(start[2], end[2], steps)  # one batched decode
    left, map_col = st.columns([4, 1], gap="medium") if with_map else (st.container(), None)
    with left:
        thumbnail_row("interp").image(
            [views.to_png(im, THUMB_SCALE) for im in images],
            width=28 * THUMB_SCALE,
            output_format="PNG",
            caption=[f"t={t:.2f}" for t in np.linspace(0, 1, steps)],
            alt=[
                f"decoded digit at t = {t:.2f} from {start[1]} to {end[1]}, z = {fmt(p)}"
                for t, p in zip(np.linspace(0, 1, steps), path)
            ],
        )
        note = f"From {start[1]} to {end[1]} (the grey line on the map)."
        missing = [ends[k][0] for k in (a, b) if ends[k][2] is None]
        if missing:
            note += (
                f" No {' or '.join(missing)} yet: click points in the scatter to interpolate between them."
            )
        st.caption(note)
    return path, (map_col.empty() if map_col is not None else None)
