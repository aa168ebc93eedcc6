"""Box and lasso selection on the test-set scatter: the selected images, counts per label, the mean
image beside the decoded mean z, and a CSV download.

Session keys: selection (through explorer.session), widgets sel_clear, sel_csv.
Hooks the explore panel calls (one line each):
  on_scatter_event(event)   in the scatter's on_select callback: True when it was a box/lasso
                            selection (stored here), False for a click (the page picks the point)
  mark_selection(fig, ex)   before the scatter is drawn: rings around the selected points
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from explorer import events, scatter, session, views
from explorer.panels.common import fmt
from model import analysis, export

SHOW = 100  # images in the grid
GRID_COLS = 20


def on_scatter_event(event, all_xy=None) -> bool:
    """Store a box/lasso selection (True), or leave a click to the page (False). With `all_xy` (an
    overview that draws only some points) the box or lasso selects among all points by its geometry."""
    rows = events.selected_rows(event)
    if rows is not None and all_xy is not None:
        rows = events.rows_in_selection(event, all_xy)
        rows = [] if rows is None else rows
    if rows is None:
        return False
    session.set_selection(rows)  # an empty box clears the selection
    return True


def mark_selection(fig, ex):
    rows = [r for r in session.selection_rows() if 0 <= r < len(ex.images)]
    return (
        scatter.highlight_rows(fig, ex.latents.xy, rows, name=f"selection ({len(rows):,})") if rows else fig
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _summary(stamp: str, digest: str, _rows: tuple, _ex) -> dict:
    s = analysis.selection_summary(
        np.array(_rows, np.int64), _ex.latents.labels, _ex.latents.z_mean, _ex.images, len(_ex.class_names)
    )
    shown = s["rows"][:SHOW]
    s["grid_png"] = views.to_png(views.mosaic(_ex.images[shown], GRID_COLS), 2)
    s["mean_png"] = views.to_png(s["mean_image"], 4)
    s["decoded_png"] = views.to_png(_ex.model.decode(s["mean_z"])[0], 4)
    return s


def summary(ex, rows) -> dict:
    rows = tuple(int(r) for r in rows)
    digest = hashlib.sha1(np.asarray(rows, np.int64).tobytes()).hexdigest()
    return _summary(ex.stamp, digest, rows, ex)


def selection_panel(ex) -> None:
    rows = [r for r in session.selection_rows() if 0 <= r < len(ex.images)]
    if not rows:
        st.caption(
            "Tip: drag a box or a lasso on the scatter (toolbar, top right) to select many test "
            "images at once."
        )
        return
    s = summary(ex, rows)
    n = len(s["rows"])
    with st.container(border=True):
        st.subheader(f"Selection: {n:,} test image{'s' * (n != 1)}")
        left, right = st.columns([2, 1], gap="medium")
        with left:
            more = f" (+{n - SHOW:,} more)" if n > SHOW else ""
            st.image(
                s["grid_png"],
                output_format="PNG",
                caption=f"the first {min(n, SHOW)} by test index{more}",
                alt=f"grid of the first {min(n, SHOW)} of the {n:,} selected test images, by test index",
            )
        with right:
            counts = s["counts"]
            present = [i for i in range(len(counts)) if counts[i]]
            st.markdown(
                "| label | count |\n|---|---:|\n"
                + "\n".join(f"| {ex.class_name(i)} | {counts[i]:,} |" for i in present)
            )
            row = st.container(horizontal=True)  # side by side, or one under the other when narrow
            row.image(
                s["mean_png"],
                caption="mean image",
                output_format="PNG",
                alt=f"mean image of the {n:,} selected test images",
            )
            row.image(
                s["decoded_png"],
                caption="decoder(mean z)",
                output_format="PNG",
                alt=f"decoded digit at the selection's mean z = {fmt(s['mean_z'])}",
            )
            st.caption(f"mean z = `{fmt(s['mean_z'])}`")
        b1, b2, _ = st.columns([1, 1, 2])
        sel = s["rows"]
        b1.download_button(
            "Download selection (CSV)",
            lambda: export.latents_csv(ex.latents.z_mean[sel], ex.latents.labels[sel], index=sel),
            file_name=f"selection-{n}-{ex.record.id}.csv",
            mime="text/csv",
            on_click="ignore",
            key="sel_csv",
            help=f"Columns index,label,z0..z{ex.latent_dim - 1}: the selected test images' posterior means.",
        )
        b2.button("Clear selection", on_click=session.set_selection, args=(None,), key="sel_clear")
