"""Projections above 2-D: the scatter in PCA (default) or t-SNE of the test set's latent means.

The t-SNE (scikit-learn, seeded) is computed once per model in a background thread with its progress on
the page, and cached on disk (model.analysis.tsne_path), so it is instant for every later session.
With t-SNE the pick keeps its ring and its 1σ/2σ ellipses: the posterior covariance is carried into the
t-SNE plane by the local linear map fitted on the pick's nearest test means; other latent points (the
sliders, paths) are placed at the distance-weighted t-SNE position of their nearest test means.

Hook: `ex = projection_panel(ex)` in the page, before the explore panel (returns the explorer to use).
Session keys (owned here): proj_method, _tsne_seen.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import streamlit as st

from explorer import cache, views
from model import analysis

K_PLACE = 10  # nearest test means used to place a latent point in the t-SNE plane
K_LOCAL = 30  # nearest test means for the local linear map of a pick's covariance
EXPECTED_S_PER_1K = 12.0  # a rough guide for the progress bar: ~2 min for 10k points on a busy 2-core box


@dataclass(frozen=True, eq=False)
class TsneExplorer(cache.Explorer):
    """The explorer with the test set shown in a t-SNE plane (latents.xy is the t-SNE)."""

    def project(self, z) -> np.ndarray:
        z = np.asarray(z, np.float32)
        flat = z.reshape(-1, z.shape[-1])  # (K, d)
        return place(self.latents.z_mean, self.latents.xy, flat).reshape(*z.shape[:-1], 2)

    def projected_cov(self, index: int) -> np.ndarray:
        jac = local_jacobian(self.latents.z_mean, self.latents.xy, int(index))  # (d, 2)
        var = np.exp(self.latents.z_log_var[index].astype(np.float64))
        return (jac.T * var) @ jac

    def posterior_cov(self, z_mean, z_log_var) -> np.ndarray:
        """Any picture's posterior through the local linear map around its latent mean, as for a pick."""
        jac = point_jacobian(self.latents.z_mean, self.latents.xy, z_mean)  # (d, 2)
        var = np.exp(np.asarray(z_log_var, np.float64))
        return (jac.T * var) @ jac

    @property
    def view_name(self) -> str:
        return "t-SNE"

    @property
    def map_extent(self):
        return views.map_extent(self.latents.xy)

    @property
    def axis_titles(self):
        return "t-SNE 1", "t-SNE 2"


def place(z_means, xy, points, k: int = K_PLACE) -> np.ndarray:
    """Latent points (K, d) -> positions (K, 2) in a non-linear 2-D view `xy` of `z_means` (pure):
    the inverse-squared-distance weighted mean of the view positions of their k nearest means."""
    zm = np.asarray(z_means, np.float32)
    p = np.asarray(points, np.float32)
    d2 = np.stack([np.square(zm - q).sum(1) for q in p]) if len(p) else np.zeros((0, len(zm)))  # (K, N)
    k = min(k, zm.shape[0])
    idx = np.argpartition(d2, k - 1, axis=1)[:, :k]  # (K, k)
    w = 1.0 / (
        np.take_along_axis(d2, idx, 1) + 1e-12
    )  # inverse squared distance: a test mean sits on its point
    return (w[..., None] * np.asarray(xy, np.float32)[idx]).sum(1) / w.sum(1, keepdims=True)


def local_jacobian(z_means, xy, row: int, k: int = K_LOCAL) -> np.ndarray:
    """The least-squares linear map (d, 2) from latent offsets to view offsets around test row `row`,
    fitted on its k nearest test means (pure)."""
    zm = np.asarray(z_means, np.float64)
    rows, _ = analysis.nearest(zm, zm[row], k=min(k, len(zm) - 1), exclude=row)
    dz = zm[rows] - zm[row]  # (k, d)
    dxy = np.asarray(xy, np.float64)[rows] - np.asarray(xy, np.float64)[row]  # (k, 2)
    jac, *_ = np.linalg.lstsq(dz, dxy, rcond=None)
    return jac


def point_jacobian(z_means, xy, z, k: int = K_LOCAL) -> np.ndarray:
    """`local_jacobian` around any latent point z (d,), placed in the view by `place` (pure)."""
    zm = np.asarray(z_means, np.float64)
    z = np.asarray(z, np.float64)
    rows, _ = analysis.nearest(zm, z, k=min(k, len(zm)))
    anchor = place(z_means, xy, z[None])[0].astype(np.float64)
    dz = zm[rows] - z  # (k, d)
    dxy = np.asarray(xy, np.float64)[rows] - anchor  # (k, 2)
    jac, *_ = np.linalg.lstsq(dz, dxy, rcond=None)
    return jac


def with_tsne(ex, xy) -> TsneExplorer:
    values = {f.name: getattr(ex, f.name) for f in fields(ex)}
    values["latents"] = replace(ex.latents, xy=np.asarray(xy, np.float32))
    return TsneExplorer(**values)


@st.fragment(run_every=1.0)
def _progress(model_id: str, n: int) -> None:
    """Ticks every second while the t-SNE runs; reruns the page once it is done."""
    status = analysis.TSNE_JOBS.status(model_id)
    if status["state"] != "running":
        st.rerun()  # the whole page: show the t-SNE (or the failure)
    expected, elapsed = EXPECTED_S_PER_1K * n / 1000, status["elapsed"]
    # scikit-learn reports no progress: the bar follows the elapsed time against a rough estimate and
    # slows down as it nears the end, so it never claims to be done before it is
    st.progress(
        elapsed / (elapsed + expected),
        text=f"Computing the t-SNE of {n:,} latent means in the background… {elapsed:.0f} s elapsed "
        f"(roughly {expected / 60:.0f} min on 2 busy cores). Keep exploring: the PCA view stays "
        "until it is ready, then the page switches by itself.",
    )


def projection_panel(ex):
    """The projection choice (latent sizes above 2 only). Returns the explorer the page should use."""
    if ex.latent_dim <= 2:
        return ex
    method = st.radio(
        "Scatter projection",
        ["PCA", "t-SNE"],
        key="proj_method",
        horizontal=True,
        help="PCA is linear: distances and the posterior ellipses are exact projections. "
        "t-SNE keeps neighbourhoods, not distances (seeded, computed once per model).",
    )
    if method != "t-SNE":
        return ex
    model_id = ex.record.id
    n = len(ex.latents.z_mean)
    xy = analysis.tsne_cached(model_id, n)
    if xy is None:
        status = analysis.TSNE_JOBS.status(model_id)
        if status["state"] == "failed":
            st.error(f"The t-SNE failed: {status['error']}. Fix: free memory and retry, or use PCA.")
            st.button(
                "Retry the t-SNE", on_click=analysis.TSNE_JOBS.forget, args=(model_id,), key="proj_retry"
            )
            return ex
        analysis.TSNE_JOBS.start(model_id, ex.latents.z_mean)
        _progress(model_id, n)
        return ex
    st.caption(
        "t-SNE view (scikit-learn, seed 0, perplexity 30): nearby points are similar, but distances and "
        "cluster sizes in this plane are **not** latent distances. Neighbours, traversals and "
        "attribute vectors still work in the full latent space; the pick's ellipses are its "
        "posterior through the local linear map around it."
    )
    return with_tsne(ex, xy)
