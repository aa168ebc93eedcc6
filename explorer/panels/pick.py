"""The picked test image: go to a number or a random one, then the image, its reconstruction, label and
posterior (mean and standard deviation).

Widget key: goto. The pick itself (and a bad pick's error) goes through explorer.session.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import cache, context, session
from explorer.panels.common import fmt


def _goto() -> None:
    value = session.widget_value("goto")
    if value is not None:
        session.set_pick(int(value))


def _random_pick(n: int) -> None:
    session.set_pick(int(np.random.default_rng().integers(n)))


def pick_panel(ex: context.Explorer) -> None:
    """The "Picked test image" section (inside the explore fragment)."""
    st.subheader("Picked test image")
    if err := session.pop_pick_error():
        st.error(err)
    n = len(ex.images)
    c1, c2, _ = st.columns([1, 1, 3])
    c1.number_input(
        "Go to test image #",
        min_value=0,
        max_value=n - 1,
        value=None,
        step=1,
        key="goto",
        on_change=_goto,
        placeholder=f"0 … {n - 1}",
    )
    c2.button("Random test image", on_click=_random_pick, args=(n,), width="stretch")
    pick = session.pick()
    if pick is None:
        st.info(
            "Click a point in the scatter (or type a test image number) to see the image, its "
            "reconstruction and its posterior."
        )
        return
    original, recon = cache.pick_pngs(ex.stamp, ex.model, ex.images, int(pick))
    label = ex.latents.labels[pick]
    z_mean = ex.latents.z_mean[pick]
    sigma = np.exp(0.5 * ex.latents.z_log_var[pick])
    cols = st.columns([1, 1, 3])
    name = ex.class_name(label)
    cols[0].image(
        original,
        caption=f"{ex.point_name(pick)} (original)",
        width=28 * 6,
        output_format="PNG",
        alt=f"test image #{pick}, label {name}",
    )
    cols[1].image(
        recon,
        caption="reconstruction",
        width=28 * 6,
        output_format="PNG",
        alt=f"reconstruction of test image #{pick} (label {name})",
    )
    with cols[2]:
        st.markdown(f"**Label:** {ex.class_name(label)}  \n**Index:** {pick}")
        st.markdown(f"**z_mean:** `{fmt(z_mean)}`  \n**σ (posterior std):** `{fmt(sigma)}`")
        note = ex.ellipse_note(int(pick))
        st.caption(
            "The sliders were moved to z_mean; "
            + (
                f"no posterior ellipses on the scatter in the {ex.view_name} view: {note}."
                if note
                else "the ellipses on the scatter are the posterior's 1σ and 2σ contours."
            )
        )
