"""The model a browser tab explores belongs to that tab; ids, labels and values from links are safe.

AppTest runs one session per `AppTest` object: two objects on one home are two tabs of one server.
"""

from __future__ import annotations

import pytest

from model.latent import LatentModel
from model.store import ModelNotFoundError, ModelStore, StoreError, check_model_id
from tests.apptest import assert_clean, link_app


def warnings_of(at) -> str:
    return " ".join(str(w.value) for w in [*at.warning, *at.error, *at.info])


# ----------------------------------------------------------------------------- model ids


def test_model_ids_are_checked_by_bytes_and_characters_in_one_place(tmp_path):
    store = ModelStore(tmp_path / "models")
    for bad in ("é" * 130, "x" * 201, "a\nb", "tab\there", ".hidden", "a/b", "a\\b", ""):
        with pytest.raises(StoreError, match="Invalid model id"):
            store.record(bad)
    with pytest.raises(StoreError, match="260 bytes"):
        check_model_id("é" * 130)
    assert check_model_id("é" * 100) == "é" * 100  # 200 bytes: allowed
    with pytest.raises(ModelNotFoundError, match="No model"):
        store.record("é" * 100)
    with pytest.raises(StoreError, match="Invalid model id"):
        store.write_model_dir("é" * 130, {}, {}, what="save the model")


def test_a_link_with_a_long_non_ascii_model_id_gets_a_message_not_a_traceback(home):
    at = link_app(model="é" * 130, pick="3")
    assert not at.exception, [e.value for e in at.exception]  # was: OSError: File name too long
    text = warnings_of(at)
    assert "Invalid model id" in text and "260 bytes" in text and "Fix:" in text
    assert at.get("plotly_chart") and at.session_state["pick"] == 3  # the default model, the link's pick


# ----------------------------------------------------------------------------- two models, one label


def _twin(store):
    """A byte-identical copy of the current model under another id: the same label (two identical
    trainings started at once)."""
    import shutil

    rec = store.current()
    shutil.copytree(rec.path, store.root / (rec.id + "-twin"))
    twin = store.record(rec.id + "-twin")
    assert twin.label == rec.label
    return rec, twin


def test_two_models_with_one_label_are_two_options_and_a_rerun_switches_nothing(home):
    from tests.apptest import run_app

    store = ModelStore()
    rec, twin = _twin(store)
    at = run_app(cmp_open=True)
    assert_clean(at)
    picker = at.selectbox(key="model_pick")
    assert len(set(picker.options)) == 2, picker.options  # was: one label for both
    stamp = at.session_state["_stamp"]
    for _ in range(2):  # every rerun sends the picker's value back as its displayed text
        at.run()
        assert_clean(at)
        assert at.session_state["_stamp"] == stamp and store.current().id == rec.id
    at.selectbox(key="model_pick").set_value(twin.id).run()
    assert_clean(at)
    assert at.session_state["_stamp"].startswith(twin.id + "|")
    other = at.selectbox(key="cmp_other")  # the comparison offers the other twin, by id
    assert other.value == rec.id and len(set(other.options)) == len(other.options)
    [multi] = [m for m in at.multiselect if m.key.startswith("compare_models_")]
    assert len(set(multi.options)) == 2 and set(multi.value) == {rec.id, twin.id}


# ----------------------------------------------------------------------------- the model belongs to the tab


def _older_copy(store, suffix="-older", **meta_changes):
    """A copy of the current model under another id, an hour older (another label), meta.json changed."""
    import json
    import shutil

    rec = store.current()
    path = store.root / (rec.id + suffix)
    shutil.copytree(rec.path, path)
    meta = json.loads((path / "meta.json").read_text())
    meta["created"] -= 3600
    for k, v in meta_changes.items():
        meta[k] = {**meta.get(k, {}), **v} if isinstance(v, dict) else v
    (path / "meta.json").write_text(json.dumps(meta))
    return rec, store.record(path.name)


def exploring(at) -> str:
    return at.session_state["_stamp"].split("|")[0]


def test_a_pick_in_one_tab_leaves_the_other_tabs_and_the_default_alone(home):
    from tests.apptest import run_app

    store = ModelStore()
    rec, older = _older_copy(store)
    a, b = run_app(), run_app()
    assert exploring(a) == exploring(b) == rec.id
    a.selectbox(key="model_pick").set_value(older.id).run()
    assert_clean(a)
    assert exploring(a) == older.id
    assert store.current_id() == rec.id  # was: the pick made it current for everyone
    b.run()
    assert_clean(b)
    assert exploring(b) == rec.id  # was: b switched too
    assert exploring(run_app()) == rec.id  # a new tab opens on the default
    assert any(c.value.startswith("This is the default model") for c in b.sidebar.caption)
    # the user says so: the picked model becomes the default for new tabs (open tabs keep theirs)
    a.button(key="model_default").click().run()
    assert_clean(a)
    assert store.current_id() == older.id and exploring(a) == older.id
    assert exploring(b.run()) == rec.id and exploring(run_app()) == older.id
    # a model trained from another tab is offered to b ("Explore it"), which switches b only
    b.session_state["_model_offer"] = older.id
    b.run()
    assert any("A new model was trained" in i.value for i in b.sidebar.info)
    b.button(key="model_offer_go").click().run()
    assert_clean(b)
    assert exploring(b) == older.id and not any("A new model" in i.value for i in b.sidebar.info)


def test_a_link_opens_its_model_in_that_tab_only_and_a_damaged_one_is_named_there(home):
    from tests.apptest import run_app

    store = ModelStore()
    rec, older = _older_copy(store)
    other = run_app()
    at = link_app(model=older.id)
    assert_clean(at)
    assert exploring(at) == older.id and store.current_id() == rec.id
    assert exploring(other.run()) == rec.id
    (older.path / "meta.json").write_text('{"format": 1, "config": {"loss": "l1"}}')
    at = link_app(model=older.id, pick="5")
    assert not at.exception
    text = warnings_of(at)
    assert f"The link's model ` {older.id} ` cannot be read" in text and "corrupt meta.json" in text
    assert "is gone" not in text and "not in this server's store" not in text  # it is there, unreadable
    assert f"<home>/models/{older.id}" in text and str(home) not in text  # no server paths shown
    sidebar = " ".join(str(e.value) for kind in ("caption", "warning") for e in at.sidebar.get(kind))
    assert "<home>/models" in sidebar and str(home) not in sidebar
    assert not any(str(home) in (b.help or "") for b in at.button)
    assert exploring(at) == rec.id and at.session_state["pick"] == 5
    other.run()
    assert not other.exception and not other.main.error and exploring(other) == rec.id


def test_a_model_deleted_from_another_tab_is_named_on_the_next_interaction(home):
    from tests.apptest import run_app

    store = ModelStore()
    rec, older = _older_copy(store)
    at = run_app()
    at.selectbox(key="model_pick").set_value(older.id).run()
    assert exploring(at) == older.id
    model_files = [
        b for b in at.sidebar.get("download_button") if b.proto.label.startswith(("Model", "enc", "dec"))
    ]
    assert len(model_files) == 3 and not any(b.proto.ignore_rerun for b in model_files)  # a click reruns
    store.delete(older.id)  # from another tab
    at.run()  # any interaction (a click on a model download reruns the page too)
    assert not at.exception, [e.value for e in at.exception]
    [note] = [w.value for w in at.main.warning if "was deleted" in w.value]
    assert f"` {older.id} `" in note and "downloads are gone" in note
    assert exploring(at) == rec.id  # on to the default model
    # deleting this tab's own model: no "from another tab" note
    at.selectbox(key="model_pick").set_value(rec.id).run()
    at.button(key=f"delete_{rec.id}").click().run()
    at.button(key=f"delete_yes_{rec.id}").click().run()
    assert not at.exception and not [w for w in at.main.warning if "was deleted" in w.value]


def test_a_much_worse_training_does_not_become_the_default_unless_asked(home):
    import dataclasses

    from tests.apptest import run_app

    store = ModelStore()
    default = store.current()
    loss = default.test_metrics["loss"]
    latent = LatentModel.from_record(store.record(default.id))

    def save(factor, **config):
        cfg = dataclasses.replace(default.config, seed=int(100 * factor), **config)
        return store.save(latent.encoder, latent.decoder, cfg, test_metrics={"loss": factor * loss})

    worse = save(1.25)
    assert store.current_id() == default.id  # saved, not the default
    assert "more than 20% higher" in store.why_not_default(worse)
    assert store.offer_as_default(save(1.19)) and store.current_id() != default.id  # within 20%: it is
    store.set_current(default.id)
    mse = save(0.1 * 1.5, loss="mse")  # another reconstruction loss: not comparable, offered as default
    assert store.current_id() == mse.id
    store.set_current(default.id)
    at = run_app()
    at.selectbox(key="model_pick").set_value(worse.id).run()
    assert_clean(at)
    caption = " ".join(c.value for c in at.sidebar.caption)
    assert "Not the default for new tabs: its test loss" in caption
    at.button(key="model_default").click().run()
    assert store.current_id() == worse.id


# ----------------------------------------------------------------------------- values shown as text


def outside_code(markdown: str) -> str:
    """The Markdown with its code spans removed: what Streamlit would interpret."""
    import re

    return re.sub(r"(`+) .*? \1(?!`)", "", markdown)


def test_markdown_in_a_link_is_shown_as_text_never_rendered(home):
    crafted = "**bold** [x](javascript:alert(1)) `tick"
    at = link_app(model=crafted, z="![x](http://127.0.0.1:1/beacon-z.png)", pick="<img src=x>")
    assert not at.exception
    shown = [str(w.value) for w in [*at.warning, *at.error, *at.info]]
    assert any(f"`` {crafted} ``" in w for w in shown), shown  # verbatim; its backtick stays inside
    assert any("![x](http://127.0.0.1:1/beacon-z.png)" in w for w in shown)
    for w in shown:
        rest = outside_code(w)
        assert "](" not in rest and "<img" not in rest and "bold**" not in rest, w


# ----------------------------------------------------------------------------- a finished training


def _job_end_script():
    import streamlit as st

    from explorer.panels import training_jobs
    from model import jobs

    if st.session_state.get("started_here"):
        training_jobs.add_started_job("job-1")
    if not st.session_state.get("ended"):
        st.session_state["ended"] = True
        js = jobs.JobStatus(id="job-1", state="succeeded", phase="ended", config={}, epochs=1)
        js.model_id = "the-new-model"
        training_jobs._follow(js)  # what the progress fragment does when it sees the job end


def test_a_finished_training_switches_the_tab_that_started_it_and_is_offered_to_the_others():
    from streamlit.testing.v1 import AppTest

    mine = AppTest.from_function(_job_end_script)
    mine.session_state["started_here"] = True
    mine.run()
    assert not mine.exception
    assert mine.session_state["_model"] == "the-new-model"
    assert "_model_offer" not in mine.session_state
    other = AppTest.from_function(_job_end_script)
    other.session_state["_model"] = "its-own-model"
    other.run()
    assert not other.exception
    assert other.session_state["_model"] == "its-own-model"  # was: every tab switched
    assert other.session_state["_model_offer"] == "the-new-model"  # "Explore it" in its sidebar
