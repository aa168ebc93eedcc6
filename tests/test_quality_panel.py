"""The quality panel (explorer/panels/quality.py) in the running page (AppTest): estimates, comparison."""

import pytest

from explorer.panels import quality as quality_panel
from tests.apptest import errors


def test_quality_panel_estimates_and_compares(app, monkeypatch):
    monkeypatch.setattr(quality_panel, "IWAE_N", 100)
    monkeypatch.setattr(quality_panel, "IWAE_K", 4)
    table = next(m.value for m in app.markdown if m.value.startswith("| "))
    assert table.count("\n") == 2  # header, rule, one model
    assert "▶" in table and "| – | – |" in table  # not estimated yet

    from explorer import background
    from model import quality
    from model.store import ModelStore

    rec = ModelStore().current()
    gate = __import__("threading").Event()
    estimate = quality_panel._estimate

    def held(*args, **kw):  # the estimate waits until the page has been seen usable meanwhile
        gate.wait(60)
        return estimate(*args, **kw)

    monkeypatch.setattr(quality_panel, "_estimate", held)
    app.button(key="quality_go").click().run()
    assert not app.exception and not errors(app)
    # the estimate runs in the background: the page renders at once, with its progress
    assert any("in the background" in p.proto.text for p in app.get("progress"))
    assert app.get("plotly_chart"), "the page is not usable while the estimate runs"
    gate.set()
    assert background.RUNNER.wait(("quality", rec.id))["state"] == "done"
    app.run()
    assert not app.exception and not errors(app)
    q = quality.cached(rec.id)
    assert q["iwae_n"] == 100 and q["iwae_k"] == 4
    assert q["iwae_nll"] <= q["elbo_nll"]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["−log p(x) (IWAE, K=4)"] == f"{q['iwae_nll']:.1f}"
    assert metrics["5-NN accuracy"] == f"{100 * q['knn_accuracy']:.1f}%"
    table = next(m.value for m in app.markdown if m.value.startswith("| "))
    assert f"{q['iwae_nll']:.1f}" in table and f"{100 * q['knn_accuracy']:.1f}%" in table
    app.run()
    assert not any(b.key == "quality_go" for b in app.button)  # computed once, then cached


def test_comparison_lists_every_model_and_reconstructs_side_by_side(app, home):
    import shutil

    from model.store import ModelStore

    store = ModelStore()
    rec = store.current()
    twin = store.root / (rec.id + "-copy")
    shutil.copytree(rec.path, twin)  # a second stored model (same weights, new id)
    app.run()
    assert not app.exception
    table = next(m.value for m in app.markdown if m.value.startswith("| "))
    assert table.count("\n") == 3 and rec.id in table and twin.name in table
    picker = next(m for m in app.multiselect if m.label.startswith("Reconstructions side by side"))
    assert set(picker.value) == {rec.id, twin.name}  # the new model joins the comparison
    # original row + one reconstruction row per model, 10 images each (one per class)
    rows = [img for img in app.get("image") if len(img.proto.imgs) == 10]
    assert len(rows) >= 3


def test_comparison_table_is_pure_markdown():
    rows = [
        {
            "id": "a",
            "dataset": "mnist",
            "latent_dim": 2,
            "loss": "bce",
            "kl_weight": 0.5,
            "epochs": 1,
            "train_images": None,
            "test_loss": 200.0,
            "reconstruction": 195.5,
            "kl": 4.5,
            "iwae_nll": 190.25,
            "knn_accuracy": 0.5,
            "train_seconds": 3.2,
        }
    ]
    md = quality_panel.comparison_table(rows, current_id="a").splitlines()
    assert md[0].startswith("|  | dataset | latent |")
    assert md[0].startswith("|  | dataset | latent | loss | β | epochs |")
    assert md[2] == (
        "| ▶ | ` mnist ` | 2 | ` bce ` | 0.5 | 1 | all | 200.0 | 195.5 | 4.50 | 190.2 | 50.0% | 3 s | ` a ` |"
    )
    rows[0].update(id="a|b", dataset="**x** [y](http://127.0.0.1:1/)")  # from files: text, one cell each
    md = quality_panel.comparison_table(rows).splitlines()
    assert "| ` **x** [y](http://127.0.0.1:1/) ` |" in md[2] and md[2].endswith("| ` a\\|b ` |")


@pytest.mark.parametrize("how", ["read-only file system", "a file where the quality directory goes"])
def test_quality_estimate_is_shown_when_it_cannot_be_cached(app, home, monkeypatch, how):
    """A read-only home gave a traceback ([Errno 30] Read-only file system: …/quality)."""
    import errno

    from model import quality

    monkeypatch.setattr(quality_panel, "IWAE_N", 100)
    monkeypatch.setattr(quality_panel, "IWAE_K", 4)
    if how == "read-only file system":  # root ignores permissions: fail the write as EROFS does

        def read_only(path, text):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

        monkeypatch.setattr(quality, "atomic_write_text", read_only)
    else:
        (home / "quality").write_text("not a directory")
    from explorer import background
    from model.store import ModelStore

    app.button(key="quality_go").click().run()
    assert background.RUNNER.wait(("quality", ModelStore().current().id))["state"] == "done"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not errors(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["−log p(x) (IWAE, K=4)"] not in ("–", None)  # the estimate is shown
    [note] = [c.value for c in app.caption if "Not cached" in c.value]
    assert "\n" not in note and "LATENT_EXPLORER_HOME" in note
    if how == "read-only file system":
        assert "Read-only file system" in note
    app.run()  # kept for the session, not lost on the next rerun
    assert {m.label: m.value for m in app.metric}["−log p(x) (IWAE, K=4)"] == metrics["−log p(x) (IWAE, K=4)"]
