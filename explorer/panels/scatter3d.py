"""The test set in 3-D, for models with three or more latent dimensions: any three latent dimensions or the
first three principal components of the means, coloured and filtered like the 2-D scatter; a click on a
point picks it (through explorer.components.plotly_click: st.plotly_chart does not report 3-D clicks).

Widget keys: s3d_open (expander), s3d_axes, s3d_dims, s3d_click (the click bridge).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import context, scatter, session
from explorer.components.plotly_click import plotly_click
from explorer.panels.common import lazy_expander

PCA = "PCA 1–3"
DIMS = "three latent dimensions"
ALT = "3-D scatter of the test images"  # the click bridge finds the chart by this start of its alt text


@st.cache_resource(max_entries=4, show_spinner="Fitting a 3-D PCA…")
def _pca3(stamp: str, _z_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The means' first three principal components: (positions (N, 3), mean (d,), components (3, d))."""
    from sklearn.decomposition import PCA as SkPCA

    pca = SkPCA(n_components=3, random_state=0).fit(_z_mean)
    comps, mean = pca.components_.astype(np.float32), pca.mean_.astype(np.float32)
    xyz = ((_z_mean - mean) @ comps.T).astype(np.float32)
    for a in (xyz, mean, comps):
        a.flags.writeable = False
    return xyz, mean, comps


def positions(ex: context.Explorer, axes: str, dims=(0, 1, 2)) -> tuple[np.ndarray, tuple[str, str, str]]:
    """The test set's 3-D positions and the axis titles: PCA 1–3 of the means, or three latent dims."""
    z = ex.latents.z_mean
    if axes == PCA:
        xyz, _, _ = _pca3(ex.stamp, z)
        return xyz, ("PC1", "PC2", "PC3")
    dims = tuple(int(i) for i in dims)
    return np.ascontiguousarray(z[:, dims]), tuple(f"z[{i}]" for i in dims)


def _dims(d: int) -> tuple[int, ...] | None:
    dims = st.multiselect(
        "Dimensions (three)",
        list(range(d)),
        default=[0, 1, 2],
        max_selections=3,
        format_func=lambda i: f"z[{i}]",
        key="s3d_dims",
    )
    if len(dims) != 3:
        st.info(f"Choose three of the {d} latent dimensions.")
        return None
    return tuple(sorted(dims))


def scatter3d_panel(ex: context.Explorer, colour=None, shown=None) -> None:
    """The "3-D view" section (inside the explore fragment); nothing for a 1-D or 2-D model."""
    d = ex.latent_dim
    if d < 3:
        return
    box, is_open = lazy_expander("3-D view of the latent space", "s3d_open", ":material/view_in_ar:")
    if not is_open:
        return
    with box:
        axes = st.segmented_control("Axes", [PCA, DIMS], default=PCA, key="s3d_axes") or PCA
        dims = _dims(d) if axes == DIMS else (0, 1, 2)
        if dims is None:
            return
        xyz, titles = positions(ex, axes, dims)
        pick = session.pick()
        fig = scatter.latent_scatter_3d(
            xyz,
            ex.latents.labels,
            ex.class_names,
            picked=None if pick is None or not 0 <= pick < len(xyz) else xyz[pick],
            axis_titles=titles,
            colour=colour,
            shown=shown,
            n_test=ex.n_test,
        )
        st.plotly_chart(
            fig,
            key="scatter3d",
            config={"displaylogo": False},
            alt=f"{ALT} in {', '.join(titles)}, one colour per label. Drag to turn it; click a point to "
            "pick it.",
        )
        plotly_click(ALT, "s3d_click", session.set_pick)
        st.caption("Drag to turn, scroll to zoom; click a point to pick that test image.")
