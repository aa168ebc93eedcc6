"""The analysis panels (explorer/panels/) on the page, headless with AppTest and the tiny model.

What the page shows is compared with the same model run here (model.analysis on its own encodings).
"""

from __future__ import annotations

import json
import re
import threading

import numpy as np
import pytest

from explorer import views
from model import analysis, images
from model.latent import LatentModel
from tests.apptest import (
    assert_clean,
    link_app,
    pad,
    page_text,
    page_z,
    run_app,
    scatter_spec,
    server_digit,
    shown,
    untrained_model,
)


def buttons(at, prefix: str):
    return [b for b in at.button if b.key and b.key.startswith(prefix)]


# ----------------------------------------------------------------------------- neighbours


def test_neighbours_of_the_pick_in_the_full_space_and_clickable(home, media, reference):
    latent, data = reference
    row = 321
    at = run_app(pick=row, nn_open=True)
    assert_clean(at)
    z_means = latent.encode(data.x_test)[0]
    rows, dist = analysis.nearest(z_means, z_means[row], 10, exclude=row)
    for r, d in zip(rows, dist):
        (img,) = shown(at, media, f"#{r} · {data.y_test[r]} · d={d:.3g}", 3)
        assert np.array_equal(img, data.x_test[r])
    assert len(buttons(at, "nn_pick_")) == 10
    assert "nearest to test #321" in page_text(at)
    # a neighbour's button makes it the pick (and the sliders follow it)
    buttons(at, "nn_pick_")[3].click().run()
    assert_clean(at)
    assert at.session_state["pick"] == rows[3] and at.session_state["pick_prev"] == row
    assert np.allclose(page_z(at), z_means[rows[3]], atol=1e-4)


def test_closed_panels_cost_nothing_and_say_nothing(home, media):
    at = run_app(pick=5)
    assert_clean(at)
    assert not buttons(at, "nn_pick_") and not [s for s in at.slider if s.key == "trav_span"]
    assert {e.label for e in at.get("expander")} >= {
        "Nearest neighbours of the pick (in latent space)",
        "Latent traversals: what each dimension does",
    }


def test_neighbours_without_a_pick_explain_what_to_do(home):
    at = run_app(nn_open=True)
    assert_clean(at)
    assert any("Pick a test image" in i.value for i in at.info)


# ----------------------------------------------------------------------------- traversals


def test_traversal_grid_is_the_models_decoding_around_the_pick(home, media, reference):
    latent, data = reference
    row = 77
    at = run_app(pick=row, trav_open=True)
    assert_clean(at)
    (grid,) = shown(at, media, "row i decodes z + t·e_i", 3)
    z = np.round(latent.encode(data.x_test[row : row + 1])[0][0], 4)
    expected = images.to_uint8(views.image_grid(analysis.traversal(latent, z, 3.0, 9)))
    assert grid.shape == expected.shape == (2 * 29 - 1, 9 * 29 - 1)
    assert np.abs(grid.astype(int) - expected).max() <= 1
    assert "test #77's z_mean" in page_text(at)
    # fewer steps around the sliders: a new grid, still one row per dimension
    at.slider(key="trav_steps").set_value(5)
    at.radio(key="trav_from").set_value("sliders")
    at.run()
    assert_clean(at)
    (grid,) = shown(at, media, "row i decodes z + t·e_i", 3)
    assert grid.shape == (2 * 29 - 1, 5 * 29 - 1)
    assert "Centre: the sliders" in page_text(at)
    labels = [d.label for d in at.get("download_button")]
    assert "Traversal PNG" in labels and "z[0] as animated GIF" in labels


# ----------------------------------------------------------------------------- selection


def test_a_box_selection_shows_grid_counts_means_and_clears(home, media, reference):
    latent, data = reference
    rows = list(range(40, 160))  # 120 rows: the grid shows 100, "+20 more"
    at = run_app(selection=rows)
    assert_clean(at)
    text = page_text(at)
    assert "Selection: 120 test images" in text
    counts = np.bincount(data.y_test[rows], minlength=10)
    for c in range(10):
        if counts[c]:
            assert f"| {c} | {counts[c]} |" in text
    (grid,) = shown(at, media, "the first 100 by test index (+20 more)", 2)
    assert grid.shape == (5 * 29 - 1, 20 * 29 - 1)
    assert np.array_equal(grid[:28, :28], data.x_test[40]) and np.array_equal(
        grid[29:57, :28], data.x_test[60]
    )
    (mean,) = shown(at, media, "mean image", 4)
    assert np.abs(mean.astype(int) - images.to_uint8(data.x_test[rows].mean(0) / 255)).max() <= 1
    (dec,) = shown(at, media, "decoder(mean z)", 4)
    mean_z = latent.encode(data.x_test[rows])[0].mean(0)
    assert np.abs(dec.astype(int) - images.to_uint8(latent.decode(mean_z)[0])).max() <= 2
    # the selection is ringed on the scatter, and a click still picks a point alongside
    spec = scatter_spec(at)
    ring = [t for t in spec["data"] if t.get("name", "").startswith("selection")]
    assert len(ring) == 1 and ring[0]["name"] == "selection (120)"
    x = ring[0]["x"]  # plotly sends numpy arrays as base64 typed arrays
    x = np.frombuffer(__import__("base64").b64decode(x["bdata"]), x["dtype"]) if isinstance(x, dict) else x
    assert np.allclose(x, latent.encode(data.x_test[rows])[0][:, 0], atol=1e-4)
    at.session_state["pick"] = 7
    at.run()
    assert_clean(at)
    assert "Selection: 120 test images" in page_text(at) and "**Index:** 7" in page_text(at)
    assert "Download selection (CSV)" in [d.label for d in at.get("download_button")]
    next(b for b in at.button if b.key == "sel_clear").click().run()
    assert_clean(at)
    assert at.session_state["selection"] is None and "Selection:" not in page_text(at)
    assert not [t for t in scatter_spec(at)["data"] if t.get("name", "").startswith("selection")]


def test_the_scatter_callback_tells_a_box_from_a_click(home):
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from explorer.panels import selection

        for name, event in (
            (
                "box",
                {
                    "selection": {
                        "points": [{"customdata": [3]}, {"customdata": [9]}],
                        "box": [{"x": [0, 1], "y": [0, 1]}],
                        "lasso": [],
                    }
                },
            ),
            ("click", {"selection": {"points": [{"customdata": [4]}], "box": [], "lasso": []}}),
        ):
            st.session_state[name] = selection.on_scatter_event(event)

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert at.session_state["box"] is True and at.session_state["click"] is False
    assert at.session_state["selection"] == [3, 9]


def test_the_selection_csv_holds_the_selected_rows(reference):
    from model import export

    latent, data = reference
    rows = np.array([5, 17, 900])
    z = latent.encode(data.x_test[rows])[0]
    lines = export.latents_csv(z, data.y_test[rows], index=rows).decode().splitlines()
    assert lines[0] == "index,label,z0,z1" and [int(r.split(",")[0]) for r in lines[1:]] == [5, 17, 900]


# ----------------------------------------------------------------------------- links


def test_a_link_restores_pick_and_z_and_the_url_follows(home, media, reference):
    from model.store import ModelStore

    latent, _ = reference
    model_id = ModelStore().current().id
    at = link_app(model=model_id, z="0.5,-0.75", pick="1234")
    assert_clean(at)
    assert at.session_state["pick"] == 1234 and "**Index:** 1234" in page_text(at)
    assert list(page_z(at)) == pytest.approx([0.5, -0.75])
    digit = server_digit(at, media)
    assert np.abs(digit.astype(int) - images.to_uint8(latent.decode([[0.5, -0.75]])[0])).max() <= 1
    assert at.query_params == {"model": model_id, "z": "0.5,-0.75", "pick": "1234"}
    at.session_state["z0"] = 1.0  # the latent pad writes z on release
    at.run()
    assert_clean(at)
    assert at.query_params["z"] == "1,-0.75" and at.session_state["pick"] == 1234  # only read once
    # the copy box holds the same link
    at.session_state["link_open"] = True
    at.run()
    (code,) = [c.value for c in at.code if "model=" in c.value]
    assert code.endswith(f"?model={model_id}&z=1%2C-0.75&pick=1234")


def test_a_link_with_only_a_pick_moves_the_sliders_to_it(home, reference):
    latent, data = reference
    at = link_app(pick="55")
    assert_clean(at)
    z = latent.encode(data.x_test[55:56])[0][0]
    assert np.allclose(page_z(at), z, atol=1e-4)
    assert at.query_params["pick"] == "55"


def test_a_link_to_a_gone_model_says_so_and_one_to_another_model_opens_it(home):
    import dataclasses

    from model.store import ModelStore

    at = link_app(model="mnist-deleted-model", pick="3", z="1,2,3")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "The link's model ` mnist-deleted-model ` is not in this server's store" in warnings
    assert "Expected 2 latent values in the link" in warnings
    assert at.session_state["pick"] == 3  # still fits the current model
    store = ModelStore()
    old = store.current()
    latent = LatentModel.from_record(store.record(old.id))
    new = store.save(latent.encoder, latent.decoder, dataclasses.replace(old.config, seed=9))
    store.set_current(new.id)
    at = link_app(model=old.id, pick="8")
    assert not at.exception
    assert at.session_state["_stamp"].startswith(old.id + "|")  # this tab opens the link's model
    assert store.current().id == new.id  # and the default for new tabs stays
    assert at.session_state["pick"] == 8 and at.query_params["model"] == old.id


# ----------------------------------------------------------------------------- attribute vectors


def test_attribute_vector_from_4_to_9_moves_the_sliders_along_it(home, media, reference):
    latent, data = reference
    at = run_app(attr_open=True)
    at.selectbox(key="attr_from").set_value("class:4")
    at.selectbox(key="attr_to").set_value("class:9").run()
    assert_clean(at)
    z_means = latent.encode(data.x_test)[0]
    v = z_means[data.y_test == 9].mean(0) - z_means[data.y_test == 4].mean(0)
    z = page_z(at)
    row = shown(at, media, "s=", 3)
    assert len(row) == 7
    assert np.abs(row[-1].astype(int) - images.to_uint8(latent.decode(z + 1.0 * v)[0])).max() <= 2
    assert np.abs(row[0].astype(int) - images.to_uint8(latent.decode(z)[0])).max() <= 2
    assert len(shown(at, media, "the attribute path on the test set")) == 1
    at.slider(key="attr_s").set_value(0.5).run()
    next(b for b in at.button if b.key == "attr_apply").click().run()
    assert_clean(at)
    bounds = pad(at)[0]["bounds"]
    assert list(page_z(at)) == pytest.approx(np.clip(z + 0.5 * v, -np.array(bounds), bounds), abs=1e-4)


def test_default_interpolation_and_attribute_rows_show_a_change(home, media, reference):
    """On first load (no pick, sliders at the centre) neither row is ten copies of one digit."""
    latent, data = reference
    at = run_app(attr_open=True)
    assert_clean(at)
    note = next(c.value for c in at.caption if c.value.startswith("From test #"))
    start, end = (int(r) for r in re.findall(r"test #(\d+)", note))
    assert start != end and data.y_test[start] != data.y_test[end], note
    interp = shown(at, media, "t=", 3)
    assert len(interp) == at.slider(key="interp_steps").value
    # (the 1-epoch test model decodes near-identical grey blobs: "differ" here is a few grey levels; on a
    # trained model these are two different digits)
    assert not np.array_equal(interp[0], interp[-1]), "the endpoints decode to the same image"
    z_means = latent.encode(data.x_test)[0]
    assert (
        np.abs(interp[-1].astype(int) - images.to_uint8(latent.decode(z_means[end : end + 1])[0])).max() <= 2
    )
    attr = shown(at, media, "s=", 3)
    assert len(attr) == 7
    assert not np.array_equal(attr[0], attr[-1]), "the attribute row does not change"
    a, b = (int(at.selectbox(key=k).value.split(":")[1]) for k in ("attr_from", "attr_to"))
    means = np.stack([z_means[data.y_test == c].mean(0) for c in range(10)])
    pair = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(10, 1)]
    assert np.linalg.norm(means[a] - means[b]) >= 0.5 * np.median(pair), (a, b)
    # after a pick the rerun is stable: the same other-class image, the row ends at the pick
    at.session_state["pick"] = 7
    at.run()
    again = next(c.value for c in at.caption if c.value.startswith("From test #"))
    assert re.findall(r"test #(\d+)", again)[1] == "7" and at.run() and again in page_text(at)


def test_attribute_default_pair_is_the_nearest_class_apart():
    from explorer.panels.attributes import default_classes
    from explorer.panels.interpolation import other_class_row

    labels = np.repeat(np.arange(4), 5)
    centres = np.array([[0.0, 0.0], [0.1, 0.0], [3.0, 0.0], [-6.0, 0.0]])  # 0 and 1 almost coincide
    z_means = centres[labels] + np.random.default_rng(0).normal(scale=0.01, size=(20, 2))
    assert default_classes([0.02, 0.0], z_means, labels) == (0, 2)  # not 1: too close to show a change
    assert default_classes([-5.0, 0.0], z_means, labels) == (3, 0)
    row = other_class_row(labels, 3, seed=1)
    assert labels[row] != labels[3] and row == other_class_row(labels, 3, seed=1)


def test_attribute_vector_between_two_saved_selections(home, reference):
    latent, data = reference
    at = run_app(attr_open=True, selection=[1, 2, 3])
    next(b for b in at.button if b.key == "attr_save_a").click().run()
    at.session_state["selection"] = [10, 11]
    at.run()
    next(b for b in at.button if b.key == "attr_save_b").click().run()
    assert_clean(at)
    at.selectbox(key="attr_from").set_value("sel:a")
    at.selectbox(key="attr_to").set_value("sel:b")
    at.run()
    assert_clean(at)
    zm = latent.encode(data.x_test[[1, 2, 3, 10, 11]])[0]
    v = zm[3:].mean(0) - zm[:3].mean(0)
    assert f"`[{v[0]:+.2f}, {v[1]:+.2f}]`" in page_text(at)
    at.selectbox(key="attr_to").set_value("sel:a").run()
    assert any("Pick two different groups" in w.value for w in at.warning)


# ----------------------------------------------------------------------------- projections


def test_tsne_is_computed_in_the_background_then_shown_with_the_picks_ellipses(home, reference, monkeypatch):
    import threading

    from explorer import background
    from explorer.panels import projection

    _, data = reference
    record, latent = untrained_model()
    gate = threading.Event()

    def fake_tsne(z, seed, progress):  # stands in for scikit-learn (tested in test_analysis.py)
        while not gate.wait(0.1):
            progress(0.25)
        return z[:, :2] * 10 + z[:, 2:4]  # a known layout

    monkeypatch.setattr(projection, "TSNE_COMPUTE", fake_tsne)
    at = run_app(pick=42)
    assert_clean(at)
    assert scatter_spec(at)["layout"]["xaxis"]["title"]["text"].startswith("PC1")
    at.radio(key="proj_method").set_value("t-SNE").run()
    assert_clean(at)
    assert any("Computing the t-SNE of 10,000 latent means" in p.proto.text for p in at.get("progress"))
    assert scatter_spec(at)["layout"]["xaxis"]["title"]["text"].startswith("PC1"), "PCA until it is ready"
    gate.set()
    assert background.RUNNER.wait(("tsne", record.id, 0))["state"] == "done"
    at.run()
    assert_clean(at)
    spec = scatter_spec(at)
    assert spec["layout"]["xaxis"]["title"]["text"] == "t-SNE 1"
    assert "not** latent distances" in page_text(at)
    z = latent.encode(data.x_test)[0]
    tsne = z[:, :2] * 10 + z[:, 2:4]
    ring = next(t for t in spec["data"] if t.get("name") == "pick")
    assert ring["x"][0] == pytest.approx(tsne[42, 0], abs=1e-3) and ring["y"][0] == pytest.approx(
        tsne[42, 1], abs=1e-3
    )
    from tests.apptest import plotly_array

    # untrained weights: the posterior is the prior (σ ≈ 1) while the means spread ≈ 0.02, so the local
    # map's 2σ ellipse would be ~20 times the plane: no ellipses, the pick panel says why, and every
    # point drawn stays inside the plane (a ±10^7 ellipse once set the axes and hid the data)
    assert not any(t.get("name") == "1σ posterior" for t in spec["data"])
    assert "no posterior ellipses on the scatter in the t-SNE view" in page_text(at)
    assert "past the whole t-SNE plane" in page_text(at)
    lo, hi = tsne.min(0), tsne.max(0)
    for t in spec["data"]:
        x, y = (plotly_array(t.get(a, [])).astype(float) for a in "xy")
        assert np.all((x >= lo[0] - 1e-3) & (x <= hi[0] + 1e-3)), t.get("name")
        assert np.all((y >= lo[1] - 1e-3) & (y <= hi[1] + 1e-3)), t.get("name")
    # cached on disk: another session gets it at once, no job
    at2 = run_app(proj_method="t-SNE")
    assert_clean(at2)
    assert scatter_spec(at2)["layout"]["xaxis"]["title"]["text"] == "t-SNE 1" and not at2.get("progress")


# ----------------------------------------------------------------------------- comparing two models


def test_two_models_side_by_side_with_linked_highlights(home, reference):
    from explorer.panels.compare import neighbour_agreement
    from model.store import ModelStore

    _, data = reference
    at = run_app(cmp_open=True)
    assert_clean(at)
    assert any("No other stored ` mnist ` model" in i.value for i in at.info)
    _, latent = untrained_model()  # now the current model; the tiny 2-D one is the second
    at = run_app(cmp_open=True, pick=12)
    assert_clean(at)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    pair = [s for s in specs if s["layout"].get("height") == 420]
    assert len(pair) == 2
    assert (
        pair[0]["layout"]["xaxis"]["title"]["text"].startswith("PC1")
        and pair[1]["layout"]["xaxis"]["title"]["text"] == "z[0]"
    )
    for spec in pair:  # the pick starts highlighted in both
        assert [t.get("name") for t in spec["data"]].count("highlighted (1)") == 1
    other = next(s for s in at.selectbox if s.key == "cmp_other")
    z_a = latent.encode(data.x_test)[0]
    z_b = LatentModel.from_record(ModelStore().record(other.value)).encode(data.x_test)[0]
    # a box selection in one scatter rings the same rows in the other
    at.session_state["_compare"] = {"rows": [3, 4, 5]}
    at.run()
    assert_clean(at)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    pair = [s for s in specs if s["layout"].get("height") == 420]
    assert all(any(t.get("name") == "highlighted (3)" for t in s["data"]) for s in pair)
    agree = neighbour_agreement(z_a, z_b, [3, 4, 5])
    assert f"{100 * agree:.0f}% are the same in both models" in page_text(at)
    assert neighbour_agreement(z_a, z_a, [3, 4, 5]) == 1.0


def test_the_compare_charts_callback_reads_clicks_and_boxes():
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from explorer.panels import compare

        st.session_state["cmp_a"] = {"selection": {"points": [{"customdata": [8]}], "box": [], "lasso": []}}
        compare._on_chart("cmp_a")
        st.session_state["after_click"] = list(st.session_state["_compare"]["rows"])
        st.session_state["cmp_b"] = {
            "selection": {
                "points": [{"customdata": [1]}, {"customdata": [2]}],
                "box": [],
                "lasso": [{"x": [0], "y": [0]}],
            }
        }
        compare._on_chart("cmp_b")

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert at.session_state["after_click"] == [8] and at.session_state["_compare"]["rows"] == [1, 2]


def test_the_latents_and_map_are_one_shared_read_only_copy(reference):
    """Every session and run gets the same arrays (st.cache_resource), and none can change them."""
    from explorer import cache

    latent, data = reference
    images, labels = data.x_test[:300], data.y_test[:300]
    first = cache.latents("shared-test", latent, images, labels)
    again = cache.latents("shared-test", latent, images, labels)
    assert again is first  # st.cache_data would unpickle a new copy on every call
    for name, a in vars(first).items():
        assert not a.flags.writeable, name
    with pytest.raises(ValueError, match="read-only"):
        first.z_mean[0, 0] = 1.0
    base = cache.map_base("shared-test", first.xy, first.labels, (-4.0, 4.0, -4.0, 4.0), 64)
    assert cache.map_base("shared-test", first.xy, first.labels, (-4.0, 4.0, -4.0, 4.0), 64) is base
    assert not base.flags.writeable
    png = views.map_png(base, (-4.0, 4.0, -4.0, 4.0), current=[0.0, 0.0])  # drawing copies, base unchanged
    assert png[:4] == b"\x89PNG" and not base.flags.writeable


def test_an_unsavable_tsne_is_said_before_computing_and_kept_in_memory(home, monkeypatch):
    """analysis/<id> not writable: the page said "FileExistsError … Fix: free memory" after minutes of
    computing, threw the result away, and every Retry computed it again."""
    from explorer import background
    from explorer.panels import projection

    record, _ = untrained_model()
    (home / "analysis").mkdir()
    (home / "analysis" / record.id).write_text("a file where the cache directory goes")
    calls = []
    release = threading.Event()  # the first run must see the t-SNE still computing, however fast the page

    def fake_tsne(z, seed, progress):
        calls.append(1)
        release.wait(120)
        return z[:, :2] * 10 + z[:, 2:4]

    monkeypatch.setattr(projection, "TSNE_COMPUTE", fake_tsne)
    at = run_app(proj_method="t-SNE")
    assert_clean(at)
    before = [w.value for w in at.warning if "cannot be saved" in w.value]
    assert (
        before and f"analysis/{record.id} (in LATENT_EXPLORER_HOME) is a file where a directory" in before[0]
    )
    assert str(home) not in before[0]  # no server path shown to every viewer
    release.set()
    assert background.RUNNER.wait(("tsne", record.id, 0))["state"] == "done"
    at.run()
    assert_clean(at)
    assert scatter_spec(at)["layout"]["xaxis"]["title"]["text"] == "t-SNE 1", "the result was thrown away"
    after = [w.value for w in at.warning if "could not be saved" in w.value]
    assert after and "kept in this server's memory" in after[0] and "free memory" not in after[0]
    at.run()
    at2 = run_app(proj_method="t-SNE")  # another session: the same result, not a new computation
    assert scatter_spec(at2)["layout"]["xaxis"]["title"]["text"] == "t-SNE 1"
    assert len(calls) == 1, f"computed {len(calls)} times"


def test_a_tsne_can_be_cancelled_and_waits_its_turn_behind_other_work(home, monkeypatch):
    import threading

    from explorer import background
    from explorer.panels import projection

    record, _ = untrained_model()
    stopped = threading.Event()

    def endless_tsne(z, seed, progress):
        try:
            while True:
                progress(0.1)
                __import__("time").sleep(0.05)
        finally:
            stopped.set()

    monkeypatch.setattr(projection, "TSNE_COMPUTE", endless_tsne)
    gate = threading.Event()
    background.RUNNER.submit("other", lambda progress: gate.wait(60), "another-session", "quality of x")
    at = run_app(proj_method="t-SNE")
    assert_clean(at)
    key = ("tsne", record.id, 0)
    assert background.RUNNER.status(key)["state"] == "queued"  # one task at a time per server
    assert any("1 task(s) first (quality of x)" in p.proto.text for p in at.get("progress"))
    gate.set()
    for _ in range(100):
        if background.RUNNER.status(key)["state"] == "running":
            break
        __import__("time").sleep(0.1)
    at.run()
    assert any("Computing the t-SNE" in p.proto.text for p in at.get("progress"))
    at.button(key="proj_cancel").click().run()
    assert_clean(at)
    assert background.RUNNER.wait(key, timeout=30)["state"] == "cancelled" and stopped.wait(10)
    assert at.session_state["proj_method"] == "PCA"
    assert scatter_spec(at)["layout"]["xaxis"]["title"]["text"].startswith("PC1")
