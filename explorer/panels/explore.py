"""The explore panel, one `st.fragment`: the latent pad (or server sliders) with the live decoded digit and
its map, the clickable test-set scatter, then the pick, the interpolation row and the analysis tools.
A slider move or a click reruns only this fragment, never the manifold or the sidebar.

Widget keys: z0..z{d-1} (the server's sliders; the latent pad writes the same keys on release), scatter.
The pick and the latent values go through explorer.session.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from explorer import cache, context, events, scatter, session, views
from explorer.components import latent_pad
from explorer.panels import downloads, links, tools, user_digit
from explorer.panels import selection as sel_panel
from explorer.panels.common import fmt
from explorer.panels.interpolation import interpolation_panel
from explorer.panels.pick import pick_panel
from explorer.panels.scatter3d import scatter3d_panel
from explorer.panels.scatter_view import scatter_view

DIGIT_SCALE = 10  # 28 px -> 280 px, nearest neighbour
MAP_SIZE = 200  # the live map: beside the digit (server sliders) or beside the interpolation (latent pad)
PAD_MAP_SIZE = 280  # the latent pad's background map (2-D models)


def sync_sliders(ex: context.Explorer) -> None:
    """Create, clip or move the latent values before the sliders are drawn."""
    lat = ex.latents
    session.sync_latents(ex.stamp, lat.center, lat.bounds, lat.z_mean, len(ex.images))


def _on_select(all_xy=None) -> None:
    """Plotly selection callback: copy the clicked row into `pick` (the chart forgets it on redraw).
    all_xy: every point's position when the scatter is an overview (a box selects among all of them)."""
    event = session.widget_value("scatter")
    if sel_panel.on_scatter_event(event, all_xy):  # a box/lasso selection, not a click
        return
    row = events.picked_row(events.selection_points(event))
    if row is not None:
        session.set_pick(row)


def _live_digit(ex: context.Explorer):
    """The pad or the sliders, and the decoded digit. Returns (z (d,), decode_ms, the map's placeholder, or
    None when the pad is shown: the pad is the live map of a 2-D model, and the map of the path and the
    pick goes beside the interpolation).

    With the pad, the page shows one digit and one z (the pad's); the server's decode of the same z is
    only the PNG download. With the server's sliders, the server's digit is the live digit."""
    d, bounds = ex.latent_dim, ex.latents.bounds
    st.subheader("Move through the latent space")
    # In-browser decoding while dragging; it writes z0..z{d-1} on release. Without it: server sliders.
    pad_note = latent_pad.latent_pad(
        session.z_keys(d),
        bounds,
        model_key=ex.stamp,
        model=ex.model,
        extent=ex.map_extent,
        background=cache.map_base(ex.stamp, ex.latents.xy, ex.latents.labels, ex.map_extent, PAD_MAP_SIZE)
        if d == 2
        else None,
    )
    if pad_note is not None:
        st.caption(f"{pad_note} Using the server's sliders: the digit updates when you release one.")
        box = st.container(height=360) if d > 6 else st.container()
        with box:
            for i in range(d):
                st.slider(
                    f"z[{i}]",
                    -float(bounds[i]),
                    float(bounds[i]),
                    step=0.05,
                    key=session.z_keys(d)[i],
                    format="%.2f",
                )
    z = session.z_values(d)
    t = time.perf_counter()
    digit = ex.model.decode(z)[0]  # (28, 28): one compiled forward pass, no predict()
    decode_ms = 1000 * (time.perf_counter() - t)
    if pad_note is None:
        st.caption(
            f"decoded in {decode_ms:.1f} ms on the server too, when you let go: download this digit as"
        )
        downloads.digit_download(digit, z)
        return z, decode_ms, None
    row = st.container(horizontal=True, gap="small")  # wraps: the map goes below on narrow screens
    row.image(
        views.to_png(digit, DIGIT_SCALE),
        width=28 * DIGIT_SCALE,
        output_format="PNG",
        caption="decoder(z) for the slider values",
        alt=f"decoded digit at z = {fmt(z)}",
    )
    map_box = row.empty()  # drawn later, once the interpolation path is known
    st.caption(f"decoded in {decode_ms:.1f} ms on the server · z = `{fmt(z)}`")
    downloads.digit_download(digit, z)
    return z, decode_ms, map_box


def _overlay(ex: context.Explorer, row):
    """The pick's position and its 1σ/2σ posterior ellipses in the scatter's plane (None, [] without one)."""
    if row is None or not 0 <= row < len(ex.images):
        return None, []
    xy, cov = ex.latents.xy[row], ex.projected_cov(row)
    if cov is None:  # the view cannot carry the posterior there (the pick panel says why)
        return xy, []
    return xy, [views.sigma_ellipse(xy, cov, k) for k in (1, 2)]


def _scatter_row(pick) -> tuple[int | None, bool]:
    """The pick the big scatter draws now, and whether to rerun the fragment to draw the new one.

    A new pick changes the big scatter (its ring and ellipses), and the browser then spends a few
    hundred ms redrawing 10k WebGL points. In a fragment run (a click, a pick button) draw the scatter
    as it was, so the pick's images reach the browser and paint first, then rerun the fragment at
    once to move the ring. Full-app runs draw everything in one go (a fragment rerun is not allowed)."""
    ctx = get_script_run_ctx()
    shown = session.scatter_pick(pick)  # the pick the browser's scatter shows now
    defer = bool(ctx and ctx.fragment_ids_this_run) and pick != shown
    session.set_scatter_pick(pick)  # after this run (and its rerun, if deferred)
    return (shown if defer else pick), defer


def _draw_map(ex: context.Explorer, map_box, z: np.ndarray, path, pick) -> None:
    """The live map beside the digit: the sliders, the pick, the interpolation path on the test set."""
    picked, ellipses = _overlay(ex, pick)
    extent = ex.map_extent
    base = cache.map_base(ex.stamp, ex.latents.xy, ex.latents.labels, extent, MAP_SIZE)
    map_box.image(
        views.map_png(
            base,
            extent,
            current=ex.project(z),
            picked=picked,
            ellipses=ellipses[:1],
            path=None if path is None else ex.project(path),
        ),
        width=MAP_SIZE,
        output_format="PNG",
        caption=("the path (grey), the pick and " if path is not None else "")
        + "the sliders (red ×) on the test set"
        + ("" if ex.latent_dim == 2 else f" ({ex.view_name} view)"),
        alt=f"map of the test set in the latent plane, the sliders at z = {fmt(z)} marked with a red cross"
        + ("" if pick is None else f", test image #{pick} ringed")
        + ("" if path is None else ", the interpolation path as a grey line"),
    )


def _draw_scatter(ex: context.Explorer, scatter_box, row, colour=None, shown=None) -> None:
    """The big test-set scatter with the pick `row`, the user's digit and the selection marked.

    The live map follows the sliders; the big scatter does not: Streamlit rebuilds a chart whose figure
    changed, and rebuilding 10k WebGL points on every slider move is slow in the browser (and loses the
    user's zoom). Its figure only changes with the model and the pick."""
    xy, ellipses = _overlay(ex, row)
    n = len(ex.images)
    overview = n > scatter.point_limit()  # every point in an image, a sample of them as points
    fig = scatter.latent_scatter(
        ex.latents.xy,
        ex.latents.labels,
        ex.class_names,
        picked=xy,
        ellipses=ellipses,
        axis_titles=ex.axis_titles,
        colour=colour,
        shown=shown,
        n_test=ex.n_test,
        keep=scatter.overview_keep(n, always=[row]) if overview else None,
        raster=cache.overview_raster(ex.stamp, ex.latents.xy, ex.latents.labels) if overview else None,
    )
    fig = user_digit.mark_user_digit(fig, ex)  # the user's digit and its posterior ellipses
    fig = sel_panel.mark_selection(fig, ex)  # rings around a box/lasso selection
    with scatter_box:
        st.plotly_chart(
            fig,
            key="scatter",
            on_select=functools.partial(_on_select, ex.latents.xy if overview else None),
            selection_mode=("points", "box", "lasso"),
            config={"displaylogo": False, "scrollZoom": False},
            alt=scatter_alt(ex),  # fixed per model: a changed alt would remount the chart
        )
        if overview:
            st.caption(
                f"{n:,} points: every one in the density image under the axes, {scatter.OVERVIEW_POINTS:,} "
                "of them (a fixed sample, and the pick) as points to hover and click. A box or lasso "
                "selects among all of them. (Plotly's WebGL scatter is slow here past "
                f"{scatter.point_limit():,} points: see docs/performance.md.)"
            )


def scatter_alt(ex: context.Explorer) -> str:
    """The scatter's accessible label: what it shows and how to use it (no pick: it must not change)."""
    x, y = ex.axis_titles
    return (
        f"Scatter plot of the {len(ex.images):,} test images in the latent plane ({x} across, {y} up), "
        "one colour per label. Click a point to pick that test image; drag a box or lasso to select many."
    )


@st.fragment
def explore_panel(ex: context.Explorer) -> None:
    """Sliders, live digit, scatter, pick and interpolation: reruns alone on any of its widgets."""
    t0 = time.perf_counter()
    if not ex.record.path.is_dir():  # deleted from another tab: the full run says so (one stat)
        st.rerun(scope="app")
    sync_sliders(ex)  # a click reruns only this fragment: apply the new pick here too
    d = ex.latent_dim
    left, right = st.columns([1, 1], gap="medium")
    pick_box = st.container()
    # The pick's images go out first (a click waits for them), then the pad/digit and the rest: the
    # browser re-renders the fragment's elements in the order they arrive.
    with pick_box:
        pick_panel(ex)
    with left:
        z, decode_ms, map_box = _live_digit(ex)
    with right:
        st.subheader("Test set in latent space")
        scatter_box = st.container()  # drawn last, once the pick and the controls below are known
        st.caption(
            "Hover a point for its index and label; click it to pick it (the sliders jump "
            "to its posterior mean). Drag to zoom, double-click to reset."
            + ("" if d == 2 else f" Axes: {ex.view_name} of the {d}-D means.")
        )
        colour, shown = scatter_view(ex)

    path, interp_map = interpolation_panel(ex, z, with_map=map_box is None)
    map_box = map_box or interp_map
    scatter3d_panel(ex, colour, shown)
    tools.explore_tools(ex, z, path)  # GIF, selection, neighbours, traversals, attributes, link

    pick = session.pick()
    row, defer = _scatter_row(pick)
    _draw_map(ex, map_box, z, path, pick)
    _draw_scatter(ex, scatter_box, row, colour, shown)
    session.record_timings(decode_ms=decode_ms, panel_ms=1000 * (time.perf_counter() - t0))
    links.update_url(ex)  # the URL follows the view
    if defer:
        st.rerun(scope="fragment")
