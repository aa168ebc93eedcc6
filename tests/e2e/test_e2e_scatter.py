"""The scatter's filter and the 3-D view in a real Chromium: what the page paints, and a 3-D click's pick.

Plotly draws the points in WebGL: the filter test counts the painted pixels of a class's colour before and
after the filter; the 3-D test clicks a point under the mouse (found through Plotly's own hover event)
and checks the pick's original against the test set.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from browser_harness import (
    StreamlitServer,
    console_log,
    fetch_image,
    new_page,
    open_app,
    runs_done,
    to_grey28,
    wait_idle,
    wait_image_loaded,
    wait_runs,
)
from PIL import Image

from explorer import scatter as scatter_module
from explorer.views import PALETTE


def _scatter(page):
    return page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".gl-container")).first


def _colour_pixels(png: bytes, rgb, tol: float = 22.0) -> int:
    """How many pixels of a screenshot are within `tol` of `rgb`."""
    import io

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32)
    return int((np.linalg.norm(a - np.asarray(rgb, np.float32), axis=-1) < tol).sum())


def _blend(hex_colour: str, alpha: float) -> tuple[float, float, float]:
    """A colour painted at `alpha` over the white plot background."""
    c = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], np.float32)
    return tuple(alpha * c + (1 - alpha) * 255)


def test_the_label_filter_dims_the_other_labels_on_screen(app_page):
    page = app_page
    chart = _scatter(page)
    chart.scroll_into_view_if_needed()
    blue = _blend(PALETTE[0], 0.65)  # label 0 as painted (one point over white)
    before = _colour_pixels(chart.screenshot(), blue)
    assert before > 50, f"label 0's colour is not on the scatter ({before} px)"
    section = page.locator('[data-testid="stExpander"]').filter(has_text="Colour, filter and find")
    section.locator("summary").first.click()
    box = section.locator('[data-testid="stMultiSelect"]')  # open it, click a label
    for label in ("1", "2"):
        option = page.locator(f'[role="option"][data-key="{label}"]')  # the option's value
        for _ in range(4):  # a rerun landing meanwhile (the pick preview's sprites) can close the list
            wait_idle(page)
            box.get_by_role("combobox").click()
            try:
                option.wait_for(state="visible", timeout=5_000)
                break
            except Exception:
                page.keyboard.press("Escape")
        runs = runs_done(page)
        option.click()
        wait_runs(page, runs)
        wait_idle(page)
    page.keyboard.press("Escape")
    wait_idle(page)
    traces = chart.evaluate(
        "(root) => root.querySelector('.js-plotly-plot')._fullData"
        ".filter(t => t.customdata).map(t => [t.name, t.marker.color, t.marker.opacity])"
    )
    lit = {n for n, c, _ in traces if c != scatter_module.DIM_COLOR}
    assert lit == {"1", "2"}, traces
    assert len(traces) == 10  # dimmed, not hidden
    page.wait_for_timeout(500)  # WebGL repaint after the new figure
    after = _colour_pixels(chart.screenshot(), blue)
    grey = _colour_pixels(
        chart.screenshot(), _blend(scatter_module.DIM_COLOR, scatter_module.DIM_OPACITY), 12
    )
    assert after < before * 0.05, (before, after)
    assert grey > 50, f"the filtered-out points are not drawn in grey ({grey} px)"
    console_log(page).assert_clean(page, what="filtering the scatter")


@pytest.fixture(scope="module")
def server_3d(e2e_home_template, tmp_path_factory):
    """A server exploring a tiny 3-D model (1 epoch on 300 images)."""
    from model import paths
    from model.store import ModelStore
    from model.train import train
    from model.vae import VAEConfig

    home = tmp_path_factory.mktemp("e2e_3d") / "home"
    home.mkdir(parents=True)
    shutil.copytree(e2e_home_template / "data", home / "data")
    with paths.using_home(home):
        train(VAEConfig(latent_dim=3, epochs=1, limit=300), store=ModelStore(), verbose=0)
    srv = StreamlitServer(home, log_path=home.parent / "3d.streamlit.log").start(timeout=120)
    yield srv
    srv.stop()


def _hover_point(page, chart) -> int:
    """Move the mouse over the 3-D chart until Plotly hovers a point; return its row (mouse stays)."""
    chart.evaluate(
        "(root) => { const g = root.querySelector('.js-plotly-plot'); window.__hover3d = null;"
        " g.on('plotly_hover', e => { const p = e.points[0];"
        " if (p && p.customdata !== undefined) { let cd = p.customdata;"
        " while (Array.isArray(cd) || ArrayBuffer.isView(cd)) cd = cd[0]; window.__hover3d = cd; } });"
        " g.on('plotly_unhover', () => { window.__hover3d = null; }); }"
    )
    b = chart.bounding_box()
    cx, cy = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
    for r in range(0, 120, 6):
        for k in range(max(1, r // 3)):
            t = 2 * np.pi * k / max(1, r // 3)
            page.mouse.move(cx + r * np.cos(t), cy + r * np.sin(t))
            page.wait_for_timeout(40)
            row = page.evaluate("window.__hover3d")
            if row is not None:
                return int(row)
    raise AssertionError("no 3-D point found under the mouse near the chart's centre")


def test_a_click_on_the_3d_view_picks_that_point(browser, server_3d):
    from model.data import load_dataset

    data = load_dataset("mnist", npz=server_3d.home / "data" / "mnist.npz")
    page = new_page(browser)
    try:
        open_app(page, server_3d.url)
        section = page.locator('[data-testid="stExpander"]').filter(has_text="3-D view of the latent space")
        section.locator("summary").first.click()
        chart = section.locator('[data-testid="stPlotlyChart"]')
        chart.locator(".js-plotly-plot").wait_for()
        wait_idle(page)
        chart.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        row = _hover_point(page, chart)
        page.mouse.down()  # Plotly's 3-D scene sees a click in its render loop: hold the button a frame
        page.wait_for_timeout(150)
        page.mouse.up()
        img = (
            page.locator('[data-testid="stImage"]').filter(has_text=f"test #{row} (original)").locator("img")
        )
        wait_image_loaded(img)
        original = to_grey28(fetch_image(page, img.get_attribute("src")))
        assert np.array_equal(np.rint(original * 255).astype(np.uint8), data.x_test[row])
        assert page.get_by_text(re.compile(rf"Index:\s*{row}\b")).count() >= 1
        ring = chart.evaluate(
            "(root) => { const g = root.querySelector('.js-plotly-plot');"
            " const t = g._fullData.find(d => d.name === 'pick');"
            " return t ? [t.x[0], t.y[0], t.z[0]] : null; }"
        )
        assert ring is not None, "the 3-D view does not ring the pick"
        console_log(page).assert_clean(page, what="a 3-D pick")
    finally:
        page.context.close()
