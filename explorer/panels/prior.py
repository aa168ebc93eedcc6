"""Samples from the prior: n draws z ~ N(0, I) decoded, a button for new ones (the seed is in
explorer.session).
"""

from __future__ import annotations

import streamlit as st

from explorer import cache, context, session
from explorer.panels.common import fmt, thumbnail_row

PRIOR_N = 10
THUMB_SCALE = 3


def _next_seed() -> None:
    """Button callback: draw new prior samples (the seed lives in this panel's state)."""
    state = session.own("prior")
    state["seed"] = state.get("seed", 0) + 1


def prior_panel(ex: context.Explorer) -> None:
    st.subheader("Sample from prior")
    c1, c2 = st.columns([1, 4])
    c1.button(
        "Sample from prior",
        on_click=_next_seed,
        type="primary",
        help="Draw new z ~ N(0, I) and decode them.",
    )
    seed = session.own("prior").setdefault("seed", 0)
    c2.caption(f"{PRIOR_N} draws z ~ N(0, I), decoded (seed {seed}).")
    z, pngs = cache.prior_samples(ex.stamp, ex.model, PRIOR_N, seed)
    captions = [fmt(v) if ex.latent_dim <= 2 else f"sample {i + 1}" for i, v in enumerate(z)]
    thumbnail_row("prior").image(
        pngs,
        width=28 * THUMB_SCALE,
        caption=captions,
        output_format="PNG",
        alt=[f"decoded sample {i + 1} from the prior, z = {fmt(v)}" for i, v in enumerate(z)],
    )
