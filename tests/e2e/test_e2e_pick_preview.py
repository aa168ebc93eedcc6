"""The pick preview in a real Chromium: hovering a scatter point shows its test image and reconstruction
at once with no message to the server, and a click paints the pick before the server's run, which then
picks the same row (its pick panel shows the same images: the original exactly, the reconstruction within
one 8-bit step). See explorer/components/pick_preview."""

from __future__ import annotations

import re

import numpy as np
import pytest
from browser_harness import (
    console_log,
    dump_debug,
    fetch_image,
    is_auto_rerun,
    isolated_point,
    new_page,
    open_app,
    scatter_points,
    to_grey28,
    wait_idle,
    wait_image_loaded,
)

# The sprite decodes the 10,000 posterior means in one batch, the server's pick panel one image: the same
# weights and float32 maths summed in another order (|difference| ~ 1e-6 here), so a value near a rounding
# boundary may land one 8-bit step away. Anything wrong (another image, a shifted tile) is far larger.
RECON_TOL = 1
READY_JS = "() => { const G = window.__latentPick; return G && G.ready.size > 0 && G.stats.attached > 0; }"
CANVAS_JS = """(c) => {
  const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
  const out = [];
  for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2], d[i + 3]]);
  return out;
}"""


@pytest.fixture
def watched_page(request, browser, server):
    """A fresh session whose websocket frames to the server are counted (`page.sent`), timer reruns
    excepted, with the preview attached to the scatter and its sprites loaded."""
    page = new_page(browser, viewport=(1400, 1800))  # tall: the scatter and the preview in view at once
    page.sent = []
    page.on(
        "websocket",
        lambda ws: ws.on("framesent", lambda p: None if is_auto_rerun(p) else page.sent.append(len(p))),
    )
    try:
        open_app(page, server.url)
        page.wait_for_function(READY_JS, timeout=60_000)
        wait_idle(page)
        yield page
    finally:
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            dump_debug(page, request.node.name, server)
        page.context.close()


def scatter(page):
    return page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".gl-container")).first


def preview(page):
    return page.locator(".pick-preview")


def canvas(page, kind: str) -> np.ndarray:
    """The preview's drawn 28×28 image (`orig` or `recon`) as uint8; asserts it is opaque grey."""
    px = np.array(preview(page).locator(f"canvas.{kind}").evaluate(CANVAS_JS), np.int64).reshape(28, 28, 4)
    assert (px[..., 3] == 255).all() and (px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all()
    return px[..., 0].astype(np.uint8)


def on_screen(page, kind: str) -> np.ndarray:
    """What the screen shows of that canvas (84×84 CSS px, pixelated), sampled at its 28×28 cell centres."""
    shot = preview(page).locator(f"canvas.{kind}").screenshot()
    from io import BytesIO

    from PIL import Image

    return np.rint(to_grey28(np.asarray(Image.open(BytesIO(shot)))) * 255).astype(np.uint8)


def hover_point(page, seed: int = 0) -> int:
    """Move the pointer onto the most isolated scatter point; returns the row Plotly's hover label names
    (the point under the pointer, whatever the crowding)."""
    chart = scatter(page)
    preview(page).scroll_into_view_if_needed()  # no scrolling later (a screenshot) moves the chart away
    chart.scroll_into_view_if_needed()
    points, box, _ = scatter_points(chart)
    target, _gap = isolated_point(points, box, rng_seed=seed)
    page.mouse.move(target[2], target[3])
    label = page.locator(".hoverlayer .hovertext").first
    label.wait_for(state="visible")
    m = re.search(r"test #(\d+)", label.text_content() or "")
    assert m, f"the hover label names no test image: {label.text_content()!r}"
    return int(m.group(1))


def test_hover_shows_the_test_image_and_its_reconstruction_without_the_server(watched_page, served_model):
    latent, data = served_model
    page = watched_page
    sent = len(page.sent)
    row = hover_point(page, seed=3)
    shown = preview(page)
    page.wait_for_function(
        "(r) => window.__latentPick.stats.row === r && window.__latentPick.stats.kind === 'hover'", arg=row
    )
    assert shown.get_attribute("data-state") == "hover" and shown.get_attribute("data-row") == str(row)
    assert f"test #{row} · label {data.y_test[row]}" in shown.inner_text()
    assert np.array_equal(canvas(page, "orig"), data.x_test[row]), f"the preview is not test image #{row}"
    expected = np.rint(latent.reconstruct(data.x_test[row : row + 1])[0] * 255).astype(int)
    assert np.abs(canvas(page, "recon").astype(int) - expected).max() <= RECON_TOL
    screen = on_screen(page, "orig").astype(int)
    assert shown.get_attribute("data-row") == str(row), "the screenshot moved the pointer off the point"
    assert np.abs(screen - data.x_test[row]).max() == 0, "the screen differs from the canvas"
    sample = page.evaluate("window.__latentPick.stats.hover.slice(-1)[0]")
    assert sample["row"] == row and sample["painted"] >= sample["drawn"] >= sample["t0"]
    page.wait_for_timeout(300)
    assert len(page.sent) == sent, "hovering sent something to the server"
    # off the plot: the preview goes back to the pick (none yet)
    page.mouse.move(5, 5)
    page.locator('.pick-preview[data-state="empty"]').wait_for()
    console_log(page).assert_clean(page, what="the load and a hover")


def test_a_click_paints_the_pick_first_and_the_server_follows_with_the_same_images(
    watched_page, served_model
):
    latent, data = served_model
    page = watched_page
    row = hover_point(page, seed=5)
    page.wait_for_function("(r) => window.__latentPick.stats.row === r", arg=row)
    runs = page.evaluate("window.__e2e.runsDone")
    sent = len(page.sent)
    page.mouse.down()
    page.mouse.up()
    page.wait_for_function(
        "(r) => { const s = window.__latentPick.stats.click.slice(-1)[0];"
        " return s && s.row === r && s.painted; }",
        arg=row,
    )
    click = page.evaluate("window.__latentPick.stats.click.slice(-1)[0]")
    shown = preview(page)
    assert shown.get_attribute("data-state") == "pick" and shown.get_attribute("data-row") == str(row)
    preview_orig, preview_recon = canvas(page, "orig"), canvas(page, "recon")
    assert np.array_equal(preview_orig, data.x_test[row])

    # the server follows: one message (the pick), no point selection, the pick panel shows the same row
    original_img = (
        page.locator('[data-testid="stImage"]').filter(has_text=f"test #{row} (original)").locator("img")
    )
    wait_image_loaded(original_img)
    wait_idle(page)
    done = page.evaluate("window.__e2e.lastDone")
    assert page.evaluate("window.__e2e.runsDone") > runs
    assert click["painted"] < done, "the preview waited for the server's run"
    assert len(page.sent) - sent >= 1
    server_orig = np.rint(to_grey28(fetch_image(page, original_img.get_attribute("src"))) * 255).astype(
        np.uint8
    )
    assert np.array_equal(preview_orig, server_orig), "the preview's original differs from the server's"
    recon_img = (
        page.locator('[data-testid="stImage"]')
        .filter(has=page.get_by_text("reconstruction", exact=True))
        .locator("img")
    )
    wait_image_loaded(recon_img)
    server_recon = np.rint(to_grey28(fetch_image(page, recon_img.get_attribute("src"))) * 255).astype(int)
    assert np.abs(preview_recon.astype(int) - server_recon).max() <= RECON_TOL
    # the click was the preview's, not a Plotly point selection (that would repaint all 10k points)
    selected = scatter(page).evaluate(
        "(r) => r.querySelector('.js-plotly-plot')._fullData"
        ".some(t => t.selectedpoints && t.selectedpoints.length)"
    )
    assert not selected, "the click also selected points in the chart"
    # the preview keeps showing the pick after the server's runs (and off the plot)
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    assert shown.get_attribute("data-state") == "pick" and shown.get_attribute("data-row") == str(row)
    console_log(page).assert_clean(page, what="the load and a click")
