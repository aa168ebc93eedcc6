"""The user-digit panel (explorer/panels/user_digit.py) in the running page (AppTest): upload, draw."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from explorer import cache, context
from explorer.panels import user_digit
from model.latent import LatentModel
from tests.apptest import APP, errors, page_z, plotly_array, png, seven, traces

TIMEOUT = 120


def test_page_shows_the_extras(app):
    labels = [e.label for e in app.expander]
    assert any("Your own digit" in lab for lab in labels)
    assert [t.label for t in app.tabs][:2] == ["Draw", "Upload"]
    downloads = [b.label for b in app.get("download_button")]
    for want in (
        "PNG 28×28",
        "PNG 280×280",
        "Test latent means (CSV, 10,000 rows)",
        "Model (zip: both .keras files)",
        "encoder.keras",
        "decoder.keras",
    ):
        assert want in downloads
    assert "your picture" not in traces(app)
    assert any("Model quality" in s.value for s in app.subheader)
    assert not errors(app)


def test_upload_marks_the_digit_with_its_posterior(app):
    app.file_uploader(key="user_upload").set_value(("seven.png", seven(), "image/png")).run()
    assert not app.exception and not errors(app)
    ud = app.session_state["user_digit"]
    assert ud["source"] == "upload seven.png"
    assert ud["image"].shape == (28, 28) and ud["image"].dtype == np.uint8 and ud["image"].max() == 255

    # The marker sits at the model's z_mean of the preprocessed picture.
    from model.preprocess import to_mnist
    from model.store import ModelStore

    model = LatentModel.from_record(ModelStore().record(ModelStore().current().id))
    z_mean, z_log_var = model.encode(to_mnist(seven())[None])
    t = traces(app)
    star = t["your picture"]
    assert star["type"] == "scattergl" and "customdata" not in star  # never a pick
    np.testing.assert_allclose([star["x"][0], star["y"][0]], z_mean[0], atol=1e-4)
    one = t["your 1σ posterior"]
    ex_, ey = (np.asarray(plotly_array(one[a])) for a in ("x", "y"))
    sigma = np.exp(0.5 * z_log_var[0])
    # Axis-aligned 2-D posterior: the 1σ ellipse spans z_mean ± σ on each axis.
    np.testing.assert_allclose([ex_.max() - ex_.min(), ey.max() - ey.min()], 2 * sigma, rtol=1e-3)
    two = t["your 2σ posterior"]
    assert np.ptp(plotly_array(two["x"])) == pytest.approx(2 * np.ptp(ex_), rel=1e-3)

    md = " ".join(m.value for m in app.markdown)
    assert "z_mean:" in md and "Nearest test images in latent space" in md
    captions = [i.caption for el in app.get("image") for i in el.proto.imgs]
    assert any("what the model sees" in c for c in captions)
    assert any("reconstruction" in c for c in captions)


def test_move_sliders_and_clear(app):
    app.file_uploader(key="user_upload").set_value(("seven.png", seven(), "image/png")).run()
    star = traces(app)["your picture"]
    app.button(key="user_to_sliders").click().run()
    assert not app.exception
    assert app.session_state["z0"] == pytest.approx(star["x"][0], abs=1e-6)
    assert app.session_state["z1"] == pytest.approx(star["y"][0], abs=1e-6)
    # the latent pad (and so the decoded digit) follows; the live map, not the scatter, marks them
    assert list(page_z(app)) == pytest.approx([star["x"][0], star["y"][0]], abs=1e-6)

    app.button(key="user_clear").click().run()
    assert app.session_state["user_digit"] is None
    assert "your picture" not in traces(app)


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("notes.png", b"this is text, not a picture", "upload notes.png: This file is not a picture"),
        ("blank.png", png(Image.new("RGB", (64, 64), "white")), "No digit found"),
        ("truncated.jpg", png(Image.new("L", (300, 300), 90), "JPEG")[:500], "damaged|not a picture"),
    ],
)
def test_bad_uploads_get_a_clear_message(app, name, data, words):
    app.file_uploader(key="user_upload").set_value((name, data, "image/png")).run()
    assert not app.exception
    msgs = errors(app)
    assert len(msgs) == 1 and "Fix:" in msgs[0]
    import re

    assert re.search(words, msgs[0]), msgs
    assert app.session_state["user_digit"] is None
    assert "your picture" not in traces(app)


def test_canvas_drawing_through_session_state(app):
    """A canvas gives RGBA arrays; `user_image` feeds one in as a drawing would."""
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[40:240, 130:150] = 255  # a white "1" on a transparent canvas
    app.session_state["user_image"] = rgba
    app.run()
    assert not app.exception and not errors(app)
    assert "user_image" not in app.session_state  # consumed once
    img = app.session_state["user_digit"]["image"]
    rows, cols = np.nonzero(img > 127)
    assert rows.max() - rows.min() + 1 == 20  # a tall 1: 20 px high, as in MNIST
    assert "your picture" in traces(app)


def test_overlay_and_projection_helpers():
    import plotly.graph_objects as go

    fig = user_digit.overlay_user_digit(go.Figure(), [1.0, 2.0], [np.zeros((5, 2))])
    assert [t.name for t in fig.data] == ["your 1σ posterior", "your picture"]
    # An 8-D posterior seen through a 2-D PCA plane: W diag(var) W^T.
    w = np.zeros((2, 8))
    w[0, 0] = w[1, 1] = 1.0
    cov = context.projected_cov(w, np.log(np.arange(1, 9, dtype=float)))
    np.testing.assert_allclose(cov, np.diag([1.0, 2.0]))
    rows = user_digit.neighbours(np.array([[0, 0], [5, 5], [1, 1], [0.1, 0]]), [0, 0], k=3)
    assert rows.tolist() == [0, 3, 2]


def test_fashion_model_with_8_latent_dims(home):
    """Fashion-MNIST, z in R^8: the picture is framed like Fashion-MNIST, its marker and ellipse are the
    PCA projections of its 8-D posterior, and the quality panel works in 8-D."""
    from streamlit.testing.v1 import AppTest

    from model.preprocess import prepare
    from model.store import ModelStore
    from model.train import train
    from model.vae import VAEConfig

    store = ModelStore()
    model, rec, _ = train(
        VAEConfig(dataset="fashion_mnist", latent_dim=8, epochs=1, limit=512), store=store, verbose=0
    )
    assert store.current().id == rec.id
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert any("Your own clothing item" in e.label for e in at.expander)

    shirt = Image.new("RGB", (400, 300), "white")
    ImageDraw.Draw(shirt).polygon(
        [(100, 20), (300, 20), (380, 120), (300, 120), (300, 280), (100, 280), (100, 120), (20, 120)],
        fill=(40, 40, 90),
    )
    data = png(shirt)
    at.file_uploader(key="user_upload").set_value(("shirt.png", data, "image/png")).run()
    assert not at.exception and not errors(at)
    seen = at.session_state["user_digit"]["image"]
    np.testing.assert_array_equal(seen, prepare(data, "fashion_mnist"))
    rows, cols = np.nonzero(seen > 127)
    assert cols.max() - cols.min() + 1 == 28  # Fashion-MNIST framing: longest side 28 px

    ex = cache.load_explorer(store, rec)
    z_mean, z_log_var = model.encode(seen[None])
    t = traces(at)
    np.testing.assert_allclose(
        [t["your picture"]["x"][0], t["your picture"]["y"][0]], ex.project(z_mean[0]), atol=1e-4
    )
    w = ex.latents.proj_components.astype(np.float64)
    cov = (w * np.exp(z_log_var[0].astype(np.float64))) @ w.T
    ring = np.stack([plotly_array(t["your 1σ posterior"][a]) for a in ("x", "y")], 1) - ex.project(z_mean[0])
    # every point of the 1σ contour satisfies p^T cov^-1 p = 1
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", ring, np.linalg.inv(cov), ring), 1.0, rtol=1e-3)


def test_without_the_canvas_package_the_draw_tab_says_how_to_get_it(home, monkeypatch):
    import sys

    from streamlit.testing.v1 import AppTest

    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", None)  # `import` now raises ImportError
    st_canvas, why = user_digit.canvas_component()
    assert st_canvas is None and "pip install streamlit-drawable-canvas==0.13.0" in why
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("pip install streamlit-drawable-canvas" in i.value for i in at.info)
    assert len(at.file_uploader) == 1  # uploading still works
