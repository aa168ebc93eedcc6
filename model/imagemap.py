"""An image map: a 2-D view cut into an n×n grid, the test image nearest to each cell's centre (numpy only).

    cell_centres(extent, n)                   the grid's cell centres, top row first
    nearest_per_cell(xy, extent, n)           per cell, the row of the point nearest to its centre (-1 for
                                              a cell that holds no point)
    compose(images, rows, ...)                the cells' images as one (n·28, n·28) uint8 picture
    lift(centres, mean, components)           cell centres back to latent vectors through a linear view

Cell (i, j) is row i from the top (the highest y) and column j from the left, as the picture shows it.
"""

from __future__ import annotations

import numpy as np

from model.images import to_uint8

EMPTY = 40  # grey level of a cell without points (MNIST digits are white on black)


def _check(extent, n) -> tuple[float, float, float, float]:
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= 200:
        raise ValueError(f"Expected an integer n in [1, 200]. Received: n={n!r}")
    x0, x1, y0, y1 = (float(v) for v in extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"Expected an extent (x0, x1, y0, y1), x1 > x0 and y1 > y0. Received: {extent!r}")
    return x0, x1, y0, y1


def cell_centres(extent, n: int) -> np.ndarray:
    """(n, n, 2) centres of the grid's cells over extent (x0, x1, y0, y1): [i, j] is row i from the top."""
    x0, x1, y0, y1 = _check(extent, n)
    cx = x0 + (x1 - x0) * (np.arange(n) + 0.5) / n
    cy = y1 - (y1 - y0) * (np.arange(n) + 0.5) / n  # top row first
    X, Y = np.meshgrid(cx, cy)
    return np.stack([X, Y], -1)


def cell_of(xy, extent, n: int) -> np.ndarray:
    """(N, 2) (row, col) cell of each point, -1 for points outside the extent."""
    x0, x1, y0, y1 = _check(extent, n)
    p = np.asarray(xy, np.float64).reshape(-1, 2)
    col = np.floor((p[:, 0] - x0) / (x1 - x0) * n).astype(np.int64)
    row = np.floor((y1 - p[:, 1]) / (y1 - y0) * n).astype(np.int64)
    col[p[:, 0] == x1] = n - 1  # the right and bottom edges belong to the last cells
    row[p[:, 1] == y0] = n - 1
    out = (col < 0) | (col >= n) | (row < 0) | (row >= n) | ~np.isfinite(p).all(1)
    rc = np.stack([row, col], 1)
    rc[out] = -1
    return rc


def nearest_per_cell(xy, extent, n: int, chunk: int = 256) -> np.ndarray:
    """(n, n) int64: for each cell that holds at least one point, the row of `xy` (N, 2) nearest to the
    cell's centre (Euclidean in the view; ties to the lower row); -1 for a cell without points."""
    p = np.asarray(xy, np.float64).reshape(-1, 2)
    centres = cell_centres(extent, n).reshape(-1, 2)  # (n², 2)
    rc = cell_of(p, extent, n)
    occupied = np.zeros((n, n), bool)
    inside = rc[:, 0] >= 0
    occupied[rc[inside, 0], rc[inside, 1]] = True
    out = np.full(n * n, -1, np.int64)
    todo = np.flatnonzero(occupied.ravel())
    for s in range(0, len(todo), chunk):
        cells = todo[s : s + chunk]
        d2 = np.square(centres[cells, None, :] - p[None]).sum(-1)  # (c, N)
        out[cells] = np.argmin(d2, axis=1)  # the first (lowest) row among equals
    return out.reshape(n, n)


def compose(images, rows, empty: int = EMPTY) -> np.ndarray:
    """The images of `rows` (n, n) (-1: empty) laid out as one (n·H, n·W) uint8 picture."""
    imgs = to_uint8(images)
    rows = np.asarray(rows, np.int64)
    n_r, n_c = rows.shape
    h, w = imgs.shape[1:3]
    tiles = np.full((n_r, n_c, h, w), empty, np.uint8)
    has = rows >= 0
    tiles[has] = imgs[rows[has]]
    return tiles.transpose(0, 2, 1, 3).reshape(n_r * h, n_c * w)


def lift(points, mean, components) -> np.ndarray:
    """Positions in a linear view xy = (z - mean) @ components.T (orthonormal rows) back to latent
    vectors: mean + xy @ components, the point of the plane through `mean` (K, d)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return (np.asarray(mean, np.float64) + p @ np.asarray(components, np.float64)).astype(np.float32)
