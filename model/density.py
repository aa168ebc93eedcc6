"""The aggregate posterior against the prior in a 2-D plane: density grids and "holes" (numpy only).

    plane_grid(center, radius, n)              an n×n grid of cell centres over a square window
    mixture_density(means, covs, gx, gy)       the density of a mixture of 2-D Gaussians on that grid
    kde_density(points, gx, gy, bandwidth)     a Gaussian KDE of 2-D points on that grid
    prior_density(center, gx, gy)              N(center, I) on that grid
    holes(q, p, ...)                           cells where the prior has mass and the data little
    sample_holes(holes, p, gx, gy, k, seed)    k points drawn from the hole cells, by prior mass

The aggregate posterior q(z) = 1/N Σ_i N(z; μ_i, Σ_i) of a VAE should match the prior N(0, I) if the
model's KL term did its job; where the prior has mass and q has almost none, samples from the prior
decode to whatever the decoder makes of a region it never saw in training.

In a linear plane xy = (z - m) Wᵀ with orthonormal rows W (the latent plane, or the PCA plane), both
are exact: the marginal of the mixture is the mixture of the projected Gaussians N(μ_i Wᵀ, W Σ_i Wᵀ),
and the prior's is N(-m Wᵀ, I).
"""

from __future__ import annotations

import numpy as np

HOLE_RATIO = 0.1  # a hole: the data's density below this share of the prior's ...
HOLE_SIGMA = 2.0  # ... within this many σ of the prior's centre (where 86% of its mass is)


def plane_grid(center, radius: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of an n×n grid over the square of half-width `radius` around `center` (2,):
    (gx (n,), gy (n,)) in increasing order; cell (i, j) is at (gx[j], gy[i])."""
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"Expected an integer n >= 2. Received: n={n!r}")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"Expected a finite radius > 0. Received: radius={radius!r}")
    c = np.asarray(center, np.float64).reshape(2)
    step = 2.0 * radius / n
    offsets = -radius + step * (np.arange(n) + 0.5)
    return c[0] + offsets, c[1] + offsets


def mixture_density(means, covs, gx, gy, block: int = 1 << 21) -> np.ndarray:
    """1/N Σ_i N(x; means[i], covs[i]) at every grid cell: (len(gy), len(gx)) float64.

    means (N, 2), covs (N, 2, 2) positive definite (a tiny ridge is added for safety); computed in
    blocks of about `block` (cell, component) pairs."""
    m = np.asarray(means, np.float64)
    c = np.asarray(covs, np.float64) + 1e-9 * np.eye(2)
    if m.ndim != 2 or m.shape[1] != 2 or c.shape != (len(m), 2, 2) or len(m) == 0:
        raise ValueError(f"Expected means (N, 2) and covs (N, 2, 2). Received: {m.shape} and {c.shape}")
    X, Y = np.meshgrid(np.asarray(gx, np.float64), np.asarray(gy, np.float64))
    px, py = X.ravel()[:, None], Y.ravel()[:, None]  # (G, 1)
    a, b, d = c[:, 0, 0], (c[:, 0, 1] + c[:, 1, 0]) / 2, c[:, 1, 1]
    det = a * d - b * b  # (N,)
    ia, ib, id_ = d / det, -b / det, a / det  # the inverse's entries
    norm = 1.0 / (2 * np.pi * np.sqrt(det))
    out = np.zeros(len(px))
    step = max(1, block // len(px))
    for s in range(0, len(m), step):
        k = slice(s, s + step)
        dx, dy = px - m[None, k, 0], py - m[None, k, 1]  # (G, n)
        maha = ia[k] * dx * dx + 2 * ib[k] * dx * dy + id_[k] * dy * dy
        out += (np.exp(-0.5 * maha) * norm[k]).sum(1)
    return (out / len(m)).reshape(X.shape)


def scott_bandwidth(points) -> float:
    """Scott's rule for a 2-D Gaussian KDE: n^(-1/6) times the points' mean standard deviation."""
    p = np.asarray(points, np.float64)
    return float(np.mean(p.std(0)) * len(p) ** (-1 / 6)) or 1.0


def kde_density(points, gx, gy, bandwidth: float | None = None) -> np.ndarray:
    """A Gaussian KDE of 2-D points (N, 2) on the grid: (len(gy), len(gx)), integrating to 1."""
    p = np.asarray(points, np.float64)
    h = scott_bandwidth(p) if bandwidth is None else float(bandwidth)
    cov = np.broadcast_to(np.eye(2) * h * h, (len(p), 2, 2))
    return mixture_density(p, cov, gx, gy)


def prior_density(center, gx, gy) -> np.ndarray:
    """The prior N(center, I) in the plane at every grid cell: (len(gy), len(gx))."""
    c = np.asarray(center, np.float64).reshape(2)
    X, Y = np.meshgrid(np.asarray(gx) - c[0], np.asarray(gy) - c[1])
    return np.exp(-0.5 * (X * X + Y * Y)) / (2 * np.pi)


def holes(q, p, gx, gy, center, ratio: float = HOLE_RATIO, sigma: float = HOLE_SIGMA) -> np.ndarray:
    """Cells where the prior has mass and the data little: within `sigma` of the prior's centre, with the
    data's density q below `ratio` times the prior's p. A boolean (len(gy), len(gx)) mask."""
    c = np.asarray(center, np.float64).reshape(2)
    X, Y = np.meshgrid(np.asarray(gx) - c[0], np.asarray(gy) - c[1])
    return (X * X + Y * Y <= sigma * sigma) & (np.asarray(q) < ratio * np.asarray(p))


def sample_holes(mask, p, gx, gy, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k points in hole cells: cells drawn with probability ∝ their prior mass (with replacement),
    a uniform point inside each. Returns (points (k', 2), cells (k', 2) as (row, col)); k' = 0 without
    holes."""
    mask = np.asarray(mask, bool)
    rows, cols = np.nonzero(mask)
    if len(rows) == 0 or k < 1:
        return np.zeros((0, 2)), np.zeros((0, 2), np.int64)
    rng = np.random.default_rng(seed)
    w = np.asarray(p, np.float64)[rows, cols]
    pick = rng.choice(len(rows), size=int(k), p=w / w.sum())
    sx, sy = (gx[1] - gx[0]), (gy[1] - gy[0])
    x = gx[cols[pick]] + rng.uniform(-0.5, 0.5, len(pick)) * sx
    y = gy[rows[pick]] + rng.uniform(-0.5, 0.5, len(pick)) * sy
    return np.stack([x, y], 1), np.stack([rows[pick], cols[pick]], 1)


def hole_share(mask, p) -> float:
    """The share of the prior's mass (on the grid) that lies in the holes."""
    p = np.asarray(p, np.float64)
    return float(p[np.asarray(mask, bool)].sum() / p.sum()) if p.sum() > 0 else 0.0
