"""Nearest neighbours of the pick: the k nearest test images in the full latent space, clickable.

Session keys: nn_open (expander), nn_k (slider), nn_pick_<i> (buttons).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import session, views
from explorer.panels.common import lazy_expander
from model import analysis

THUMB = 3
CELL = 66  # px: one thumbnail and its button


@st.cache_data(max_entries=256, show_spinner=False)
def _neighbours(stamp: str, row: int, k: int, _z_means) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest test rows to test row `row` (itself left out) and their distances."""
    return analysis.nearest(_z_means, _z_means[row], k, exclude=row)


def neighbours_panel(ex) -> None:
    box, is_open = lazy_expander(
        "Nearest neighbours of the pick (in latent space)", "nn_open", ":material/hub:"
    )
    if not is_open:
        return
    with box:
        pick = session.pick()
        if pick is None:
            st.info("Pick a test image (click the scatter) to see its nearest test images in latent space.")
            return
        k = st.slider("Neighbours (k)", 1, 30, analysis.NEIGHBOURS, key="nn_k")
        rows, dist = _neighbours(ex.stamp, int(pick), int(k), ex.latents.z_mean)
        labels = ex.latents.labels
        same = int((labels[rows] == labels[pick]).sum())
        st.caption(
            f"The {len(rows)} test images whose posterior means are nearest to {ex.point_name(pick)}'s, by "
            f"Euclidean distance in the full {ex.latent_dim}-D latent space"
            + ("" if ex.latent_dim == 2 else f" (not in the 2-D {ex.view_name} view)")
            + f"; {same} of {len(rows)} share its label "
            f"**{ex.class_name(labels[pick])}**. Press a button to pick that image."
        )
        # thumbnails with their button, wrapping to the column's width (10 a row on a laptop, 4 on a phone)
        grid = st.container(horizontal=True, gap="xsmall")
        for i, (r, d) in enumerate(zip(rows, dist)):
            with grid.container(width=CELL):
                st.image(
                    views.to_png(ex.images[r], THUMB),
                    width="stretch",
                    output_format="PNG",
                    caption=f"#{r} · {ex.class_name(labels[r])} · d={d:.3g}",
                    alt=f"test image #{r}, label {ex.class_name(labels[r])}, latent distance "
                    f"{d:.3g} from test image #{pick}",
                )
                st.button(
                    "pick",
                    key=f"nn_pick_{i}",
                    on_click=session.set_pick,
                    args=(int(r),),
                    help=f"Make {ex.point_name(r)} the pick.",
                )
