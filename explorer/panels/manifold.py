"""The manifold: an n×n grid decoded over a plane of the latent space (cached per model, span and axes).
Widget keys: manifold_span, manifold_dx, manifold_dy.
"""

from __future__ import annotations

import streamlit as st

from explorer import cache, context

MANIFOLD_N = 30


def manifold_panel(ex: context.Explorer) -> None:
    d = ex.latent_dim
    st.subheader(f"Manifold: a {MANIFOLD_N}×{MANIFOLD_N} grid decoded over the latent plane")
    cols = st.columns([2, 1, 1] if d > 2 else [2, 2])
    default = float(min(ex.latents.bounds[:2]))
    span = cols[0].slider(
        "Span (the grid covers −span … +span)", 0.5, 10.0, default, step=0.5, key="manifold_span"
    )
    dims = (0, 1)
    if d > 2:
        a = cols[1].selectbox(
            "Horizontal axis", range(d), index=0, key="manifold_dx", format_func=lambda i: f"z[{i}]"
        )
        b = cols[2].selectbox(
            "Vertical axis", range(d), index=1, key="manifold_dy", format_func=lambda i: f"z[{i}]"
        )
        if a == b:
            st.warning("Pick two different dimensions; showing z[0] × z[1].")
        else:
            dims = (a, b)
    st.caption(
        f"Left → right: z[{dims[0]}] from −{span:g} to +{span:g}. "
        f"Top → bottom: z[{dims[1]}] from +{span:g} to −{span:g}."
        + (" The other dimensions are held at 0." if d > 2 else "")
        + f" All {MANIFOLD_N * MANIFOLD_N} digits come from one batched decode, cached per model."
    )
    png = cache.manifold_png(ex.stamp, ex.model, MANIFOLD_N, float(span), dims)
    st.image(
        png,
        width=MANIFOLD_N * 28,
        output_format="PNG",
        alt=f"{MANIFOLD_N}×{MANIFOLD_N} grid of decoded digits: z[{dims[0]}] from −{span:g} (left) to "
        f"+{span:g} (right), z[{dims[1]}] from +{span:g} (top) to −{span:g} (bottom)",
    )
