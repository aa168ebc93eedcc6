"""The UMAP projection on the page (AppTest) and the projection panel's run-time texts."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.apptest import assert_clean, page_text, run_app, scatter_spec, untrained_model


def test_umap_is_computed_once_per_model_and_setting_then_shown_with_the_pick(home, reference, monkeypatch):
    from explorer import background
    from explorer.panels import projection
    from model import embedding

    _, data = reference
    record, latent = untrained_model()
    calls, gate = [], threading.Event()

    def fake_umap(z, n_neighbors, min_dist, seed, progress):  # stands in for umap-learn (test_embedding.py)
        calls.append((n_neighbors, min_dist, seed))
        while not gate.wait(0.05):
            progress(0.5, estimate=150.0, compiled=False, speed=0.5)  # as umap_in_child reports
        return z[:, :2] * n_neighbors + z[:, 2:4]  # a known layout, different per setting

    monkeypatch.setattr(projection, "UMAP_COMPUTE", fake_umap)
    at = run_app(pick=42)
    at.radio(key="proj_method").set_value("UMAP").run()
    assert_clean(at)
    assert at.number_input(key="umap_neighbors").label == "n_neighbors (default 15)"
    assert at.number_input(key="umap_min_dist").label == "min_dist (default 0.1)"
    assert "compiles umap-learn's numba code (~15–20 s more here)" in page_text(at)
    key = ("umap", record.id, 0, 15, 0.1)
    for _ in range(100):  # the estimate comes with the task's first progress report
        if "estimate" in background.RUNNER.status(key)["info"]:
            break
        __import__("time").sleep(0.05)
    at.run()
    (bar,) = [p.proto.text for p in at.get("progress")]
    assert "Computing the UMAP of 10,000 latent means" in bar
    assert "estimated 2.5 min in all" in bar and "this first UMAP compiles" in bar, bar
    assert scatter_spec(at)["layout"]["xaxis"]["title"]["text"].startswith("PC1"), "PCA until it is ready"
    gate.set()
    assert background.RUNNER.wait(key)["state"] == "done"
    at.run()
    assert_clean(at)
    spec = scatter_spec(at)
    assert spec["layout"]["xaxis"]["title"]["text"] == "UMAP 1"
    text = page_text(at)
    assert "UMAP view (umap-learn, seed 0, n_neighbors 15, min_dist 0.1)" in text and "Computed in" in text
    z = latent.encode(data.x_test)[0]
    layout = z[:, :2] * 15 + z[:, 2:4]
    assert np.allclose(np.load(embedding.umap_path(record.id)), layout, atol=1e-5)  # (10000, 2), cached
    ring = next(t for t in spec["data"] if t.get("name") == "pick")
    assert ring["x"][0] == pytest.approx(layout[42, 0], abs=1e-3)
    assert ring["y"][0] == pytest.approx(layout[42, 1], abs=1e-3)
    assert "past the whole UMAP plane" in page_text(at)  # untrained: the pick's ellipses are refused, said
    # another session: from the disk cache at once, no second computation
    at2 = run_app(proj_method="UMAP")
    assert_clean(at2)
    assert scatter_spec(at2)["layout"]["xaxis"]["title"]["text"] == "UMAP 1" and not at2.get("progress")
    assert calls == [(15, 0.1, 0)]
    # another setting is another UMAP
    at2.number_input(key="umap_neighbors").set_value(30).run()
    assert background.RUNNER.wait(("umap", record.id, 0, 30, 0.1))["state"] == "done"
    at2.run()
    assert calls == [(15, 0.1, 0), (30, 0.1, 0)]
    assert scatter_spec(at2)["layout"]["xaxis"]["title"]["text"] == "UMAP 1"


def test_the_timing_text_says_the_estimate_what_is_left_and_the_first_compile():
    from explorer.panels.projection import timing_text

    status = {"progress": 0.25, "elapsed": 20.0, "info": {"estimate": 80.0, "compiled": False}}
    text = timing_text(status, "UMAP")
    assert "estimated 80 s in all" in text and "about 60 s left" in text and "compiles" in text
    assert timing_text({"progress": 0.0, "elapsed": 0.0, "info": {}}, "t-SNE") == ""
    assert "about 2.0 min left" in timing_text({"progress": 0.5, "elapsed": 120.0, "info": {}}, "t-SNE")


def test_a_failed_umap_says_why_and_the_fix(home, monkeypatch):
    from explorer import background
    from explorer.panels import projection

    record, _ = untrained_model()

    def broken(z, n_neighbors, min_dist, seed, progress):
        raise RuntimeError("the UMAP process failed: ModuleNotFoundError: No module named 'umap'")

    monkeypatch.setattr(projection, "UMAP_COMPUTE", broken)
    at = run_app(proj_method="UMAP")
    assert background.RUNNER.wait(("umap", record.id, 0, 15, 0.1))["state"] == "failed"
    at.run()
    (err,) = [e.value for e in at.error]
    assert (
        "The UMAP failed" in err
        and "No module named 'umap'" in err
        and "pip install -r requirements.txt" in err
    )
    assert at.button(key="proj_retry").label == "Retry the UMAP"
    assert scatter_spec(at)["layout"]["xaxis"]["title"]["text"].startswith("PC1")


def test_a_projection_that_ends_within_the_pages_run_keeps_that_runs_notes(home, monkeypatch):
    """A fast task could end before the progress fragment looked: the fragment then reran the page at
    once, and a warning said before the work (the cache cannot be saved) never reached the browser."""
    from explorer import background
    from explorer.panels import projection

    record, _ = untrained_model()
    (home / "analysis").mkdir()
    (home / "analysis" / record.id).write_text("a file where the cache directory goes")
    monkeypatch.setattr(projection, "UMAP_COMPUTE", lambda z, nn, md, seed, progress: z[:, :2])
    runner, submit = background.RUNNER, background.RUNNER.submit

    def submit_and_finish(key, fn, who, label=""):  # the task ends before the page goes on
        status = submit(key, fn, who, label)
        runner.wait(key)
        return status

    monkeypatch.setattr(runner, "submit", submit_and_finish)
    at = run_app(proj_method="UMAP")
    assert_clean(at)
    assert any("The UMAP cannot be saved" in w.value for w in at.warning)
    assert "The UMAP is ready; the page shows it in a moment." in page_text(at)
    at.run()
    assert scatter_spec(at)["layout"]["xaxis"]["title"]["text"] == "UMAP 1"
    assert any("could not be saved" in w.value for w in at.warning)
