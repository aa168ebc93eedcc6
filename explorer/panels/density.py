"""Density against the prior: the test set's aggregate posterior as contours over the prior N(0, I)'s
1σ/2σ/3σ circles, the "holes" (cells where the prior has mass and the data little) marked, and a few
samples from the holes decoded. A lazy expander: closed, it costs nothing.

The plane is linear: the latent plane (2-D models) or the PCA plane of the means (above 2-D), whatever
the scatter shows. There both densities are exact (model.density) and a point of the plane lifts back
to a latent vector (the PCA inverse: the other principal directions at the test set's mean), so the
holes can be decoded. A t-SNE or UMAP plane has neither: the prior has no image there (those maps are
defined on the test means only, and a prior sample would be placed on its nearest test means, which
hides exactly the holes), and a point of it has no latent vector to decode.

Widget keys: density_open, density_resample. Private state: session.own("density") (the samples' seed).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import context, mapviews, session, views
from explorer.panels.common import fmt, lazy_expander, thumbnail_row
from model import density, imagemap

GRID_N = 80  # cells per side of the density grid
HOLE_SAMPLES = 8
THUMB_SCALE = 3


def linear_plane(lat: context.Latents):
    """The test set in the linear plane (whatever the scatter shows): (means (N, 2), posterior
    covariances (N, 2, 2), the prior's centre (2,))."""
    w = np.asarray(lat.proj_components, np.float64)  # (2, d), orthonormal rows
    mean = np.asarray(lat.proj_mean, np.float64)
    xy = (np.asarray(lat.z_mean, np.float64) - mean) @ w.T
    var = np.exp(np.clip(np.asarray(lat.z_log_var, np.float64), -30, 30))  # (N, d)
    covs = np.einsum("id,nd,jd->nij", w, var, w)
    return xy, covs, -mean @ w.T


@st.cache_data(max_entries=8, show_spinner="Computing the aggregate posterior's density…")
def densities(stamp: str, _lat: context.Latents, n: int = GRID_N) -> dict:
    """The grids of the data's and the prior's densities in the linear plane, and the holes (per model)."""
    xy, covs, center = linear_plane(_lat)
    # the means' reach, plus two of their posteriors' typical std devs: the mixture's tails stay in the grid
    sd = float(np.sqrt(np.median(np.maximum(covs[:, 0, 0], covs[:, 1, 1]))))
    reach = float(np.quantile(np.abs(xy - center).max(1), 0.995)) * 1.05 + 2.0 * sd
    gx, gy = density.plane_grid(center, max(3.5, reach), n)
    q = density.mixture_density(xy, covs, gx, gy)
    p = density.prior_density(center, gx, gy)
    mask = density.holes(q, p, gx, gy, center)
    return {"gx": gx, "gy": gy, "q": q, "p": p, "holes": mask, "center": center}


def _resample() -> None:
    state = session.own("density")
    state["seed"] = state.get("seed", 0) + 1


def density_panel(ex: context.Explorer) -> None:
    box, is_open = lazy_expander("Density against the prior", key="density_open", icon=":material/blur_on:")
    if not is_open:
        return
    with box:
        if ex.latent_dim < 2:
            st.info("The density against the prior needs a latent space of 2 or more dimensions.")
            return
        lat = ex.latents
        g = densities(ex.stamp, lat)
        seed = session.own("density").setdefault("seed", 0)
        samples, _ = density.sample_holes(g["holes"], g["p"], g["gx"], g["gy"], HOLE_SAMPLES, seed)
        plane = "latent plane" if ex.latent_dim == 2 else "PCA plane of the latent means"
        if ex.latent_dim > 2 and ex.view_name != "PCA":
            st.caption(
                f"Shown in the PCA plane, not the {ex.view_name} view: the prior N(0, I) has no image in a "
                f"{ex.view_name} plane (it is defined on the test means only), and a point there has no "
                "latent vector to decode."
            )
        share = density.hole_share(g["holes"], g["p"])
        st.caption(
            f"Contours: the aggregate posterior, the mixture of the {len(lat.z_mean):,} test images' "
            f"posteriors q(z|x), in the {plane} (exact there). Circles: the prior N(0, I)'s 1σ, 2σ, 3σ. "
            "Red squares: holes, cells within 2σ where the data's density is below "
            f"{density.HOLE_RATIO:g}× the prior's: "
            f"**{100 * share:.1f}%** of the prior's mass. A VAE decodes prior samples from the holes into "
            "whatever it makes of a region it never saw in training."
        )
        titles = ("z[0]", "z[1]") if ex.latent_dim == 2 else context.axis_titles(lat)
        fig = mapviews.density_figure(g["gx"], g["gy"], g["q"], g["center"], g["holes"], samples, titles)
        st.plotly_chart(fig, key="density_chart", config={"displaylogo": False})
        if len(samples) == 0:
            st.info("No holes: the data covers the prior's 2σ disc in this plane.")
            return
        z = imagemap.lift(samples, lat.proj_mean, lat.proj_components)  # (K, d)
        decoded = ex.model.decode(z)  # (K, 28, 28), one batched call
        c1, c2 = st.columns([1, 4])
        c1.button(
            "Other samples", key="density_resample", on_click=_resample, help="Draw new points in the holes."
        )
        c2.caption(
            f"{len(samples)} points drawn in the holes (cells by prior mass, seed {seed}), lifted to z"
            + (" (the other principal directions at the test set's mean)" if ex.latent_dim > 2 else "")
            + " and decoded."
        )
        thumbnail_row("density").image(
            [views.to_png(d, THUMB_SCALE) for d in decoded],
            width=28 * THUMB_SCALE,
            caption=[f"hole {i + 1}" for i in range(len(decoded))],
            output_format="PNG",
            alt=[f"decoded sample {i + 1} from a hole, z = {fmt(v)}" for i, v in enumerate(z)],
        )
