"""Beyond the seed in a real Chromium: draw a digit on the canvas, upload one, download the exports.

Each check compares what the page paints or serves with the same model run in this process, so a stale
or wrong result fails, not only a missing one.
"""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from browser_harness import fetch_image, runs_done, to_grey28, wait_image_loaded, wait_runs
from PIL import Image, ImageDraw

from model.latent import LatentModel

SEEN = "what the model sees"
RECON = "reconstruction: decoder(z_mean)"
TOL = 3 / 255  # server vs. test-process decode of the same weights, after 8-bit PNG rounding


@pytest.fixture(scope="module")
def served_model(server):
    from model.data import load_dataset
    from model.store import ModelStore

    store = ModelStore(server.home / "models")
    rec = store.current()
    return (
        LatentModel.from_record(store.record(rec.id)),
        load_dataset("mnist", npz=server.home / "data" / "mnist.npz"),
        rec,
    )


def panel(page):
    return page.locator('[data-testid="stExpander"]').filter(has_text="Your own digit")


def open_panel(page):
    p = panel(page)
    p.locator("summary").first.click()
    p.locator('[data-testid="stTab"]').first.wait_for()
    return p


def shown(page, caption: str) -> np.ndarray:
    img = panel(page).locator('[data-testid="stImage"]').filter(has_text=caption).locator("img")
    wait_image_loaded(img)
    return to_grey28(fetch_image(page, img.get_attribute("src")))


def user_marker(page):
    """(x, y) of the 'your picture' trace in the scatter, or None."""
    return page.evaluate("""() => { const g = document.querySelector('.js-plotly-plot');
        const t = (g && g.data || []).find(t => t.name === 'your picture');
        return t ? [t.x[0], t.y[0]] : null; }""")


def check_through_model(page, latent):
    """The painted reconstruction is decoder(encoder(painted input)); the star sits at its z_mean."""
    seen = shown(page, SEEN)
    assert seen.max() == 1.0 and 0.02 < seen.mean() < 0.5, "the preprocessed picture looks empty or full"
    z_mean, _ = latent.encode(np.rint(seen * 255).astype(np.uint8)[None])
    expected = latent.decode(z_mean)[0]
    assert np.abs(shown(page, RECON) - expected).max() <= TOL, "the reconstruction is not of this picture"
    page.wait_for_function(
        "() => { const g = document.querySelector('.js-plotly-plot');"
        " return g && g.data && g.data.some(t => t.name === 'your picture'); }"
    )
    np.testing.assert_allclose(user_marker(page), z_mean[0], atol=1e-3)
    return seen


def test_draw_a_digit_on_the_canvas(app_page, served_model):
    latent, _, _ = served_model
    page = app_page
    p = open_panel(page)
    canvas = p.locator(".canvas-root canvas.upper-canvas")  # Fabric.js' input layer: ready to draw
    canvas.wait_for(state="visible", timeout=60_000)
    p.locator('.canvas-root button[aria-label="Reset canvas & history"]').wait_for(timeout=60_000)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box["width"] == 280 and box["height"] == 280, box
    before = runs_done(page)
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + 140, y0 + 40)
    page.mouse.down()
    for i in range(1, 21):  # a vertical stroke: a "1"
        page.mouse.move(x0 + 140, y0 + 40 + 10 * i, steps=2)
    page.mouse.up()
    wait_runs(page, before, timeout=60_000)
    assert p.locator('[data-testid="stAlert"]').filter(has_text="No digit").count() == 0
    seen = check_through_model(page, latent)
    rows, cols = np.nonzero(seen > 0.5)
    assert rows.max() - rows.min() + 1 >= 19 and cols.max() - cols.min() + 1 <= 5, "not a tall thin 1"

    before = runs_done(page)  # the bin in the canvas toolbar clears the drawing and the marker
    p.locator('.canvas-root button[aria-label="Reset canvas & history"]').click()
    wait_runs(page, before, timeout=60_000)
    page.wait_for_function(
        "() => { const g = document.querySelector('.js-plotly-plot');"
        " return g && g.data && !g.data.some(t => t.name === 'your picture'); }"
    )


def test_upload_a_photo_and_a_bad_file(app_page, served_model, tmp_path):
    from model.preprocess import to_mnist

    latent, _, _ = served_model
    page = app_page
    p = open_panel(page)
    p.get_by_role("tab", name="Upload").click()
    img = Image.new("L", (300, 400), 235)  # a dark 7 on light paper
    ImageDraw.Draw(img).line([(60, 60), (240, 60), (120, 360)], fill=20, width=24)
    path = tmp_path / "seven.jpg"
    img.save(path, "JPEG")
    before = runs_done(page)
    p.locator('input[type="file"]').set_input_files(str(path))
    wait_runs(page, before, timeout=60_000)
    seen = check_through_model(page, latent)
    assert np.abs(seen - to_mnist(path.read_bytes()) / 255.0).max() <= 1 / 255, (
        "the page's preprocessing differs from model.preprocess.to_mnist"
    )

    bad = tmp_path / "notes.png"
    bad.write_bytes(b"meeting notes, definitely not a picture")
    before = runs_done(page)
    p.locator('input[type="file"]').set_input_files(str(bad))
    wait_runs(page, before, timeout=60_000)
    alert = p.locator('[data-testid="stAlert"]').filter(has_text="not a picture")
    alert.wait_for()
    assert "Fix:" in alert.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0


def test_downloads(app_page, served_model):
    latent, data, rec = served_model
    page = app_page
    sidebar = page.locator('[data-testid="stSidebar"]')
    with page.expect_download() as dl:
        sidebar.get_by_role("button", name="Test latent means").click()
    rows = list(csv.reader(io.StringIO(open(dl.value.path()).read())))
    assert rows[0] == ["index", "label", "z0", "z1"] and len(rows) == 1 + len(data.x_test)
    z_mean, _ = latent.encode(data.x_test[:5])
    np.testing.assert_allclose(np.array([r[2:] for r in rows[1:6]], float), z_mean, rtol=1e-4, atol=1e-5)
    assert [int(r[1]) for r in rows[1:6]] == data.y_test[:5].tolist()

    with page.expect_download() as dl:
        sidebar.get_by_role("button", name="Model (zip").click()
    with zipfile.ZipFile(dl.value.path()) as zf:
        assert {n.split("/")[-1] for n in zf.namelist()} == {
            "encoder.keras",
            "decoder.keras",
            "meta.json",
            "README.txt",
        }
        assert zf.read(f"{rec.id}/decoder.keras") == (rec.path / "decoder.keras").read_bytes()

    with page.expect_download() as dl:
        page.get_by_role("button", name="PNG 28×28").click()
    png = np.asarray(Image.open(dl.value.path()))
    assert png.shape == (28, 28)
    # the z the server decoded is the latent pad's (the sliders live in its frame)
    page.wait_for_function(
        "() => [...document.querySelectorAll('iframe')].some(f => { try {"
        " return f.contentWindow.latentPad && f.contentWindow.latentPad.ready;"
        " } catch (e) { return false; } })"
    )
    z = next(f for f in page.frames if "latent_pad/index.html" in f.url).evaluate("() => window.latentPad.z")
    assert np.abs(png / 255.0 - latent.decode(np.array([z], np.float32))[0]).max() <= TOL
