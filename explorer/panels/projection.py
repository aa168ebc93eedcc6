"""Projections above 2-D: the scatter in PCA (default), t-SNE or UMAP of the test set's latent means.

The t-SNE (scikit-learn, seeded) is computed once per model by the server's analysis runner
(explorer.background: one task at a time, cancellable, dropped when no page wants it) with its
progress on the page, and cached on disk (model.analysis.tsne_path), so it is instant for every later session.
With t-SNE the pick keeps its ring and its 1σ/2σ ellipses: the posterior covariance is carried into the
t-SNE plane by the local linear map fitted on the pick's nearest test means (over the directions they
span; a map that stretches absurdly or sends the ellipse past the plane is refused, and the pick is shown
without ellipses, saying why); other latent points (the sliders, paths) are placed at the
distance-weighted t-SNE position of their nearest test means, so they stay inside the plane.

UMAP (umap-learn, seeded, on exact nearest neighbours: model.embedding) is the third choice, computed,
cached and shown the same way, per model and per n_neighbors/min_dist. While either runs, the page shows
an estimate of its run time (model.embedding.estimate_seconds at the speed a short probe measured first
thing in the child, at its priority) and what is left at the rate it goes.

Hook: `ex = projection_panel(ex)` in the page, before the explore panel (returns the explorer to use).
Session keys (owned here): proj_method, umap_neighbors, umap_min_dist, _proj_task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from explorer import background, context, views
from model import analysis, embedding

K_PLACE = 10  # nearest test means used to place a latent point in the t-SNE plane
K_LOCAL = 30  # nearest test means for the local linear map of a pick's covariance
RCOND = 0.05  # latent directions spread less than this times the widest are left out of the local map
MAX_GAIN = 50.0  # a local map may stretch this many times more than the view does overall
MARGIN = 0.25  # an ellipse may reach this share of the view's size past its points
TSNE_COMPUTE = analysis.tsne_in_child  # (z, seed, progress) -> (N, 2); tests put a stand-in here
UMAP_COMPUTE = embedding.umap_in_child  # (z, n_neighbors, min_dist, seed, progress) -> (N, 2); likewise
UMAP_COMPILE_NOTE = "15–20 s more here"  # umap-learn's numba compile, measured (docs/performance.md)


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
        return carry_cov(jac, z_log_var, center, lat.xy, global_gain(lat.z_mean, lat.xy), self.name)

    @property
    def map_extent(self):
        return views.map_extent(self.latents.xy)


@dataclass(frozen=True, eq=False)
class UmapView(TsneView):
    """The test set shown in a UMAP plane (latents.xy is the UMAP): placed and carried like t-SNE."""

    name = "UMAP"
    axis_titles = ("UMAP 1", "UMAP 2")


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


def carry_cov(
    jac, z_log_var, center, xy, gain: float | None = None, plane: str = "t-SNE"
) -> tuple[np.ndarray | None, str | None]:
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
        return None, f"its 2σ ellipse through the local linear map would reach past the whole {plane} plane"
    return cov, None


def with_tsne(ex: context.Explorer, xy) -> context.Explorer:
    """The explorer `ex` with its test set at the t-SNE positions `xy` (N, 2), in the t-SNE view."""
    return ex.with_view(xy, TsneView)


@dataclass(frozen=True)
class Method:
    """A projection computed in the background: its name, runner key, disk cache, parameters, view."""

    name: str  # "t-SNE" or "UMAP"
    key: tuple  # the analysis runner's key
    path: Path  # the disk cache
    view: type
    n_neighbors: int = embedding.UMAP_NEIGHBORS  # UMAP only
    min_dist: float = embedding.UMAP_MIN_DIST  # UMAP only

    def compute(self, z, progress) -> np.ndarray:
        if self.name == "t-SNE":
            return TSNE_COMPUTE(z, analysis.TSNE_SEED, progress)
        return UMAP_COMPUTE(z, self.n_neighbors, self.min_dist, embedding.UMAP_SEED, progress)

    def caption(self) -> str:
        what = (
            f"t-SNE view (scikit-learn, seed {analysis.TSNE_SEED}, perplexity {analysis.TSNE_PERPLEXITY:g})"
            if self.name == "t-SNE"
            else f"UMAP view (umap-learn, seed {embedding.UMAP_SEED}, n_neighbors {self.n_neighbors}, "
            f"min_dist {self.min_dist:g})"
        )
        return (
            f"{what}: nearby points are similar, but distances and cluster sizes in this plane are **not** "
            "latent distances. Neighbours, traversals and attribute vectors still work in the full latent "
            "space; the pick's ellipses are its posterior through the local linear map around it."
        )


def tsne_method(model_id: str) -> Method:
    return Method("t-SNE", ("tsne", model_id, analysis.TSNE_SEED), analysis.tsne_path(model_id), TsneView)


def umap_method(model_id: str, n_neighbors: int, min_dist: float) -> Method:
    key = ("umap", model_id, embedding.UMAP_SEED, int(n_neighbors), float(min_dist))
    path = embedding.umap_path(model_id, int(n_neighbors), float(min_dist))
    return Method("UMAP", key, path, UmapView, int(n_neighbors), float(min_dist))


def _task(m: Method, z_means):
    """The background task: the projection (in a child process), timed, saved to the disk cache."""
    z = np.array(z_means, np.float32)  # a private copy for the runner's thread

    def run(progress):
        info = {}  # the child's estimate (model.embedding.timing_info), kept for the result

        def report(fraction, **extra):
            info.update(extra)
            progress(fraction, **extra)

        t0 = time.monotonic()
        xy = m.compute(z, report)
        done = {"xy": xy, "cache_error": None, "seconds": time.monotonic() - t0, **info}
        try:
            analysis.save_npy(m.path, xy)
        except OSError as e:  # the work is kept: in this server's memory, until it restarts
            done["cache_error"] = analysis.write_problem(e, m.path)
        return done

    return run


def _cancel(key: tuple) -> None:
    background.RUNNER.cancel(key, background.session_id())
    st.session_state["proj_method"] = "PCA"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def timing_text(status: dict, name: str) -> str:
    """The estimate of a running projection, and what is left at the rate it goes (pure)."""
    info, p, elapsed = status.get("info") or {}, status["progress"], status["elapsed"]
    parts = []
    if "estimate" in info:
        parts.append(f"estimated {_duration(info['estimate'])} in all at this server's speed now")
    if p >= 0.05 and elapsed > 2:
        parts.append(f"about {_duration(elapsed * (1 - p) / p)} left at the rate it goes")
    if name == "UMAP" and info.get("compiled") is False:
        parts.append(f"this first UMAP compiles umap-learn's code (~{UMAP_COMPILE_NOTE})")
    return ("; ".join(parts) + ". ") if parts else ""


@st.fragment(run_every=1.0)
def _progress(key: tuple, n: int, name: str) -> None:
    """Ticks every second while the projection waits or runs (saying this page still wants it); reruns the
    page once it is done."""
    runner = background.RUNNER
    runner.want(key, background.session_id())
    status = runner.status(key)
    if status["state"] not in ("queued", "running"):
        ctx = get_script_run_ctx()
        if ctx and ctx.fragment_ids_this_run:  # a tick: rerun the whole page to show it (or the failure)
            st.rerun()
        # it ended within this page's own run (a fast task): the next tick shows it, this run's notes stay
        st.caption(f"The {name} is ready; the page shows it in a moment.")
        return
    if status["state"] == "queued" and status["ahead"]:
        st.progress(
            0.0,
            text=f"The {name} of {n:,} latent means waits for the server's analysis runner (one at a time): "
            f"{len(status['ahead'])} task(s) first ({', '.join(status['ahead'])[:200]}). "
            "Keep exploring: the PCA view stays until it is ready.",
        )
    else:
        unit = "of the iterations" if name == "t-SNE" else "of the work (umap-learn's epochs)"
        st.progress(
            status["progress"],
            text=f"Computing the {name} of {n:,} latent means in the background… "
            f"{100 * status['progress']:.0f}% {unit}, {status['elapsed']:.0f} s elapsed; "
            + timing_text(status, name)
            + "Keep exploring: the PCA view stays until it is ready, then the page switches by itself.",
        )
    st.button(
        f"Cancel the {name}",
        key="proj_cancel",
        on_click=_cancel,
        args=(key,),
        help="Stops it unless another open page waits for it too; back to PCA.",
    )


def _umap_inputs(ex) -> Method:
    """n_neighbors and min_dist (umap-learn's defaults shown), and what a first run costs."""
    c1, c2, c3 = st.columns([1, 1, 3])
    lo, hi = embedding.UMAP_NEIGHBORS_RANGE
    nn = c1.number_input(
        f"n_neighbors (default {embedding.UMAP_NEIGHBORS})",
        lo,
        hi,
        embedding.UMAP_NEIGHBORS,
        step=1,
        key="umap_neighbors",
        help="More neighbours: more of the global structure, less local detail.",
    )
    md = c2.number_input(
        f"min_dist (default {embedding.UMAP_MIN_DIST:g})",
        0.0,
        1.0,
        embedding.UMAP_MIN_DIST,
        step=0.05,
        format="%.2f",
        key="umap_min_dist",
        help="How tightly UMAP packs similar points: 0 gives dense clumps, 1 an even spread.",
    )
    c3.caption(
        f"Seeded (seed {embedding.UMAP_SEED}, so it runs on one core), on exact nearest neighbours, "
        "computed once per model and setting. The first UMAP on a server also compiles umap-learn's "
        f"numba code (~{UMAP_COMPILE_NOTE}); numba caches it on disk for later runs."
    )
    return umap_method(ex.record.id, int(nn), round(float(md), 2))


def _computed_note(status: dict) -> str:
    """'Computed in N s (estimated M s)' for a projection this server just computed, else ''."""
    result = status.get("result") or {}
    if status.get("state") != "done" or "seconds" not in result:
        return ""
    est = f" (estimated {_duration(result['estimate'])})" if "estimate" in result else ""
    return f" Computed in {_duration(result['seconds'])} here{est}."


def projection_panel(ex):
    """The projection choice (latent sizes above 2 only). Returns the explorer the page should use."""
    if ex.latent_dim <= 2:
        return ex
    method = st.radio(
        "Scatter projection",
        ["PCA", "t-SNE", "UMAP"],
        key="proj_method",
        horizontal=True,
        help="PCA is linear: distances and the posterior ellipses are exact projections. "
        "t-SNE and UMAP keep neighbourhoods, not distances (seeded, computed once per model).",
    )
    if method == "PCA":
        return ex
    m = tsne_method(ex.record.id) if method == "t-SNE" else _umap_inputs(ex)
    n = len(ex.latents.z_mean)
    runner = background.RUNNER
    status = runner.status(m.key)
    xy = analysis.read_xy(m.path, n)
    if xy is None:
        result = status.get("result") or {}
        if status["state"] == "done" and result.get("cache_error") and len(result["xy"]) == n:
            xy = result["xy"]  # computed, but it could not be saved: kept in this server's memory
            st.warning(
                f"The {m.name} could not be saved ({result['cache_error']}); it is kept in this server's "
                "memory until the server restarts."
            )
        elif status["state"] == "failed":
            fix = "free memory and retry" if "MemoryError" in status["error"] else "retry"
            if "No module named" in status["error"]:
                fix = "install the requirements (pip install -r requirements.txt), restart the server, retry"
            st.error(f"The {m.name} failed: {status['error'].rstrip('.')}. Fix: {fix}, or use PCA.")
            st.button(f"Retry the {m.name}", on_click=runner.forget, args=(m.key,), key="proj_retry")
            return ex
    if xy is None:
        if status["state"] == "done":
            runner.forget(m.key)  # done, but its cache is gone (the model was deleted and retrained...)
        problem = analysis.cache_problem(m.path)
        if problem:
            st.warning(
                f"The {m.name} cannot be saved: {problem}. It is computed anyway and kept in this "
                "server's memory until the server restarts."
            )
        previous = st.session_state.get("_proj_task")
        if previous is not None and previous != m.key:  # new UMAP settings: the old run is not wanted here
            runner.cancel(previous, background.session_id())
        st.session_state["_proj_task"] = m.key
        runner.submit(
            m.key, _task(m, ex.latents.z_mean), background.session_id(), f"{m.name} of {ex.record.label}"
        )
        _progress(m.key, n, m.name)
        return ex
    st.caption(m.caption() + _computed_note(status))
    return ex.with_view(xy, m.view)
