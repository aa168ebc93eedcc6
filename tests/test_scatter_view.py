"""The scatter's "Colour, filter and find" section, run headless with AppTest on the tiny model."""

import json

import numpy as np
import pytest
from sklearn.decomposition import PCA

from explorer import scatter
from model import measures
from model.data import load_dataset
from tests.apptest import assert_clean, plotly_array, run_app, scatter_spec, untrained_model


@pytest.fixture(scope="module")
def expected(reference):
    """The per-image measures the page must show, computed here from the model itself."""
    latent, data = reference
    return measures.per_image_measures(latent, data.x_test, data.y_test)


def _rows(trace) -> np.ndarray:
    cd = trace["customdata"]
    if isinstance(cd, dict):  # a numeric (n, 1) array arrives as a typed array
        return plotly_array(cd).astype(int)
    return np.array([c[0] for c in cd], int)


def test_colour_by_a_measure_shows_the_models_own_per_image_terms(app, expected):
    for key in ("recon", "knn"):
        app.selectbox(key="scatter_colour").set_value(key).run()
        assert_clean(app)
        (lit,) = [t for t in scatter_spec(app)["data"] if t.get("marker", {}).get("colorbar")]
        rows, colours = _rows(lit), plotly_array(lit["marker"]["color"])
        assert len(rows) == len(expected[key]) == 10_000  # every test image, no sampling
        np.testing.assert_allclose(colours, expected[key][rows], rtol=1e-3, atol=1e-3)
        assert lit["marker"]["colorbar"]["title"]["text"] == measures.MEASURES[key].label
        assert measures.MEASURES[key].label in lit["hovertemplate"]
    app.selectbox(key="scatter_colour").set_value("label").run()
    assert not any(t.get("marker", {}).get("colorbar") for t in scatter_spec(app)["data"])


def test_the_label_filter_dims_the_other_labels_without_hiding_them(app):
    app.multiselect(key="scatter_labels").set_value([3, 5]).run()
    assert_clean(app)
    points = [t for t in scatter_spec(app)["data"] if t.get("customdata") is not None]
    assert len(points) == 10  # every class still drawn
    lit = {t["name"] for t in points if t["marker"]["color"] != scatter.DIM_COLOR}
    assert lit == {"3", "5"}
    dimmed = [t for t in points if t["marker"]["color"] == scatter.DIM_COLOR]
    assert len(dimmed) == 8 and all(t["marker"]["opacity"] < 0.5 for t in dimmed)
    # with a measure: the shown labels carry the colour bar, the rest is one grey trace
    app.selectbox(key="scatter_colour").set_value("kl").run()
    points = [t for t in scatter_spec(app)["data"] if t.get("customdata") is not None]
    (grey,) = [t for t in points if t["marker"].get("color") == scatter.DIM_COLOR]
    labels = app.session_state["scatter_labels"]
    assert labels == [3, 5]
    assert {c[1] for c in grey["customdata"]} == {str(c) for c in range(10)} - {"3", "5"}


def test_select_the_worst_reconstructions_in_one_click(app, expected):
    app.button(key="scatter_worst").click().run()
    assert_clean(app)
    want = measures.worst(expected["recon"], 100)
    got = app.session_state["selection"]
    assert len(got) == 100
    # the page's values are float32 from the same model: the same rows, up to ties at the cut
    assert len(set(got) & set(want)) >= 98
    assert "100" in " ".join(e.value for e in app.get("subheader") + app.get("markdown") + app.get("caption"))


def test_find_picks_by_index_or_label_and_says_why_not(app, reference):
    _, data = reference
    sevens = np.flatnonzero(data.y_test == 7)
    app.text_input(key="scatter_find").input("label 7").run()
    assert_clean(app)
    assert app.session_state["pick"] == sevens[0]
    app.button(key="scatter_next").click().run()
    assert app.session_state["pick"] == sevens[1]  # the next one with that label
    app.text_input(key="scatter_find").input("#1234").run()
    assert app.session_state["pick"] == 1234
    app.text_input(key="scatter_find").input("12345").run()
    assert app.session_state["pick"] == 1234  # unchanged
    assert any("no test image #12345" in c.value for c in app.caption)
    app.text_input(key="scatter_find").input("giraffe").run()
    assert any("No label matches 'giraffe'" in c.value for c in app.caption)


def _scatter3d(at) -> dict:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (spec,) = [sp for sp in specs if any(t.get("type") == "scatter3d" for t in sp["data"])]
    return spec


def test_3d_view_of_any_three_dimensions_or_pca_coloured_like_the_scatter(home):
    record, latent = untrained_model(latent_dim=4)
    at = run_app(pick=42)
    assert_clean(at)
    assert not [c for c in at.get("plotly_chart") if "scatter3d" in c.proto.spec]  # closed: nothing drawn
    at.session_state["s3d_open"] = True  # the expander's open state (lazy_expander reads it)
    at.run()
    assert_clean(at)
    spec = _scatter3d(at)
    points = [t for t in spec["data"] if t.get("customdata") is not None]
    assert len(points) == 10 and all(t["type"] == "scatter3d" for t in points)
    rows = np.concatenate([_rows(t) for t in points])
    xyz = np.stack([np.concatenate([plotly_array(t[a]) for t in points]) for a in "xyz"], 1)
    data = load_dataset("mnist")
    z_mean = latent.encode(data.x_test)[0]
    pca = PCA(n_components=3, random_state=0).fit(z_mean)
    want = pca.transform(z_mean)[rows]
    np.testing.assert_allclose(xyz, want, atol=1e-3)
    (ring,) = [t for t in spec["data"] if t.get("name") == "pick"]
    np.testing.assert_allclose(
        [ring["x"][0], ring["y"][0], ring["z"][0]], pca.transform(z_mean[42:43])[0], atol=1e-3
    )
    # three latent dimensions, coloured by a measure and filtered like the 2-D scatter
    at.session_state["s3d_axes"] = "three latent dimensions"
    at.session_state["s3d_dims"] = [3, 0, 2]
    at.selectbox(key="scatter_colour").set_value("radius")
    at.session_state["scatter_labels"] = [1]
    at.run()
    assert_clean(at)
    spec = _scatter3d(at)
    assert spec["layout"]["scene"]["xaxis"]["title"]["text"] == "z[0]"
    assert spec["layout"]["scene"]["zaxis"]["title"]["text"] == "z[3]"
    (lit,) = [t for t in spec["data"] if t.get("marker", {}).get("colorbar")]
    rows = _rows(lit)
    assert set(np.unique(np.asarray(at.session_state["scatter_labels"]))) == {1}
    np.testing.assert_allclose(plotly_array(lit["x"]), z_mean[rows, 0], atol=1e-5)
    np.testing.assert_allclose(
        plotly_array(lit["marker"]["color"]), np.linalg.norm(z_mean[rows], axis=1), rtol=1e-4
    )


def test_a_measure_draws_the_worst_points_on_top():
    xy = np.random.default_rng(0).normal(size=(50, 2))
    labels = np.arange(50) % 3
    values = np.random.default_rng(1).random(50)
    fig = scatter.latent_scatter(xy, labels, ["a", "b", "c"], colour=scatter.Colouring(values, "err"))
    (t,) = fig.data
    rows = np.array([c[0] for c in t.customdata], int)
    assert sorted(rows) == list(range(50))
    np.testing.assert_allclose(t.marker.color, values[rows])
    assert (np.diff(t.marker.color) >= 0).all()  # ascending: the highest (worst) painted last
    np.testing.assert_allclose(t.x, xy[rows, 0])
    fig = scatter.latent_scatter(xy, labels, ["a", "b", "c"], colour=scatter.Colouring(values, "ok", False))
    assert (np.diff(fig.data[0].marker.color) <= 0).all()


def test_training_images_too_every_mnist_image_with_its_split(app, reference, media):
    from tests.apptest import shown

    _, data = reference
    app.session_state["scatter_all"] = True
    app.session_state["pick"] = 10_005  # a training image: train #5
    app.run()
    assert_clean(app)
    points = [t for t in scatter_spec(app)["data"] if t.get("customdata") is not None]
    rows = np.concatenate([_rows(t) for t in points])
    assert len(rows) == 70_000 and len(set(rows.tolist())) == 70_000
    train = [t for t in points if t["hovertemplate"].startswith("train #")]
    assert len(train) == 10 and all(not t["showlegend"] for t in train)
    assert sum(len(_rows(t)) for t in train) == 60_000
    (orig,) = shown(app, media, "train #5 (original)", scale=6)
    assert np.array_equal(orig, data.x_train[5])
    assert any("70,000 images: 10,000 test, 60,000 training." in c.value for c in app.caption)
    app.toggle(key="scatter_all").set_value(False).run()  # back to the test set: a training pick is dropped
    assert_clean(app)
    points = [t for t in scatter_spec(app)["data"] if t.get("customdata") is not None]
    assert sum(len(_rows(t)) for t in points) == 10_000
    assert app.session_state["pick"] is None


def test_box_and_lasso_select_among_all_points_by_their_geometry():
    from explorer import events

    xy = np.array([[0, 0], [1, 1], [2, 2], [0.5, 0.2], [5, 5]], float)
    box = {"selection": {"points": [{"customdata": [0]}], "box": [{"x": [1.5, -0.1], "y": [-1, 1.2]}]}}
    assert events.rows_in_selection(box, xy) == [0, 1, 3]  # not only the one point the browser listed
    square = {"x": [-0.5, 0.7, 0.7, -0.5], "y": [-0.5, -0.5, 0.5, 0.5]}
    lasso = {"selection": {"points": [], "lasso": [square]}}
    assert events.rows_in_selection(lasso, xy) == [0, 3]
    click = {"selection": {"points": [{"customdata": [4]}], "box": [], "lasso": []}}
    assert events.rows_in_selection(click, xy) is None
    for bad in (None, {"selection": {"box": [{"x": "ab"}], "lasso": [{"x": [1], "y": [1]}]}}):
        assert events.rows_in_selection(bad, xy) is None


def test_an_overview_draws_a_sample_as_points_and_every_point_in_its_image(monkeypatch):
    n = 5000
    rng = np.random.default_rng(0)
    xy, labels = rng.normal(size=(n, 2)), rng.integers(0, 10, n)
    keep = scatter.overview_keep(n, always=[4321], limit=300)
    assert keep.sum() in (300, 301) and keep[4321]
    assert (keep == scatter.overview_keep(n, always=[4321], limit=300)).all()  # the same sample every run
    raster = np.full((50, 50, 3), 200, np.uint8)
    fig = scatter.latent_scatter(xy, labels, [str(i) for i in range(10)], keep=keep, raster=raster)
    rows = np.concatenate([np.asarray(t.customdata)[:, 0] for t in fig.data if t.customdata is not None])
    assert sorted(rows.tolist()) == np.flatnonzero(keep).tolist()
    (image,) = fig.layout.images
    x_range, _ = scatter.axis_ranges(xy.astype(np.float32))
    assert image.layer == "below" and image.x == pytest.approx(x_range[0])
    assert image.sizex == pytest.approx(x_range[1] - x_range[0])
    # a huge selection rings a capped sample
    fig = scatter.highlight_rows(fig, xy, np.arange(n), name="sel")
    assert len(fig.data[-1].x) == min(n, scatter.MAX_RINGS)


def test_past_the_point_limit_the_page_shows_an_overview(app, monkeypatch):
    monkeypatch.setenv(scatter.POINT_LIMIT_ENV, "50,000")
    app.session_state["scatter_all"] = True  # 70,000 points
    app.run()
    assert_clean(app)
    spec = scatter_spec(app)
    points = [t for t in spec["data"] if t.get("customdata") is not None]
    assert sum(len(_rows(t)) for t in points) <= scatter.OVERVIEW_POINTS + 1
    assert len(spec["layout"]["images"]) == 1 and spec["layout"]["images"][0]["source"].startswith(
        "data:image/png"
    )
    assert any("70,000 points: every one in the density image" in c.value for c in app.caption)
