"""The explorer page in a real Chromium, as a user drives it: digit, sliders, scatter click.

The server explores a tiny model (1 epoch on 1000 images); each test checks what the page paints
against the same model decoding in this process, so a stale or wrong image fails, not just a missing one.
"""

from __future__ import annotations

import re
import time

import numpy as np
from browser_harness import (
    HarnessError,
    console_log,
    downloaded_image,
    fetch_image,
    image_srcs,
    isolated_point,
    scatter_points,
    server_z,
    to_grey28,
    wait_idle,
    wait_image_loaded,
)

DIGIT_CAPTION = "decoder(z) for the slider values"
TOL = 3 / 255  # server vs. test-process decode of the same weights, after 8-bit PNG rounding


def digit_img(page):
    return page.locator('[data-testid="stImage"]').filter(has_text=DIGIT_CAPTION).locator("img")


def decoded_z(page) -> np.ndarray:
    """The z the server decoded last (the address bar follows every run)."""
    return server_z(page)


def shown_digit(page) -> np.ndarray:
    """The server's decode of that z: the "PNG 28×28" download (the pad paints the live digit)."""
    return to_grey28(downloaded_image(page, "PNG 28×28"))


def slider(page, name: str):
    """The range input labelled `name` in the latent pad (the component's frame), once its decoder is
    ready."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('iframe')].some(f => { try {"
        " return f.contentWindow.latentPad && f.contentWindow.latentPad.ready;"
        " } catch (e) { return false; } })"
    )
    return page.frame_locator('iframe[src*="latent_pad/index.html"]').locator(
        f'input[type="range"][aria-label="{name}"]'
    )


def slider_value(page, name: str) -> float:
    """The slider's value as the slider shows it (snapped to its 0.01 step grid)."""
    return float(slider(page, name).input_value())


def scatter(page):
    return page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".gl-container")).first


def no_exceptions(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, f"the page shows a traceback: {errors.first.inner_text()[:500]}"


def test_page_shows_the_decoded_digit(app_page, served_model):
    latent, _ = served_model
    page = app_page
    no_exceptions(page)
    # one digit and one z: the latent pad paints the live digit and its z; the server's decode of the same
    # z is the PNG download, not a second digit or z on the page
    assert digit_img(page).count() == 0, "a second (server) digit beside the pad"
    assert page.get_by_text(re.compile(r"z = \[")).count() == 0, "a second z beside the pad's"
    z = decoded_z(page)
    shown_z = np.array([slider_value(page, "z[0]"), slider_value(page, "z[1]")])
    assert np.abs(shown_z - z).max() <= 0.005 + 1e-6, f"sliders show {shown_z}, the server decoded {z}"
    expected = latent.decode(z[None])[0]
    shown = shown_digit(page)
    assert np.abs(shown - expected).max() <= TOL, "the painted digit is not decoder(z) for the sliders"
    assert "Exploring" in page.get_by_text("Exploring").first.inner_text()
    console_log(page).assert_clean(page, what="the first load")


def test_slider_move_repaints_the_digit(app_page, served_model):
    latent, _ = served_model
    page = app_page
    z1 = decoded_z(page)[1]
    for step in range(3):
        before_url, before_z0 = page.url, slider_value(page, "z[0]")
        thumb = slider(page, "z[0]")
        thumb.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("(u) => location.href !== u", arg=before_url)  # the server's run wrote z
        wait_idle(page)
        z0 = slider_value(page, "z[0]")
        # one arrow press = one step (0.01), snapped to the step grid
        assert 0 < z0 - before_z0 <= 0.01 + 1e-6, f"step {step}: slider went {before_z0} -> {z0}"
        z = decoded_z(page)  # z[1] may come back snapped to its step grid too
        assert abs(z[0] - z0) <= 5e-4 + 1e-6 and abs(z[1] - z1) <= 0.005 + 1e-6, (z, z0, z1)
        expected = latent.decode(z[None])[0]
        assert np.abs(shown_digit(page) - expected).max() <= TOL, f"step {step}: wrong digit at z0={z0}"
    no_exceptions(page)
    console_log(page).assert_clean(page, what="the load and three slider steps")


def test_clicking_a_scatter_point_shows_its_original_and_reconstruction(app_page, served_model):
    latent, data = served_model
    page = app_page
    chart = scatter(page)
    chart.scroll_into_view_if_needed()
    points, box, traces = scatter_points(chart)
    assert sum(t["n"] for t in traces if t["type"] == "scattergl") == len(data.x_test), traces
    target, gap = isolated_point(points, box)
    page.mouse.move(target[2], target[3])
    hover = page.locator(".hoverlayer .hovertext").first
    hover.wait_for(state="visible")
    m = re.search(r"test #(\d+)", hover.text_content())
    assert m, f"hover label does not name the test image: {hover.text_content()!r}"
    row = int(m.group(1))
    if gap >= 4:  # the point under the mouse is unambiguous: the hover must name it
        assert row == int(np.ravel(target[4])[0]), (row, target, gap)
    page.mouse.down()
    page.mouse.up()
    original_img = (
        page.locator('[data-testid="stImage"]').filter(has_text=f"test #{row} (original)").locator("img")
    )
    wait_image_loaded(original_img)
    wait_idle(page)
    no_exceptions(page)

    original = to_grey28(fetch_image(page, original_img.get_attribute("src")))
    assert np.array_equal(np.rint(original * 255).astype(np.uint8), data.x_test[row]), (
        f"the 'original' shown is not test image #{row}"
    )
    recon_img = (
        page.locator('[data-testid="stImage"]')
        .filter(has=page.get_by_text("reconstruction", exact=True))
        .locator("img")
    )
    wait_image_loaded(recon_img)
    recon = to_grey28(fetch_image(page, recon_img.get_attribute("src")))
    assert np.abs(recon - latent.reconstruct(data.x_test[row : row + 1])[0]).max() <= TOL
    label = int(data.y_test[row])
    assert page.get_by_text(re.compile(rf"Label:\s*{label}\b")).count() >= 1
    assert page.get_by_text(re.compile(rf"Index:\s*{row}\b")).count() >= 1
    # the sliders jumped to the pick's posterior mean (and the digit follows them)
    z_mean, _ = latent.encode(data.x_test[row : row + 1])
    # (the caption under the digit prints z with 3 decimals)
    assert np.allclose(decoded_z(page), z_mean[0], atol=5e-4 + 1e-6), (decoded_z(page), z_mean[0])
    slider(page, "z[0]")  # the pad follows the pick once its frame gets the run's new z
    next(f for f in page.frames if "latent_pad/index.html" in f.url).wait_for_function(
        "(z) => window.latentPad.z.every((v, i) => Math.abs(v - z[i]) < 1e-4)", arg=z_mean[0].tolist()
    )
    shown_z = np.array([slider_value(page, "z[0]"), slider_value(page, "z[1]")])
    assert np.abs(shown_z - z_mean[0]).max() <= 0.005 + 1e-6, (shown_z, z_mean[0])
    assert np.abs(shown_digit(page) - latent.decode(z_mean)[0]).max() <= TOL
    assert len(set(image_srcs(page))) > 3

    # the big scatter then rings the pick and draws its 1σ and 2σ posterior ellipses (a fragment run after
    # the images: they are painted first)
    def overlays():
        _, _, traces = scatter_points(scatter(page))
        return {t["name"]: t for t in traces if t["type"] == "scatter"}

    deadline = time.monotonic() + 20
    while "pick" not in overlays() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    names = overlays()
    assert {"pick", "1σ posterior", "2σ posterior"} <= names.keys(), names
    pick_xy = scatter(page).evaluate(
        "(root) => { const t = root.querySelector('.js-plotly-plot')._fullData.find(d => d.name === 'pick');"
        " return [t.x[0], t.y[0]]; }"
    )
    assert np.allclose(pick_xy, z_mean[0], atol=1e-5), (pick_xy, z_mean[0])
    console_log(page).assert_clean(page, what="the load and a scatter pick")


AXES_JS = (
    "(root) => { const L = root.querySelector('.js-plotly-plot')._fullLayout;"
    " return [L.xaxis.range.slice(), L.yaxis.range.slice(), L.showlegend,"
    " root.querySelectorAll('.legend .traces').length]; }"
)


def test_a_pick_does_not_rescale_the_scatter_or_grow_its_legend(app_page):
    """The axes come from the data: the pick's ring and 1σ/2σ ellipses appear without moving them."""
    page = app_page
    chart = scatter(page)
    chart.scroll_into_view_if_needed()
    before = chart.evaluate(AXES_JS)
    points, box, _ = scatter_points(chart)
    target, _ = isolated_point(points, box, rng_seed=3)
    page.mouse.move(target[2], target[3])
    page.mouse.down()
    page.mouse.up()

    def overlay_names():
        try:
            _, _, traces = scatter_points(scatter(page))
        except HarnessError:  # the chart is being redrawn (no layout for a moment)
            return set()
        return {t["name"] for t in traces if t["type"] == "scatter"}

    deadline = time.monotonic() + 30
    while "2σ posterior" not in overlay_names() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    wait_idle(page)
    assert {"pick", "1σ posterior", "2σ posterior"} <= overlay_names()
    after = scatter(page).evaluate(AXES_JS)
    assert after == before, f"the pick changed the axes or the legend: {before} -> {after}"
    assert before[3] == 10, f"the legend should list the 10 classes only: {before}"
    console_log(page).assert_clean(page, what="the load and a scatter pick")


def test_the_pick_section_stays_below_the_scatter(app_page):
    """The pick's images are sent before the pad and the scatter (a click waits for them), yet the page
    keeps its layout: the "Picked test image" section is below the scatter, not above the columns."""
    page = app_page
    chart_box = scatter(page).bounding_box()
    heading = page.get_by_role("heading", name="Picked test image").first
    heading.wait_for(state="visible")
    assert heading.bounding_box()["y"] >= chart_box["y"] + chart_box["height"], (
        heading.bounding_box(),
        chart_box,
    )
