"""The analysis tools in a real Chromium: a box and a lasso selection dragged on the scatter, the URL that
follows the view and opens the same view in a new tab. Checked against the served model's own
data in this process."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from browser_harness import (
    fetch_image,
    isolated_point,
    new_page,
    open_app,
    scatter_points,
    wait_idle,
    wait_image_loaded,
)


@pytest.fixture(scope="module")
def served_data(server):
    from model.data import load_dataset
    from model.store import ModelStore

    store = ModelStore(server.home / "models")
    return store.current().id, load_dataset("mnist", npz=server.home / "data" / "mnist.npz")


def scatter(page):
    return page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".gl-container")).first


def test_box_select_on_the_scatter_shows_the_selection(app_page, served_data):
    model_id, data = served_data
    page = app_page
    chart = scatter(page)
    chart.scroll_into_view_if_needed()
    points, (x0, y0, w, h), _ = scatter_points(chart)
    # a box over the middle of the plot, in page pixels
    bx0, bx1, by0, by1 = x0 + 0.40 * w, x0 + 0.60 * w, y0 + 0.40 * h, y0 + 0.60 * h
    data_pts = [p for p in points if p[4] is not None and p[5] >= 100]

    def rows_in(m):  # rows whose pixel lies in the box grown (m > 0) or shrunk (m < 0) by m px
        return {
            int(np.ravel(p[4])[0]) for p in data_pts if bx0 - m < p[2] < bx1 + m and by0 - m < p[3] < by1 + m
        }

    # Plotly decides in data coordinates from the drag's exact pixels: allow a few px at the edges
    inside, edge = rows_in(-4), rows_in(4) - rows_in(-4)
    assert len(inside) > 5, "the box would select almost nothing: pick another box"
    page.mouse.move(x0 + w / 2, y0 + h / 2)  # the modebar shows on hover
    chart.locator('.modebar-btn[data-title="Box Select"]').click()
    page.mouse.move(bx0, by0)
    page.mouse.down()
    page.mouse.move((bx0 + bx1) / 2, (by0 + by1) / 2, steps=5)
    page.mouse.move(bx1, by1, steps=5)
    page.mouse.up()
    heading = page.get_by_text(re.compile(r"Selection: [\d,]+ test images?"))
    heading.wait_for(state="visible")
    wait_idle(page)
    n = int(re.search(r"Selection: ([\d,]+)", heading.inner_text()).group(1).replace(",", ""))
    assert len(inside) <= n <= len(inside | edge), (n, len(inside), len(edge))
    assert page.locator('[data-testid="stException"]').count() == 0
    # the grid starts with the lowest selected test index; the counts add up to the selection
    grid = page.locator('[data-testid="stImage"]').filter(has_text="by test index").locator("img")
    wait_image_loaded(grid)
    first = fetch_image(page, grid.get_attribute("src"))[:56:2, :56:2]
    candidates = sorted(inside | edge)[: len(edge) + 1]
    assert any(np.array_equal(first, data.x_test[r]) for r in candidates), "the grid's first image is wrong"
    table = page.locator('[data-testid="stMarkdownContainer"] table').filter(has_text="count").first
    counts = [int(c.replace(",", "")) for c in table.locator("tbody tr td:nth-child(2)").all_inner_texts()]
    assert sum(counts) == n
    # the address bar names the model being explored
    q = parse_qs(urlparse(page.url).query)
    assert q.get("model") == [model_id] and len(q["z"][0].split(",")) == 2
    # clearing the selection removes the panel
    page.get_by_role("button", name="Clear selection").click()
    heading.wait_for(state="detached")
    wait_idle(page)
    assert page.get_by_text(re.compile(r"Selection: \d")).count() == 0


def _selection_size(page) -> int:
    heading = page.get_by_text(re.compile(r"Selection: [\d,]+ test images?"))
    heading.wait_for(state="visible")
    wait_idle(page)
    return int(re.search(r"Selection: ([\d,]+)", heading.inner_text()).group(1).replace(",", ""))


def test_lasso_on_the_scatter_selects_the_points_inside_it(app_page):
    page = app_page
    chart = scatter(page)
    chart.scroll_into_view_if_needed()
    points, (x0, y0, w, h), _ = scatter_points(chart)
    # a triangle over the middle of the plot (page pixels): apex at the top, base at the bottom
    tri = np.array([[x0 + 0.5 * w, y0 + 0.3 * h], [x0 + 0.7 * w, y0 + 0.7 * h], [x0 + 0.3 * w, y0 + 0.7 * h]])
    from matplotlib.path import Path as Polygon

    poly = Polygon(tri)
    data_pts = [p for p in points if p[4] is not None and p[5] >= 100]
    xy = np.array([[p[2], p[3]] for p in data_pts])
    # Plotly decides in data coordinates from the drag's sampled pixels: allow a few px at the edges
    # (the sign of matplotlib's radius grows or shrinks the polygon depending on its orientation)
    rows = [int(np.ravel(p[4])[0]) for p in data_pts]
    inside, near = sorted(
        ({row for row, ok in zip(rows, poly.contains_points(xy, radius=r)) if ok} for r in (-8, 8)), key=len
    )
    assert len(inside) > 5, "the lasso would select almost nothing: pick another triangle"
    page.mouse.move(x0 + w / 2, y0 + h / 2)  # the modebar shows on hover
    chart.locator('.modebar-btn[data-title="Lasso Select"]').click()
    page.mouse.move(*tri[0])
    page.mouse.down()
    for a, b in zip(tri, [*tri[1:], tri[0]]):
        for t in np.linspace(0, 1, 12)[1:]:
            page.mouse.move(*(a + t * (b - a)))
    page.mouse.up()
    n = _selection_size(page)
    assert len(inside) <= n <= len(near), (n, len(inside), len(near))
    assert page.locator('[data-testid="stException"]').count() == 0


def test_the_address_of_a_view_opens_the_same_view_in_a_new_tab(app_page, browser, server, served_data):
    _, data = served_data
    page = app_page
    chart = scatter(page)
    chart.scroll_into_view_if_needed()
    points, box, _ = scatter_points(chart)
    target, _ = isolated_point(points, box)
    page.mouse.move(target[2], target[3])
    hover = page.locator(".hoverlayer .hovertext").first
    hover.wait_for(state="visible")
    row = int(re.search(r"test #(\d+)", hover.text_content()).group(1))
    page.mouse.down()
    page.mouse.up()
    page.get_by_text(re.compile(rf"Index:\s*{row}\b")).first.wait_for(state="visible")
    wait_idle(page)
    page.wait_for_function("(r) => new URL(location.href).searchParams.get('pick') === String(r)", arg=row)
    url = page.url
    query = parse_qs(urlparse(url).query)
    other = new_page(browser)  # a new browser context: a new Streamlit session, nothing shared
    try:
        open_app(other, url)
        wait_idle(other)
        other.get_by_text(re.compile(rf"Index:\s*{row}\b")).first.wait_for(state="visible")
        label = int(data.y_test[row])
        assert other.get_by_text(re.compile(rf"Label:\s*{label}\b")).count() >= 1
        other.wait_for_function(  # the latent pad, once its decoder is ready, shows the z of the link
            "() => [...document.querySelectorAll('iframe')].some(f => { try {"
            " return f.contentWindow.latentPad && f.contentWindow.latentPad.ready; }"
            " catch (e) { return false; } })"
        )
        pad = next(f for f in other.frames if "latent_pad/index.html" in f.url)
        z_shown = pad.evaluate("() => Array.from(window.latentPad.z)")
        z_link = [float(v) for v in query["z"][0].split(",")]
        assert np.allclose(z_shown, z_link, atol=5e-4 + 1e-6), (z_shown, z_link)
        assert parse_qs(urlparse(other.url).query) == query  # and its own address says the same
        assert other.locator('[data-testid="stException"]').count() == 0
    finally:
        other.context.close()
