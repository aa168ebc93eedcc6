"""The explorer page, run headless with Streamlit's AppTest on the tiny trained model.

Images are checked by content: a spy on Streamlit's in-memory media storage keeps the bytes of every
image the page shows, so a test can decode the PNG and compare it with the model's own output.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer import events, scatter, views
from explorer.panels.common import fmt
from model import images
from model.latent import LatentModel
from tests.apptest import (
    DIGIT_CAPTION,
    assert_clean,
    pad,
    page_text,
    run_app,
    scatter_spec,
    server_digit,
    shown,
    sliders,
)

# ----------------------------------------------------------------------------- the page


def test_page_renders_with_the_model(home, media, reference):
    latent, data = reference
    at = run_app()
    assert_clean(at)
    assert "Latent explorer" in at.title[0].value
    assert at.get("plotly_chart"), "no scatter"
    # the latent pad (decoding in the browser) shows the session's z; the weights go once per session
    args, blobs = pad(at)
    assert args["d"] == 2 and np.allclose(args["z"], sliders(at)) and len(args["bounds"]) == 2
    n_weights = sum(w.size for w in latent.decoder.get_weights())
    assert len(blobs["weights"]) == 4 * n_weights and args["background"].startswith("data:image/png")
    assert not [s for s in at.slider if s.key and s.key.startswith("z")], "server sliders beside the pad"
    # one digit and one z: the pad paints the live digit and writes its z in the browser; the server's
    # decode of the same z is the PNG download, not a second digit or z on the page
    assert not shown(at, media, DIGIT_CAPTION), "a second (server) digit beside the pad"
    assert "z = `[" not in page_text(at), "a second z beside the pad's"
    digit = server_digit(at, media)
    expected = images.to_uint8(latent.decode(sliders(at))[0])
    assert digit.shape == (28, 28) and np.abs(digit.astype(int) - expected).max() <= 1
    # sidebar: config and quality of the current model
    text = page_text(at)
    assert "reconstruction" in text and "latent size" in text
    timings = at.session_state["_timings"]
    assert timings["decode_ms"] > 0 and timings["panel_ms"] >= timings["decode_ms"]
    at.run()
    args2, blobs2 = pad(at)
    assert "weights" not in blobs2 and "spec" not in args2, "the weights were sent again on a rerun"
    assert args2["rev"] == args["rev"], "a rerun without a move told the browser to jump"


def test_moving_a_slider_changes_the_decoded_digit(home, media, reference):
    latent, _ = reference
    at = run_app()
    before = server_digit(at, media)
    (map_before,) = shown(at, media, "the sliders (red ×)")
    spec_before = scatter_spec(at)
    rev = pad(at)[0]["rev"]
    bound = pad(at)[0]["bounds"][0]
    target = round(-bound + 0.5 * bound, 2)
    at.session_state["z0"] = target  # what the pad writes on release (AppTest cannot drag inside it)
    at.run()
    assert_clean(at)
    after = server_digit(at, media)
    z = sliders(at)
    assert z[0] == pytest.approx(target)
    assert not np.array_equal(before, after), "the digit did not change"
    assert np.abs(after.astype(int) - images.to_uint8(latent.decode(z)[0])).max() <= 1
    assert "decoded in" in page_text(at) and "z = `[" not in page_text(at)
    # the live map moved its marker; the 10k-point scatter is unchanged, so the browser keeps it
    (map_after,) = shown(at, media, "the sliders (red ×)")
    assert map_after.shape == (200, 200) and not np.array_equal(map_before, map_after)
    assert scatter_spec(at) == spec_before, "a slider move rebuilt the big scatter"
    args = pad(at)[0]
    assert args["z"][0] == pytest.approx(target) and args["rev"] > rev, "the pad did not follow the server"


def test_a_pick_shows_its_original_reconstruction_and_posterior(home, media, reference):
    latent, data = reference
    row = 1234
    at = run_app(pick=row)
    assert_clean(at)
    (original,) = shown(at, media, f"test #{row} (original)", 6)
    assert np.array_equal(original, data.x_test[row]), "the original is not test image #1234"
    (recon,) = shown(at, media, "reconstruction", 6)
    expected = images.to_uint8(latent.reconstruct(data.x_test[row : row + 1])[0])
    assert np.abs(recon.astype(int) - expected).max() <= 1
    z_mean, z_log_var = latent.encode(data.x_test[row : row + 1])
    text = page_text(at)
    assert f"**Label:** {data.y_test[row]}" in text and f"**Index:** {row}" in text
    assert events.picked_row([{"customdata": {"0": row}}]) == row  # the click path's decoding
    # the sliders moved to the posterior mean, and σ = exp(log_var / 2) is shown
    assert np.allclose(sliders(at), z_mean[0], atol=1e-4)
    sigma = np.exp(0.5 * z_log_var[0])
    assert "[" + ", ".join(f"{s:+.2f}" for s in sigma) + "]" in text
    # a second pick: the first becomes the interpolation's start, the path ends at the new pick
    at.session_state["pick"] = 7
    at.run()
    assert_clean(at)
    assert at.session_state["pick_prev"] == row
    path = shown(at, media, "t=", 3)
    assert len(path) == at.slider(key="interp_steps").value
    z_end = latent.encode(data.x_test[7:8])[0][0]
    assert np.abs(path[0].astype(int) - images.to_uint8(latent.decode(z_mean)[0])).max() <= 1
    assert np.abs(path[-1].astype(int) - images.to_uint8(latent.decode(z_end)[0])).max() <= 1


def test_an_out_of_range_pick_is_refused_with_a_message(home):
    at = run_app(pick=10_000)
    assert not at.exception
    assert any("Expected a test image index in [0, 9999]" in e.value for e in at.error)
    assert at.session_state["pick"] is None


def test_manifold_and_prior_samples_appear(home, media, reference):
    latent, _ = reference
    at = run_app()
    assert_clean(at)
    big = [a for a in shown(at, media, "") if a.shape == (840, 840)]
    assert len(big) == 1, "no 30x30 manifold"
    span = at.slider(key="manifold_span").value
    expected = images.to_uint8(latent.manifold(n=30, span=span))
    assert np.abs(big[0].astype(int) - expected).max() <= 1
    prior = shown(at, media, "[", 3)  # prior captions are z vectors "[+0.12, -0.50]"
    assert len(prior) == 10 and all(p.shape == (28, 28) for p in prior)
    # "Sample from prior" draws new digits; a new span redraws the manifold
    at.button[[b.label for b in at.button].index("Sample from prior")].click()
    at.slider(key="manifold_span").set_value(1.5)
    at.run()
    assert_clean(at)
    assert at.session_state["_prior"]["seed"] == 1
    again = shown(at, media, "[", 3)
    assert len(again) == 10 and not all(np.array_equal(a, b) for a, b in zip(prior, again))
    big2 = [a for a in shown(at, media, "") if a.shape == (840, 840)]
    assert np.abs(big2[0].astype(int) - images.to_uint8(latent.manifold(n=30, span=1.5))).max() <= 1


def test_without_the_pad_the_server_sliders_work_and_say_why(home, media, reference, monkeypatch):
    latent, _ = reference
    monkeypatch.setenv("LATENT_EXPLORER_PAD", "0")
    at = run_app()
    assert_clean(at)
    assert not at.get("component_instance")
    assert "in-browser decoder is turned off (LATENT_EXPLORER_PAD=0)" in page_text(at)
    z0 = at.slider(key="z0")
    target = round(z0.min + 0.25 * (z0.max - z0.min), 2)
    z0.set_value(target)
    at.run()
    assert_clean(at)
    assert sliders(at)[0] == pytest.approx(target)
    (digit,) = shown(at, media, DIGIT_CAPTION, 10)
    assert np.abs(digit.astype(int) - images.to_uint8(latent.decode(sliders(at))[0])).max() <= 1
    z = sliders(at)  # without the pad the server's digit is the live one, with its z (the page's format)
    assert f"ms on the server · z = `{fmt(z)}`" in page_text(at)


def test_eight_latent_dims_get_eight_sliders_and_a_pca_scatter(home, media, reference):
    from model.store import ModelStore
    from model.vae import VAEConfig, build_decoder, build_encoder

    _, data = reference
    config = VAEConfig(latent_dim=8, epochs=1, limit=256)  # untrained weights are enough for the UI
    store = ModelStore()
    record = store.save(build_encoder(config), build_decoder(config), config)
    latent = LatentModel.from_record(store.record(record.id))
    row = 42
    at = run_app(pick=row)
    assert_clean(at)
    args = pad(at)[0]
    assert args["d"] == 8 and len(args["bounds"]) == 8 and args["extent"] is None  # 8 sliders, no 2-D pad
    z_sliders = sliders(at, 8)
    assert np.allclose(args["z"], z_sliders)
    z_mean = latent.encode(data.x_test[row : row + 1])[0][0]
    assert np.allclose(z_sliders, z_mean, atol=1e-4), "the sliders did not move to the pick"
    digit = server_digit(at, media)
    assert np.abs(digit.astype(int) - images.to_uint8(latent.decode(z_sliders)[0])).max() <= 1
    spec = scatter_spec(at)
    assert spec["layout"]["xaxis"]["title"]["text"].startswith("PC1 of z")
    assert {s.label for s in at.selectbox} >= {"Horizontal axis", "Vertical axis"}


# ----------------------------------------------------------------------------- model changes and bad state


def test_a_new_default_model_is_where_new_tabs_open_and_open_tabs_keep_theirs(home):
    import dataclasses

    from model.store import ModelStore

    at = run_app()
    assert_clean(at)
    store = ModelStore()
    old = store.current()
    latent = LatentModel.from_record(store.record(old.id))
    new = store.save(
        latent.encoder,
        latent.decoder,
        dataclasses.replace(old.config, seed=7),
        test_metrics={"loss": 1.0, "reconstruction_loss": 0.5, "kl_loss": 0.5},
    )
    assert store.current_id() == new.id  # better than the default: the new default
    at.run()  # an open tab keeps exploring its model
    assert_clean(at)
    assert at.session_state["_stamp"].startswith(old.id + "|")
    fresh = run_app()  # a new tab opens on the default, without a restart
    assert_clean(fresh)
    assert fresh.session_state["_stamp"].startswith(new.id + "|"), "still exploring the old model"
    assert "| 1.00 | 0.50 | 0.50 |" in page_text(fresh)
    # the model picker switches this tab only, and leaves the default alone
    picker = next(s for s in fresh.selectbox if s.label == "Model to explore")
    picker.set_value(old.id).run()
    assert_clean(fresh)
    assert fresh.session_state["_stamp"].startswith(old.id + "|")
    assert store.current().id == new.id


def test_no_model_shows_the_first_run_screen(empty_home):
    at = run_app()
    assert not at.exception
    assert not at.get("plotly_chart")
    assert "No trained model" in page_text(at)


def test_corrupt_model_files_give_a_clear_message(home):
    from model.store import ModelStore

    store = ModelStore()
    record = store.current()
    (record.path / "encoder.keras").write_bytes(b"not a zip archive")
    at = run_app()
    assert not at.exception, "a traceback instead of a message"
    msg = " ".join(e.value for e in at.error)
    assert record.id in msg and "not a valid .keras file" in msg and "Fix:" in msg
    assert any("retrain" in i.value.lower() for i in at.info)
    # the offered fix works: deleting the broken model leads to the first-run screen
    delete = next(b for b in at.button if b.label.startswith("Delete the broken model"))
    delete.click().run()
    assert not at.exception
    assert not record.path.exists()
    assert "No trained model" in page_text(at)


def test_corrupt_meta_json_is_named_not_hidden(home):
    from model.store import ModelStore

    record = ModelStore().current()
    (record.path / "meta.json").write_text("{ truncated")
    at = run_app()
    assert not at.exception
    assert any("corrupt meta.json" in e.value and record.id in e.value for e in at.error)
    assert "No trained model" in page_text(at)


def test_a_missing_dataset_gives_a_clear_message(home):
    from model.store import ModelStore

    record = ModelStore().current()
    meta = json.loads((record.path / "meta.json").read_text())
    meta["config"]["dataset"] = "kmnist"
    (record.path / "meta.json").write_text(json.dumps(meta))
    at = run_app()
    assert not at.exception
    assert any("'kmnist' is not built in" in e.value and "Fix:" in e.value for e in at.error)


# ------------------------------------------------------------------------------ the sidebar


def _second_model(store):
    """Copy the current model under a new id (an older model to fall back to)."""
    import shutil

    rec = store.current()
    other = store.root / (rec.id + "-older")
    shutil.copytree(rec.path, other)
    meta = json.loads((other / "meta.json").read_text())
    meta["created"] -= 3600
    (other / "meta.json").write_text(json.dumps(meta))
    return rec, store.record(other.name)


def sidebar_text(at: AppTest) -> str:
    return "\n".join(
        str(e.value)
        for kind in ("error", "warning", "caption", "markdown", "success")
        for e in at.sidebar.get(kind)
    )


@pytest.mark.parametrize(
    "meta",
    [
        "garbage",
        '{"format": 1, "con',
        "[1, 2]",
        None,
        '{"format": 1, "config": {"loss": "l1"}}',
        '{"format": 99, "config": {}}',
    ],
)
def test_an_unreadable_current_model_is_named_with_delete_while_another_is_explored(home, meta):
    """Before the fix the page silently explored another model."""
    from model.store import ModelStore

    store = ModelStore()
    broken, other = _second_model(store)
    if meta is None:
        (broken.path / "meta.json").unlink()
    else:
        (broken.path / "meta.json").write_text(meta)
    at = run_app()
    assert not at.exception
    [err] = [e.value for e in at.sidebar.error]
    assert f"default model **` {broken.id} `** cannot be read" in err
    assert f"New tabs open on **` {other.id} `** instead" in err
    assert "Fix:" in err
    assert other.label in " ".join(c.value for c in at.caption)  # the page explores the readable one
    at.button(key=f"delete_{broken.id}").click().run()
    assert f"Delete **` {broken.id} `** for good?" in sidebar_text(at)
    at.button(key=f"delete_yes_{broken.id}").click().run()
    assert not at.exception and not broken.path.exists() and other.path.exists()
    assert f"Deleted the model ` {broken.id} `" in sidebar_text(at) and not at.sidebar.error


def test_created_1e300_does_not_take_the_page_down(home):
    from model.store import ModelStore

    store = ModelStore()
    bad, other = _second_model(store)
    meta = json.loads((bad.path / "meta.json").read_text())
    meta["created"] = 1e300
    (bad.path / "meta.json").write_text(json.dumps(meta))
    at = run_app()
    assert not at.exception, [e.value for e in at.exception]  # was: OverflowError, no picker, no Delete
    assert "expected created to be a time" in at.sidebar.error[0].value
    assert at.selectbox(key="model_pick").options == [other.label]
    assert at.button(key=f"delete_{bad.id}")
    assert at.get("plotly_chart")  # the explorer itself is there


def test_delete_from_the_sidebar_asks_first_and_the_store_size_is_shown(home):
    from model.store import ModelStore

    store = ModelStore()
    current, older = _second_model(store)
    at = run_app()
    text = sidebar_text(at)
    assert "Store: 2 models" in text and "MB on disk" in text
    at.button(key=f"delete_{current.id}").click().run()
    at.button(key=f"delete_no_{current.id}").click().run()  # "Keep it"
    assert current.path.exists() and "for good?" not in sidebar_text(at)
    at.button(key=f"delete_{current.id}").click().run()
    at.button(key=f"delete_yes_{current.id}").click().run()
    assert not at.exception and not current.path.exists()
    assert store.current().id == older.id and store.current_id() == older.id
    assert "Store: 1 model," in sidebar_text(at)
    assert older.label in " ".join(c.value for c in at.caption)


def test_a_model_trained_on_a_user_npz_is_explorable(home, tmp_path, capsys):
    """Before the fix "Unknown dataset 'npz-…'"; now its test set is kept in the model directory."""
    from model.data import load_dataset
    from model.store import ModelStore
    from model.train import main

    mnist = load_dataset("mnist")
    npz = tmp_path / "my digits.npz"
    np.savez(
        npz,
        x_train=mnist.x_train[:256],
        y_train=mnist.y_train[:256],
        x_test=mnist.x_test[:300],
        y_test=mnist.y_test[:300],
    )
    assert main(["--npz", str(npz), "--epochs", "1", "--no-files"]) == 0, capsys.readouterr().err
    store = ModelStore()
    rec = store.current()
    assert rec.config.dataset.startswith("npz-my digits-") and (rec.path / "test.npz").is_file()
    assert rec.extra["npz"] == str(npz.resolve()) and len(rec.extra["npz_sha256"]) == 64
    npz.unlink()  # the page needs only what is kept with the model
    at = run_app()
    assert_clean(at)
    assert "300 test images" in " ".join(c.value for c in at.caption)
    assert scatter_spec(at)["data"]  # the test-set scatter is drawn


# ----------------------------------------------------------------------------- pure builders


def test_scatter_axes_come_from_the_data_and_no_overlay_moves_them():
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(2000, 2)).astype(np.float32) * (3.0, 1.5)
    xy[0] = (400.0, -300.0)  # one far outlier does not squash the cloud
    labels = np.arange(2000) % 10
    names = [str(i) for i in range(10)]

    def ranges(fig):
        return list(fig.layout.xaxis.range), list(fig.layout.yaxis.range), fig.layout.uirevision

    plain = scatter.latent_scatter(xy, labels, names)
    x_range, y_range, _ = ranges(plain)
    assert plain.layout.xaxis.autorange is False and plain.layout.yaxis.autorange is False
    assert -12 < x_range[0] < -7 and 7 < x_range[1] < 12, x_range  # ~±3σ of N(0, 3²) plus a margin
    assert -6 < y_range[0] < -3.5 and 3.5 < y_range[1] < 6, y_range
    inside = (
        (xy[:, 0] > x_range[0]) & (xy[:, 0] < x_range[1]) & (xy[:, 1] > y_range[0]) & (xy[:, 1] < y_range[1])
    )
    assert inside.mean() > 0.99

    huge = views.sigma_ellipse(xy[5], np.diag([4e14, 4e14]), 2)  # a ±2·10⁷ ellipse (a bad local map)
    picked = scatter.latent_scatter(xy, labels, names, picked=xy[5], ellipses=[huge / 2, huge])
    picked = scatter.highlight_rows(picked, xy, [1, 2, 3])
    assert ranges(picked) == ranges(plain), "an overlay moved the axes"
    shown = [t.name for t in picked.data if t.showlegend is not False]
    assert shown == [t.name for t in plain.data if t.showlegend is not False] == names, shown
    moved = scatter.latent_scatter(xy * 2, labels, names)  # other data (model, projection): new axes, view
    assert ranges(moved)[0] != x_range and ranges(moved)[2] != ranges(plain)[2]


def test_views_upscale_png_ellipse_and_scatter():
    img = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    big = images.upscale(img, 4)
    assert big.shape == (112, 112) and big.dtype == np.uint8
    assert np.array_equal(big[::4, ::4], images.to_uint8(img)) and np.array_equal(
        big[1::4, 3::4], big[::4, ::4]
    )
    png = views.to_png(img, 2)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)))[::2, ::2], images.to_uint8(img))
    with pytest.raises(ValueError, match="Expected an integer scale"):
        images.upscale(img, 0)

    e = views.sigma_ellipse((1.0, -2.0), (0.5, 2.0), n_std=2)
    assert np.allclose(np.abs(e - (1.0, -2.0)).max(axis=0), (1.0, 4.0), atol=1e-3)  # 2 sigma radii
    rot = np.array([[2.0, 1.0], [1.0, 2.0]])  # eigenvalues 1 and 3 along the diagonals
    r = np.linalg.norm(views.sigma_ellipse((0, 0), rot), axis=1)
    assert r.min() == pytest.approx(1.0, abs=1e-2) and r.max() == pytest.approx(np.sqrt(3), abs=1e-2)

    xy = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    labels = np.arange(50) % 3
    fig = scatter.latent_scatter(xy, labels, ["a", "b", "c"], picked=xy[4], ellipses=[e])
    gl = [t for t in fig.data if t.type == "scattergl"]
    assert [t.name for t in gl] == ["a", "b", "c"]
    rows = np.concatenate([np.asarray(t.customdata).ravel() for t in gl])
    assert sorted(rows.tolist()) == list(range(50))
    for t in gl:  # each point's customdata is its row: its position is xy[row]
        assert np.allclose(np.c_[t.x, t.y], xy[np.asarray(t.customdata).ravel()])
        # a click does not restyle (dim) the 10k points: the ring marks the pick
        assert t.selected.marker.opacity == t.unselected.marker.opacity == t.marker.opacity
    assert {t.name for t in fig.data} >= {"pick", "1σ posterior"}
    assert events.picked_row([{"x": 0}, {"customdata": [9]}]) == 9
    assert events.picked_row([{"customdata": 3}, {"x": 1}]) == 3  # overlays have no customdata
    assert events.picked_row([]) is None

    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert legend == ["a", "b", "c"], f"overlays must stay out of the legend: {legend}"

    extent = views.map_extent(xy, bounds=[3.0, 2.0])
    assert extent == (-3.0, 3.0, -3.0, 3.0)  # square: the same scale on both axes
    base = views.latent_map(xy, labels, extent, size=61)
    assert base.shape == (61, 61, 3) and (base != 255).any()
    red = np.asarray(Image.open(io.BytesIO(views.map_png(base, extent, current=(1.5, -1.5)))))
    assert tuple(red[45, 45]) == (214, 39, 40), "the red cross is not at z = (1.5, -1.5)"
    assert tuple(red[15, 15]) == tuple(base[15, 15])


def test_browser_values_are_validated_and_the_pads_error_is_text_with_a_retry(home):
    from explorer.components import latent_pad as lp

    # selection events: anything that is not a row is ignored, never raised on
    nan, inf = float("nan"), float("inf")
    for cd in (nan, inf, -inf, 2.5, -1, 1e300, "7", True, None, [nan], {"0": inf}, [], {}):
        assert events.picked_row([{"customdata": cd}]) is None, cd
    assert events.picked_row([{"customdata": [4]}, {"customdata": nan}]) == 4  # the last valid one
    assert events.picked_row([{"customdata": 7.0}]) == 7
    for points in (None, 5, "abc", {"customdata": 3}, [1, "x", None]):
        assert events.picked_row(points) is None
    for event in (None, [], 5, "x", {"selection": 3}, {"selection": {"points": 3, "box": [1]}}):
        assert events.selected_rows(event) in (None, [])
        assert events.selection_points(event) == []
    box = {
        "selection": {
            "box": [{}],
            "points": [{"customdata": [1]}, {"customdata": nan}, "x", {"customdata": 1}],
        }
    }
    assert events.selected_rows(box) == [1]
    # the pad's z and error values
    assert lp.browser_z([0.5, -1], 2) == [0.5, -1.0]
    for z in ([nan, 0], [inf, 0], [10**400, 0], [True, 0], ["1", 0], [0], [0, 0, 0], "0,0", None, {"0": 1}):
        assert lp.browser_z(z, 2) is None, z
    assert lp.browser_text("a\nb\x00c" + "x" * 1000) == "a b c" + "x" * 295
    assert lp.browser_text({"a": [1]}) == "{'a': [1]}"
    # an error from the browser is shown as plain text (no markdown: no link, no image), with a retry
    evil = "**bold** [x](http://127.0.0.1:1/beacon) ![i](http://127.0.0.1:1/i.png) `code"
    at = run_app(_latent_pad={"sent": None, "known": None, "rev": 0, "error": lp.browser_text(evil)})
    assert_clean(at)
    assert any(evil in t.value for t in at.text), [t.value for t in at.text]
    assert "beacon" not in page_text(at), "the browser's words went through markdown"
    assert not at.get("component_instance"), "the pad is shown although it failed"
    at.button(key="latent_pad_retry").click().run()
    assert_clean(at)
    assert at.get("component_instance"), "no retry of the in-browser decoder"
    assert at.session_state["_latent_pad"]["error"] is None


def test_z_is_written_one_way_everywhere():
    assert fmt([0.1549, -0.0004]) == "[+0.15, +0.00]"  # never "-0.00"
    assert fmt(np.array([-1.2, 3.0], np.float32)) == "[-1.20, +3.00]"
    assert fmt([-0.00049], 3) == "[+0.000]"
