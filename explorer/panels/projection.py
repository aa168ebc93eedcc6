"""Projections above 2-D: the scatter in PCA (default) or t-SNE of the test set's latent means.

The t-SNE (scikit-learn, seeded) is computed once per model by the server's analysis runner
(explorer.background: one task at a time, cancellable, dropped when no page wants it) with its
progress on the page, and cached on disk (model.analysis.tsne_path), so it is instant for every later session.
With t-SNE the pick keeps its ring and its 1σ/2σ ellipses: the posterior covariance is carried into the
t-SNE plane by the local linear map fitted on the pick's nearest test means (over the directions they
span; a map that stretches absurdly or sends the ellipse past the plane is refused, and the pick is shown
without ellipses, saying why); other latent points (the sliders, paths) are placed at the
distance-weighted t-SNE position of their nearest test means, so they stay inside the plane.

Hook: `ex = projection_panel(ex)` in the page, before the explore panel (returns the explorer to use).
Session keys (owned here): proj_method, _tsne_seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from explorer import background, context, views
from model import analysis

K_PLACE = 10  # nearest test means used to place a latent point in the t-SNE plane
K_LOCAL = 30  # nearest test means for the local linear map of a pick's covariance
RCOND = 0.05  # latent directions spread less than this times the widest are left out of the local map
MAX_GAIN = 50.0  # a local map may stretch this many times more than the view does overall
MARGIN = 0.25  # an ellipse may reach this share of the view's size past its points
TSNE_COMPUTE = analysis.tsne_in_child  # (z, seed, progress) -> (N, 2); tests put a stand-in here


@dataclass(frozen=True, eq=False)
class TsneView:
    """The test set shown in a t-SNE plane (latents.xy is the t-SNE): the explorer's `view` object."""

    latents: context.Latents
    name = "t-SNE"
    axis_titles = ("t-SNE 1", "t-SNE 2")

    def project(self, z) -> np.ndarray:
        z = np.asarray(z, np.float32)
        flat = z.reshape(-1, z.shape[-1])  # (K, d)
        return place(self.latents.z_mean, self.latents.xy, flat).reshape(*z.shape[:-1], 2)

    def projected_cov(self, index: int) -> np.ndarray | None:
        """Test row `index`'s posterior through the local linear map around it: (2, 2), or None when that
        map is unreliable there (`ellipse_note` says why; the pick is then shown without ellipses)."""
        return self._carried(self.latents.z_mean[index], self.latents.z_log_var[index], row=int(index))[0]

    def posterior_cov(self, z_mean, z_log_var) -> np.ndarray | None:
        """Any picture's posterior through the local linear map around its latent mean, as for a pick."""
        return self._carried(z_mean, z_log_var)[0]

    def ellipse_note(self, index: int) -> str | None:
        """Why test row `index` has no ellipses in this view, or None when it has them."""
        return self._carried(self.latents.z_mean[index], self.latents.z_log_var[index], row=int(index))[1]

    def _carried(self, z_mean, z_log_var, row: int | None = None) -> tuple[np.ndarray | None, str | None]:
        lat = self.latents
        if row is None:
            center = place(lat.z_mean, lat.xy, np.asarray(z_mean, np.float32)[None])[0]
            jac = point_jacobian(lat.z_mean, lat.xy, z_mean)  # (d, 2)
        else:
            center, jac = lat.xy[row], local_jacobian(lat.z_mean, lat.xy, row)
        return carry_cov(jac, z_log_var, center, lat.xy, global_gain(lat.z_mean, lat.xy))

    @property
    def map_extent(self):
        return views.map_extent(self.latents.xy)


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


def fit_local_map(dz, dxy, rcond: float = RCOND) -> np.ndarray:
    """The least-squares linear map (d, 2) with dz @ map ≈ dxy, over the directions the neighbourhood
    really spans: latent directions whose spread is below `rcond` times the largest one are left out
    (the map is 0 along them) instead of being fitted on noise. In a VAE with inactive latent
    dimensions (every mean ≈ 0 there, the posterior ≈ the prior) a plain fit gives those directions
    huge weights, and their variance of ~1 then blows the ellipses up to the size of the page."""
    dz = np.asarray(dz, np.float64)
    dxy = np.asarray(dxy, np.float64)
    u, s, vt = np.linalg.svd(dz, full_matrices=False)  # dz = u diag(s) vt
    keep = s > rcond * (s[0] if len(s) else 0.0)
    return (vt[keep].T / s[keep]) @ (u[:, keep].T @ dxy)


def local_jacobian(z_means, xy, row: int, k: int = K_LOCAL) -> np.ndarray:
    """The linear map (d, 2) from latent offsets to view offsets around test row `row`, fitted on its
    k nearest test means (`fit_local_map`, pure)."""
    zm = np.asarray(z_means, np.float64)
    rows, _ = analysis.nearest(zm, zm[row], k=min(k, len(zm) - 1), exclude=row)
    dz = zm[rows] - zm[row]  # (k, d)
    dxy = np.asarray(xy, np.float64)[rows] - np.asarray(xy, np.float64)[row]  # (k, 2)
    return fit_local_map(dz, dxy)


def point_jacobian(z_means, xy, z, k: int = K_LOCAL) -> np.ndarray:
    """`local_jacobian` around any latent point z (d,), placed in the view by `place` (pure)."""
    zm = np.asarray(z_means, np.float64)
    z = np.asarray(z, np.float64)
    rows, _ = analysis.nearest(zm, z, k=min(k, len(zm)))
    anchor = place(z_means, xy, z[None])[0].astype(np.float64)
    dz = zm[rows] - z  # (k, d)
    dxy = np.asarray(xy, np.float64)[rows] - anchor  # (k, 2)
    return fit_local_map(dz, dxy)


def global_gain(z_means, xy) -> float:
    """The view's overall scale: spread of the view over spread of the latent means (pure)."""
    zs = float(np.sqrt(np.asarray(z_means, np.float64).var(0).sum()))
    xs = float(np.sqrt(np.asarray(xy, np.float64).var(0).sum()))
    return xs / zs if zs > 0 else np.inf


def carry_cov(jac, z_log_var, center, xy, gain: float | None = None) -> tuple[np.ndarray | None, str | None]:
    """A diagonal posterior diag(exp(z_log_var)) carried into the view by the local map `jac` (d, 2):
    (cov (2, 2), None), or (None, why) when the map is not to be trusted there (pure).

    Refused: a map that is not finite, one that stretches latent offsets more than MAX_GAIN times the
    view's overall scale (`global_gain`), and one whose 2σ ellipse around `center` reaches past the
    view's extent (the box around every point of `xy`, widened by MARGIN of its size on each side)."""
    jac = np.asarray(jac, np.float64)
    var = np.exp(np.clip(np.asarray(z_log_var, np.float64), -50, 50))
    cov = (jac.T * var) @ jac
    if not (np.all(np.isfinite(jac)) and np.all(np.isfinite(cov))):
        return None, "the local linear map around it is not finite"
    xy = np.asarray(xy, np.float64)
    lo, hi = xy.min(0), xy.max(0)
    size = float(np.max(hi - lo))
    gain = np.inf if gain is None else gain
    stretch = float(np.linalg.norm(jac, 2))
    if np.isfinite(gain) and stretch > MAX_GAIN * gain:
        return None, (
            f"the local linear map around it stretches latent offsets {stretch / gain:,.0f} times "
            "more than the view does overall (its neighbourhood is too flat to fit a map)"
        )
    half = 2.0 * np.sqrt(np.clip(np.diag(cov), 0.0, None))  # the 2σ ellipse's half-widths along x, y
    c = np.asarray(center, np.float64).reshape(2)
    if np.any(c - half < lo - MARGIN * size) or np.any(c + half > hi + MARGIN * size):
        return None, "its 2σ ellipse through the local linear map would reach past the whole t-SNE plane"
    return cov, None


def with_tsne(ex: context.Explorer, xy) -> context.Explorer:
    """The explorer `ex` with its test set at the t-SNE positions `xy` (N, 2), in the t-SNE view."""
    return ex.with_view(xy, TsneView)


def _tsne_key(model_id: str) -> tuple:
    return ("tsne", model_id, analysis.TSNE_SEED)


def _tsne_task(model_id: str, z_means):
    """The background task: the t-SNE (in a child process), saved to the disk cache."""
    z = np.array(z_means, np.float32)  # a private copy for the runner's thread

    def run(progress):
        xy = TSNE_COMPUTE(z, analysis.TSNE_SEED, progress)
        path = analysis.tsne_path(model_id)
        try:
            analysis.save_npy(path, xy)
        except OSError as e:  # the work is kept: in this server's memory, until it restarts
            return {"xy": xy, "cache_error": analysis.write_problem(e, path)}
        return {"xy": xy, "cache_error": None}

    return run


def _cancel(key: tuple) -> None:
    background.RUNNER.cancel(key, background.session_id())
    st.session_state["proj_method"] = "PCA"


@st.fragment(run_every=1.0)
def _progress(key: tuple, n: int) -> None:
    """Ticks every second while the t-SNE waits or runs (saying this page still wants it); reruns the
    page once it is done."""
    runner = background.RUNNER
    runner.want(key, background.session_id())
    status = runner.status(key)
    if status["state"] not in ("queued", "running"):
        st.rerun()  # the whole page: show the t-SNE (or the failure)
    if status["state"] == "queued" and status["ahead"]:
        st.progress(
            0.0,
            text=f"The t-SNE of {n:,} latent means waits for the server's analysis runner (one at a time): "
            f"{len(status['ahead'])} task(s) first ({', '.join(status['ahead'])[:200]}). "
            "Keep exploring: the PCA view stays until it is ready.",
        )
    else:
        st.progress(
            status["progress"],
            text=f"Computing the t-SNE of {n:,} latent means in the background… "
            f"{100 * status['progress']:.0f}% of the iterations, {status['elapsed']:.0f} s elapsed. "
            "Keep exploring: the PCA view stays until it is ready, then the page switches by itself.",
        )
    st.button(
        "Cancel the t-SNE",
        key="proj_cancel",
        on_click=_cancel,
        args=(key,),
        help="Stops it unless another open page waits for it too; back to PCA.",
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
        key, runner = _tsne_key(model_id), background.RUNNER
        status = runner.status(key)
        result = status.get("result") or {}
        if status["state"] == "done" and result.get("cache_error") and len(result["xy"]) == n:
            xy = result["xy"]  # computed, but it could not be saved: kept in this server's memory
            st.warning(
                f"The t-SNE could not be saved ({result['cache_error']}); it is kept in this server's "
                "memory until the server restarts."
            )
        elif status["state"] == "failed":
            fix = "free memory and retry" if "MemoryError" in status["error"] else "retry"
            st.error(f"The t-SNE failed: {status['error'].rstrip('.')}. Fix: {fix}, or use PCA.")
            st.button("Retry the t-SNE", on_click=runner.forget, args=(key,), key="proj_retry")
            return ex
    if xy is None:
        if status["state"] == "done":
            runner.forget(key)  # done, but its cache is gone (the model was deleted and retrained...)
        problem = analysis.cache_problem(analysis.tsne_path(model_id))
        if problem:
            st.warning(
                f"The t-SNE cannot be saved: {problem}. It is computed anyway and kept in this "
                "server's memory until the server restarts."
            )
        runner.submit(
            key,
            _tsne_task(model_id, ex.latents.z_mean),
            background.session_id(),
            f"t-SNE of {ex.record.label}",
        )
        _progress(key, n)
        return ex
    st.caption(
        "t-SNE view (scikit-learn, seed 0, perplexity 30): nearby points are similar, but distances and "
        "cluster sizes in this plane are **not** latent distances. Neighbours, traversals and "
        "attribute vectors still work in the full latent space; the pick's ellipses are its "
        "posterior through the local linear map around it."
    )
    return with_tsne(ex, xy)
