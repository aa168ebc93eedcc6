"""Pure figure and image builders: numpy arrays in, a Plotly figure or PNG bytes out.

Nothing here touches Streamlit, the model store or Keras, so every function is cheap to test alone.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
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


# ----------------------------------------------------------------------------- scatter


def class_name(class_names, label) -> str:
    """The class name of a label, or the label itself when the dataset names fewer classes."""
    label = int(label)
    return class_names[label] if 0 <= label < len(class_names) else str(label)


def axis_ranges(xy, q: float = 0.002, margin: float = 0.06) -> tuple[list[float], list[float]]:
    """Fixed axis ranges for a scatter of `xy` (N, 2): the points' robust range (the q and 1 - q
    quantiles, so a few far outliers do not squash the cloud) grown by `margin` of its span per side.

    Computed from the data alone, so overlays (rings, ellipses, markers) never move the axes: an ellipse
    larger than the plot is clipped, not followed. Returns ([x0, x1], [y0, y1]).
    """
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) == 0:
        return [-1.0, 1.0], [-1.0, 1.0]
    lo, hi = np.quantile(xy, q, axis=0), np.quantile(xy, 1.0 - q, axis=0)
    span = hi - lo
    pad = np.where(span > 0, margin * span, 1.0)  # a single point (or a line) still gets a window
    lo, hi = lo - pad, hi + pad
    return [float(lo[0]), float(hi[0])], [float(lo[1]), float(hi[1])]


def latent_scatter(
    xy,
    labels,
    class_names,
    *,
    picked=None,
    ellipses=(),
    axis_titles=("z[0]", "z[1]"),
    height: int = 560,
) -> go.Figure:
    """The test set in the latent plane: one WebGL trace per class, plus overlays.

    Args:
        xy: (N, 2) positions (latent means, or their 2-D projection).
        labels: (N,) integer class of each point.
        class_names: name of each class, indexed by label.
        picked: optional (2,) position of the picked point, drawn as a ring.
        ellipses: (M, 2) closed contours (e.g. `sigma_ellipse`) drawn around the pick.
        axis_titles: the two axis titles.

    The axes are fixed from `xy` alone (`axis_ranges`): a pick, its ellipses or any overlay added later
    never rescale the plot (they are clipped at its edge), and overlays stay out of the legend, so the
    legend is the classes and nothing else. Every class trace carries its rows' index in `customdata`
    (shape (n, 1)), so a click gives back the test-set row whatever the trace; overlays have no
    customdata and cannot be selected.
    """
    xy = np.asarray(xy, np.float32)
    labels = np.asarray(labels)
    if xy.ndim != 2 or xy.shape[1] != 2 or labels.shape != (len(xy),):
        raise ValueError(
            f"Expected xy (N, 2) and labels (N,). Received: xy.shape={xy.shape}, labels.shape={labels.shape}"
        )
    fig = go.Figure()
    rows = np.arange(len(xy), dtype=np.int32)
    for c in np.unique(labels):
        mask = labels == c
        name = class_name(class_names, c)
        fig.add_trace(
            go.Scattergl(
                x=xy[mask, 0],
                y=xy[mask, 1],
                mode="markers",
                name=name,
                marker=dict(size=4, opacity=0.65, color=PALETTE[int(c) % len(PALETTE)]),
                selected=dict(marker=dict(opacity=0.65)),
                unselected=dict(marker=dict(opacity=0.65)),
                customdata=rows[mask, None],
                hovertemplate=f"test #%{{customdata[0]}}<br>label {name}<extra></extra>",
            )
        )
    for k, e in enumerate(ellipses):
        e = np.asarray(e)
        fig.add_trace(
            go.Scatter(
                x=e[:, 0],
                y=e[:, 1],
                mode="lines",
                name=f"{k + 1}σ posterior",
                showlegend=False,
                line=dict(color=MARKER_COLOR, width=1.5, dash="solid" if k == 0 else "dot"),
                hoverinfo="skip",
            )
        )
    if picked is not None:
        fig.add_trace(
            go.Scatter(
                x=[float(picked[0])],
                y=[float(picked[1])],
                mode="markers",
                name="pick",
                showlegend=False,
                marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(color=MARKER_COLOR, width=2.5)),
                hoverinfo="skip",
            )
        )
    x_range, y_range = axis_ranges(xy)
    fig.update_layout(
        height=height,
        # the toolbar (modebar) sits in the top margin, over no axis title; the legend is one row under the
        # plot, so a narrow screen keeps the plot's full width
        margin=dict(l=10, r=10, t=36, b=10),
        hovermode="closest",
        legend=dict(itemsizing="constant", orientation="h", x=0, xanchor="left", y=-0.15, yanchor="top"),
        xaxis=dict(title_text=axis_titles[0], zeroline=False, range=x_range, autorange=False),
        yaxis=dict(
            title_text=axis_titles[1],
            zeroline=False,
            range=y_range,
            autorange=False,
            scaleanchor="x",
            scaleratio=1,
        ),
        # keep the user's zoom while only the overlays change; new data (model, projection) resets it
        uirevision="latent-scatter " + " ".join(f"{v:.6g}" for v in (*x_range, *y_range)),
    )
    return fig


MAX_EVENT_POINTS = 100_000  # points read from one selection event (a test set has 10,000)


def selection_points(event) -> list:
    """The `selection.points` list of a Plotly selection event as the browser sent it ([] if the event,
    its selection or its points are missing or of another type)."""
    sel = event.get("selection") if isinstance(event, dict) else None
    points = sel.get("points") if isinstance(sel, dict) else None
    return points[:MAX_EVENT_POINTS] if isinstance(points, list) else []


def _row(cd) -> int | None:
    """A customdata value as a test-set row: a finite, whole, non-negative number, else None."""
    if isinstance(cd, dict):
        cd = cd.get("0", next(iter(cd.values()), None))
    if isinstance(cd, (list, tuple)):
        cd = cd[0] if cd else None
    if isinstance(cd, bool) or not isinstance(cd, (int, float)):
        return None
    if isinstance(cd, float) and not (math.isfinite(cd) and cd.is_integer()):
        return None
    return int(cd) if 0 <= cd < 2**31 else None


def picked_row(points) -> int | None:
    """The test-set row of the last selected point in a Plotly selection, or None.

    Points without customdata (overlays) are ignored, and so is any value the browser sent that is not
    a row (NaN, inf, fractions, negative or huge numbers, strings, a `points` that is not a list).
    customdata may arrive as `[row]`, `row`, or `{"0": row}`: numpy customdata reaches the browser as a
    typed array, which JSON writes as an object.
    """
    if not isinstance(points, (list, tuple)):
        return None
    for p in reversed(points[-MAX_EVENT_POINTS:]):
        row = _row(p.get("customdata")) if isinstance(p, dict) else None
        if row is not None:
            return row
    return None


# ----------------------------------------------------------------------------- grids and selections


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


def selected_rows(event) -> list[int] | None:
    """The test-set rows of a box or lasso selection in a Plotly selection event, or None for a plain
    click (no box/lasso drawn). Points without customdata (overlays) are ignored; order is kept."""
    sel = event.get("selection") if isinstance(event, dict) else None
    if not isinstance(sel, dict) or not (sel.get("box") or sel.get("lasso")):
        return None
    out, seen = [], set()
    for p in selection_points(event):
        row = picked_row([p])
        if row is not None and row not in seen:
            seen.add(row)
            out.append(row)
    return out


def highlight_rows(fig: go.Figure, xy, rows, name: str = "selection", color: str = "#ff7f0e") -> go.Figure:
    """Add a ring around each of `rows` (positions `xy[rows]`) as one WebGL trace without customdata."""
    rows = np.asarray(rows, np.int64).reshape(-1)
    if len(rows):
        p = np.asarray(xy, np.float32)[rows]
        fig.add_trace(
            go.Scattergl(
                x=p[:, 0],
                y=p[:, 1],
                mode="markers",
                name=name,
                showlegend=False,
                hoverinfo="skip",
                marker=dict(size=7, color="rgba(0,0,0,0)", line=dict(color=color, width=1)),
            )
        )
    return fig
