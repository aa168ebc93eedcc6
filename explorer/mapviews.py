"""Pure figure builders for the density and image-map sections: numpy in, a figure out (no Streamlit)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer import views

HOLE_COLOR = "#d62728"
DENSITY_SCALE = [[0.0, "#ffffff"], [0.1, "#f0f6fc"], [0.4, "#9ecae1"], [1.0, "#08306b"]]  # 0 is white


def density_figure(gx, gy, q, center, hole_mask, samples, axis_titles=("z[0]", "z[1]"), height: int = 520):
    """The data's density `q` (len(gy), len(gx)) as contours over the prior's 1σ/2σ/3σ circles around
    `center`, the hole cells (`hole_mask`) as faint red squares and the decoded samples (K, 2) numbered.

    Traces by name: "data density", "prior 1σ"/"prior 2σ"/"prior 3σ", "holes", "hole samples"."""
    gx, gy, q = np.asarray(gx), np.asarray(gy), np.asarray(q)
    top = float(q.max()) or 1.0  # levels from 5% of the peak up: below it the plane stays white
    fig = go.Figure()
    fig.add_trace(
        go.Contour(
            x=gx,
            y=gy,
            z=q,
            name="data density",
            colorscale=DENSITY_SCALE,
            zmin=0.0,
            zmax=top,
            contours=dict(coloring="fill", showlines=True, start=top / 20, end=top, size=top / 10),
            line=dict(width=0.5),
            colorbar=dict(title=dict(text="density", side="right"), thickness=12),
            hovertemplate="(%{x:.2f}, %{y:.2f})<br>data density %{z:.3g}<extra></extra>",
        )
    )
    for k, dash in ((1, "solid"), (2, "dash"), (3, "dot")):
        e = views.sigma_ellipse(center, np.eye(2), k)
        fig.add_trace(
            go.Scatter(
                x=e[:, 0],
                y=e[:, 1],
                mode="lines",
                name=f"prior {k}σ",
                line=dict(color="#111111", width=1.5, dash=dash),
                hoverinfo="skip",
            )
        )
    rows, cols = np.nonzero(np.asarray(hole_mask, bool))
    fig.add_trace(
        go.Scatter(
            x=gx[cols],
            y=gy[rows],
            mode="markers",
            name="holes",
            marker=dict(symbol="square", size=6, color=HOLE_COLOR, opacity=0.35),
            hovertemplate="hole: the prior has mass, the data little<extra></extra>",
        )
    )
    s = np.asarray(samples, np.float64).reshape(-1, 2)
    fig.add_trace(
        go.Scatter(
            x=s[:, 0],
            y=s[:, 1],
            mode="markers+text",
            name="hole samples",
            text=[str(i + 1) for i in range(len(s))],
            textposition="top center",
            marker=dict(symbol="x", size=10, color=HOLE_COLOR, line=dict(width=1)),
            hovertemplate="sample %{text}: (%{x:.2f}, %{y:.2f})<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", x=0, y=-0.12, yanchor="top"),
        xaxis=dict(title_text=axis_titles[0], range=[float(gx[0]), float(gx[-1])], zeroline=False),
        yaxis=dict(
            title_text=axis_titles[1],
            range=[float(gy[0]), float(gy[-1])],
            zeroline=False,
            scaleanchor="x",
            scaleratio=1,
        ),
    )
    return fig
