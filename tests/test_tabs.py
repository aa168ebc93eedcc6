"""The model a browser tab explores belongs to that tab; ids, labels and values from links are safe.

AppTest runs one session per `AppTest` object: two objects on one home are two tabs of one server.
"""

from __future__ import annotations

import pytest

from model.store import ModelNotFoundError, ModelStore, StoreError, check_model_id
from tests.test_app import assert_clean  # noqa: F401
from tests.test_panels import link_app


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
    from tests.test_app import run_app

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
