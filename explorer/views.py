"""Pure figure and image builders: numpy arrays in, a Plotly figure or PNG bytes out.

Nothing here touches Streamlit, the model store or Keras, so every function is cheap to test alone.
"""

from __future__ import annotations

import numpy as np
from plotly.colors import qualitative

from model.images import png_bytes, to_uint8

PALETTE = qualitative.Plotly  # 10 distinct colours, one per class
MARKER_COLOR = "#111111"


# ----------------------------------------------------------------------------- images


def to_png(img, scale: int = 1) -> bytes:
    """A grayscale image (float in [0, 1], NaN shown black, or uint8), upscaled by `scale`, as PNG bytes
    (model.images: the one float -> uint8 and PNG encoder)."""
    return png_bytes(to_uint8(img), scale)


# ----------------------------------------------------------------------------- geometry


def sigma_ellipse(center, cov, n_std: float = 1.0, n: int = 64) -> np.ndarray:
    """Points on the n_std-sigma contour of a 2-D Gaussian: (n + 1, 2), closed.

    Args:
        center: (2,) mean.
        cov: (2, 2) covariance, or (2,) standard deviations of an axis-aligned Gaussian.
    """
    center = np.asarray(center, np.float64).reshape(2)
    cov = np.asarray(cov, np.float64)
    if cov.shape == (2,):
        cov = np.diag(cov**2)
    if cov.shape != (2, 2):
        raise ValueError(f"Expected cov of shape (2, 2) or (2,). Received: cov.shape={cov.shape}")
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    radii = n_std * np.sqrt(np.clip(vals, 0.0, None))
    t = np.linspace(0.0, 2 * np.pi, n + 1)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)  # (n + 1, 2)
    return center + (circle * radii) @ vecs.T


# ----------------------------------------------------------------------------- live map (PNG)


def _rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return tuple(int(color[i : i + 2], 16) for i in (0, 2, 4))


def map_extent(xy, bounds=None) -> tuple[float, float, float, float]:
    """A square (x0, x1, y0, y1) window for `latent_map`: +-max(bounds) (the sliders' plane) when given,
    else centred on 0 and covering 99.5% of |xy|."""
    if bounds is not None:
        r = float(np.max(bounds))
    else:
        r = float(np.quantile(np.abs(np.asarray(xy)), 0.995)) * 1.1 if len(xy) else 1.0
    r = r if r > 0 else 1.0
    return -r, r, -r, r


def _to_px(points, extent, size: int) -> np.ndarray:
    x0, x1, y0, y1 = extent
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return np.stack([(p[:, 0] - x0) / (x1 - x0) * (size - 1), (y1 - p[:, 1]) / (y1 - y0) * (size - 1)], 1)


def latent_map(xy, labels, extent, size: int = 280, seed: int = 0) -> np.ndarray:
    """The test set drawn as a small raster, coloured like `latent_scatter`: (size, size, 3) uint8.

    The static background of the live map: drawn once per model, then `map_png` adds the markers.
    """
    img = np.full((size, size, 3), 255, np.uint8)
    img[[0, -1], :] = img[:, [0, -1]] = 200  # a thin frame
    zero = _to_px([[0.0, 0.0]], extent, size)[0].round().astype(int)
    if 0 <= zero[0] < size:
        img[:, zero[0]] = 225  # the axes through z = 0
    if 0 <= zero[1] < size:
        img[zero[1], :] = 225
    labels = np.asarray(labels).astype(int)
    order = np.random.default_rng(seed).permutation(len(labels))  # no class always drawn on top
    px = _to_px(np.asarray(xy)[order], extent, size).round().astype(int)
    colors = np.array([_rgb(c) for c in PALETTE], np.uint8)[labels[order] % len(PALETTE)]  # (N, 3)
    for dx in (0, 1):  # 2x2-pixel dots
        for dy in (0, 1):
            x, y = px[:, 0] + dx, px[:, 1] + dy
            ok = (x >= 0) & (x < size) & (y >= 0) & (y < size)
            img[y[ok], x[ok]] = colors[ok]
    return img


def map_png(base: np.ndarray, extent, current=None, picked=None, ellipses=(), path=None) -> bytes:
    """`base` (from `latent_map`) with the overlays of `latent_scatter`, as PNG bytes: the interpolation
    path (grey), the pick's sigma contours and ring (black) and the sliders' position (red cross).
    A position outside the window is drawn at its edge."""
    from PIL import Image, ImageDraw

    size = base.shape[0]
    im = Image.fromarray(base)
    draw = ImageDraw.Draw(im)
    to_px = lambda pts: [tuple(p) for p in np.clip(_to_px(pts, extent, size), 0, size - 1)]  # noqa: E731
    if path is not None and len(path) > 1:
        draw.line(to_px(path), fill=(85, 85, 85), width=2)
    for k, e in enumerate(ellipses):
        draw.line(to_px(e), fill=(17, 17, 17), width=2 if k == 0 else 1)
    if picked is not None:
        ((x, y),) = to_px([picked])
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), outline=(17, 17, 17), width=2)
    if current is not None:
        ((x, y),) = to_px([current])
        for width, fill in ((6, (255, 255, 255)), (3, (214, 39, 40))):
            draw.line((x - 8, y - 8, x + 8, y + 8), fill=fill, width=width)
            draw.line((x - 8, y + 8, x + 8, y - 8), fill=fill, width=width)
    return png_bytes(np.asarray(im))


# ----------------------------------------------------------------------------- grids


def image_grid(images, pad: int = 1, pad_value: float = 0.35) -> np.ndarray:
    """A (R, C, H, W) array of grey images as one (R*(H+pad)-pad, C*(W+pad)-pad) float image in [0, 1],
    cells separated by `pad` grey pixels (e.g. a traversal: one row per latent dimension)."""
    a = np.asarray(images)
    if a.ndim != 4 or 0 in a.shape:
        raise ValueError(f"Expected images of shape (R, C, H, W). Received: shape={a.shape}")
    a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)
    r, c, h, w = a.shape
    out = np.full((r * (h + pad) - pad, c * (w + pad) - pad), pad_value, np.float32)
    for i in range(r):
        for j in range(c):
            out[i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = a[i, j]
    return out


def mosaic(images, cols: int = 20, pad: int = 1) -> np.ndarray:
    """(N, H, W) grey images laid out row by row, `cols` per row (the last row padded with black)."""
    a = np.asarray(images)
    if a.ndim != 3 or len(a) == 0:
        raise ValueError(f"Expected images of shape (N, H, W), N >= 1. Received: shape={a.shape}")
    a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)
    cols = max(1, min(int(cols), len(a)))
    rows = -(-len(a) // cols)
    full = np.zeros((rows * cols, *a.shape[1:]), np.float32)
    full[: len(a)] = a
    return image_grid(full.reshape(rows, cols, *a.shape[1:]), pad=pad)
