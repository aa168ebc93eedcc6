"""The analysis tools in a real Chromium: a box selection dragged on the scatter, and the URL that
follows the view (issue 14). Checked against the served model's own data in this process."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from browser_harness import fetch_image, scatter_points, wait_idle, wait_image_loaded


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
