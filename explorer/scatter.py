"""The test-set scatter: the Plotly figure (points coloured by label or by a measure, dimmed labels, the
pick's ring and ellipses) and the reading of its selection events. Pure: numpy in, a figure or rows out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from explorer.views import MARKER_COLOR, PALETTE
from model.env import env_int


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


DIM_COLOR = "#c8c8c8"  # labels filtered out: dimmed, not hidden (still hoverable and clickable)
DIM_OPACITY = 0.25


# Above POINT_LIMIT points the scatter is an overview: every point in a density image under the axes, and
# OVERVIEW_POINTS of them (a fixed sample, plus the pick) as clickable WebGL points; a box or lasso then
# selects among all points. Measured in headless Chromium here (bench/scatter_scale.py, docs/performance.md):
# a 70,000-point figure is ~1.9 MB per rerun and a box over 60,000 of them takes seconds to tens of seconds.
POINT_LIMIT_ENV = "LATENT_EXPLORER_SCATTER_POINTS"  # raise it on a machine with a GPU
POINT_LIMIT = 100_000
OVERVIEW_POINTS = 30_000
MAX_RINGS = 5_000  # a selection shows at most this many rings (a fixed sample of it)


def point_limit() -> int:
    """How many points the scatter draws before it becomes an overview (POINT_LIMIT, or the switch)."""
    return env_int(POINT_LIMIT_ENV, POINT_LIMIT, lowest=1_000)


def overview_keep(n: int, always=(), limit: int = OVERVIEW_POINTS, seed: int = 0) -> np.ndarray:
    """Which of n points an overview draws as points: a fixed random `limit` of them, plus `always`."""
    keep = np.zeros(n, bool)
    keep[np.random.default_rng(seed).choice(n, size=min(limit, n), replace=False)] = True
    always = [int(r) for r in always if r is not None and 0 <= int(r) < n]
    keep[always] = True
    return keep


@dataclass(frozen=True)
class Colouring:
    """Colour the scatter by a per-point measure instead of the label: values (N,), the colour bar's
    title, and whether high values are the bad end (the colour scale is then reversed: bad = dark)."""

    values: np.ndarray
    title: str
    worse_high: bool = True


def _points(xy, mask, **kw):
    """One WebGL trace (Scattergl for (N, 2) positions, Scatter3d for (N, 3)) of the rows `mask` picks (a
    boolean mask or row indices, in drawing order)."""
    if xy.shape[1] == 3:
        return go.Scatter3d(x=xy[mask, 0], y=xy[mask, 1], z=xy[mask, 2], mode="markers", **kw)
    opacity = dict(marker=dict(opacity=kw["marker"].get("opacity", 0.65)))
    return go.Scattergl(
        x=xy[mask, 0], y=xy[mask, 1], mode="markers", selected=opacity, unselected=opacity, **kw
    )


TRAIN_STYLE = dict(size_delta=-1, opacity=0.35)  # training images (shown with the test set): smaller, fainter


def _parts(idx: np.ndarray, n_test: int | None):
    """Split rows into (rows, split, first row of the split): the test rows, then the training rows."""
    if n_test is None:
        if len(idx):
            yield idx, "test", 0
        return
    for part, split, offset in ((idx[idx < n_test], "test", 0), (idx[idx >= n_test], "train", n_test)):
        if len(part):
            yield part, split, offset


def _customdata(part, offset, *extra) -> np.ndarray:
    """customdata rows [row, row within its split, *extra]: customdata[0] is always the page's row."""
    cols = [part.astype(object), (part - offset).astype(object), *extra]
    return np.stack(cols, axis=1) if len(cols) > 1 else part[:, None]


def _class_traces(xy, labels, rows, class_names, shown, size=4, n_test=None, keep=None) -> list:
    """One trace per class (and split), in its palette colour; classes not in `shown` greyed out."""
    out = []
    for c in np.unique(labels):
        name = class_name(class_names, c)
        on = shown is None or int(c) in shown
        mask = labels == c if keep is None else (labels == c) & keep
        for part, split, offset in _parts(rows[mask], n_test):
            train = split == "train"
            opacity = (TRAIN_STYLE["opacity"] if train else 0.65) if on else DIM_OPACITY
            out.append(
                _points(
                    xy,
                    part,
                    name=name if on else f"{name} (filtered out)",
                    legendgroup=name,
                    showlegend=not train,
                    marker=dict(
                        size=size + (TRAIN_STYLE["size_delta"] if train else 0),
                        opacity=opacity,
                        color=PALETTE[int(c) % len(PALETTE)] if on else DIM_COLOR,
                    ),
                    customdata=part[:, None] if n_test is None else _customdata(part, offset),
                    hovertemplate=f"{split} #%{{customdata[{0 if n_test is None else 1}]}}<br>label {name}"
                    "<extra></extra>",
                )
            )
    return out


def _measure_traces(
    xy, labels, rows, class_names, shown, colour: Colouring, size=4, n_test=None, keep=None
) -> list:
    """The points of the shown classes coloured by the measure with a colour bar; the others grey."""
    values = np.asarray(colour.values, np.float32).reshape(-1)
    if values.shape != (len(xy),):
        raise ValueError(f"Expected {len(xy)} colour values. Received: shape={values.shape}")
    on = np.ones(len(xy), bool) if shown is None else np.isin(labels, sorted(shown))
    names = np.array([class_name(class_names, c) for c in range(int(labels.max(initial=0)) + 1)])
    lit_values = values[on & np.isfinite(values)]
    scale = dict(cmin=float(lit_values.min()), cmax=float(lit_values.max())) if len(lit_values) else {}
    out, bar = [], True
    for mask, lit in ((~on, False), (on, True)):
        # the worst end drawn last, on top: a few bad points are not buried under many good ones
        idx = np.flatnonzero(mask if keep is None else mask & keep)
        idx = idx[np.argsort(values[idx] if colour.worse_high else -values[idx], kind="stable")]
        for part, split, offset in _parts(idx, n_test):
            train = split == "train"
            marker = dict(size=size + (TRAIN_STYLE["size_delta"] if train else 0), opacity=0.8)
            if lit:
                marker.update(color=values[part], colorscale="Viridis", reversescale=colour.worse_high)
                marker.update(scale)
                if bar:  # one colour bar for every lit trace (they share cmin/cmax)
                    marker["colorbar"] = dict(title=dict(text=colour.title, side="right"), thickness=12)
                    bar = False
            else:
                marker.update(color=DIM_COLOR, opacity=DIM_OPACITY)
            where, extra = (0 if n_test is None else 1), names[labels[part]]
            value = f"<br>{colour.title} %{{marker.color:.4g}}" if lit else ""
            out.append(
                _points(
                    xy,
                    part,
                    name=colour.title if lit else "filtered out",
                    marker=marker,
                    customdata=np.stack([part.astype(object), extra], axis=1)
                    if n_test is None
                    else _customdata(part, offset, extra),
                    hovertemplate=f"{split} #%{{customdata[{where}]}}<br>label %{{customdata[{where + 1}]}}"
                    f"{value}<extra></extra>",
                    showlegend=False,
                )
            )
    return out


def _overlays(ellipses, picked) -> list[go.Scatter]:
    """The pick's ring and its posterior ellipses: no customdata (not selectable), not in the legend."""
    out = [
        go.Scatter(
            x=np.asarray(e)[:, 0],
            y=np.asarray(e)[:, 1],
            mode="lines",
            name=f"{k + 1}σ posterior",
            showlegend=False,
            line=dict(color=MARKER_COLOR, width=1.5, dash="solid" if k == 0 else "dot"),
            hoverinfo="skip",
        )
        for k, e in enumerate(ellipses)
    ]
    if picked is not None:
        out.append(
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
    return out


def latent_scatter(
    xy,
    labels,
    class_names,
    *,
    picked=None,
    ellipses=(),
    axis_titles=("z[0]", "z[1]"),
    height: int = 560,
    colour: Colouring | None = None,
    shown=None,
    n_test: int | None = None,
    keep=None,
    raster=None,
) -> go.Figure:
    """The test set in the latent plane: WebGL point traces, plus overlays.

    Args:
        xy: (N, 2) positions (latent means, or their 2-D projection).
        labels: (N,) integer class of each point.
        class_names: name of each class, indexed by label.
        picked: optional (2,) position of the picked point, drawn as a ring.
        ellipses: (M, 2) closed contours (e.g. `sigma_ellipse`) drawn around the pick.
        axis_titles: the two axis titles.
        colour: colour by a measure (one trace and a colour bar) instead of one trace per class.
        shown: the labels to show in colour (None: all); the others are greyed out, still clickable.
        n_test: rows from n_test on are training images (drawn smaller and fainter, hovered as
            "train #i"); None: every row is a test image.
        keep: (N,) bool, the rows drawn as points (None: all); an overview of many points
            (`overview_keep`) draws the others only in `raster`.
        raster: an RGB uint8 image of every point over the axis ranges, drawn under the points.

    The axes are fixed from `xy` alone (`axis_ranges`): a pick, its ellipses or any overlay added later
    never rescale the plot (they are clipped at its edge), and overlays stay out of the legend, so the
    legend is the classes and nothing else. Every point trace carries its rows' index in `customdata[0]`,
    so a click gives back the test-set row whatever the trace; overlays have no customdata and cannot be
    selected.
    """
    xy = np.asarray(xy, np.float32)
    labels = np.asarray(labels)
    if xy.ndim != 2 or xy.shape[1] != 2 or labels.shape != (len(xy),):
        raise ValueError(
            f"Expected xy (N, 2) and labels (N,). Received: xy.shape={xy.shape}, labels.shape={labels.shape}"
        )
    points = _point_traces(xy, labels, class_names, colour, shown, size=4, n_test=n_test, keep=keep)
    fig = go.Figure([*points, *_overlays(ellipses, picked)])
    x_range, y_range = axis_ranges(xy)
    if raster is not None:
        from PIL import Image

        fig.add_layout_image(
            source=Image.fromarray(np.asarray(raster, np.uint8)),
            xref="x",
            yref="y",
            x=x_range[0],
            y=y_range[1],
            sizex=x_range[1] - x_range[0],
            sizey=y_range[1] - y_range[0],
            sizing="stretch",
            layer="below",
        )
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


def _point_traces(xyz, labels, class_names, colour, shown, size, n_test=None, keep=None) -> list:
    rows = np.arange(len(xyz), dtype=np.int32)
    shown = None if shown is None else {int(c) for c in shown}
    n_test = None if n_test is None or n_test >= len(xyz) else int(n_test)  # None: every row is a test image
    if colour is None:
        return _class_traces(xyz, labels, rows, class_names, shown, size, n_test, keep)
    return _measure_traces(xyz, labels, rows, class_names, shown, colour, size, n_test, keep)


def latent_scatter_3d(
    xyz,
    labels,
    class_names,
    *,
    picked=None,
    axis_titles=("x", "y", "z"),
    colour: Colouring | None = None,
    shown=None,
    height: int = 600,
    n_test: int | None = None,
) -> go.Figure:
    """The test set in three latent coordinates (N, 3): `latent_scatter`'s traces as Scatter3d (same
    colours, dimming and customdata rows), the pick as an open ring. The camera is kept across reruns
    while the axes stay the same."""
    xyz = np.asarray(xyz, np.float32)
    labels = np.asarray(labels)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or labels.shape != (len(xyz),):
        raise ValueError(
            f"Expected xyz (N, 3) and labels (N,). Received: xyz.shape={xyz.shape}, "
            f"labels.shape={labels.shape}"
        )
    traces = _point_traces(xyz, labels, class_names, colour, shown, size=2.5, n_test=n_test)
    if picked is not None:
        p = np.asarray(picked, np.float32).reshape(3)
        traces.append(
            go.Scatter3d(
                x=[p[0]],
                y=[p[1]],
                z=[p[2]],
                mode="markers",
                name="pick",
                showlegend=False,
                hoverinfo="skip",
                marker=dict(size=9, symbol="circle-open", color=MARKER_COLOR, line=dict(width=3)),
            )
        )
    fig = go.Figure(traces)
    fig.update_layout(
        height=height,
        margin=dict(l=0, r=0, t=30, b=0),
        legend=dict(itemsizing="constant", orientation="h", x=0, xanchor="left", y=0, yanchor="top"),
        scene=dict(**{f"{a}axis_title": t for a, t in zip("xyz", axis_titles)}, aspectmode="data"),
        uirevision="latent-scatter-3d " + " ".join(axis_titles),
    )
    return fig


def highlight_rows(fig: go.Figure, xy, rows, name: str = "selection", color: str = "#ff7f0e") -> go.Figure:
    """Add a ring around each of `rows` (positions `xy[rows]`) as one WebGL trace without customdata; at
    most MAX_RINGS of them (a fixed sample), so a huge selection does not weigh on every rerun."""
    rows = np.asarray(rows, np.int64).reshape(-1)
    if len(rows) > MAX_RINGS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_RINGS, replace=False))
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
