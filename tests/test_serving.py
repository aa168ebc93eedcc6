"""model.serving: Streamlit's per-run keras.backend.clear_session() is skipped, every other call is not."""
import keras

from model.serving import keep_compiled_functions


def _layer_name():
    return keras.layers.Dense(1).name


def _clean_problem_modules():  # the name of Streamlit's per-run caller
    keras.backend.clear_session()


def test_only_streamlits_per_run_call_is_skipped(monkeypatch):
    monkeypatch.setattr(keras.backend, "clear_session", keras.backend.clear_session)  # restored after
    keep_compiled_functions()
    assert keep_compiled_functions() is False  # idempotent: installed once
    keras.backend.clear_session(free_memory=False)  # a direct call still clears: name counters reset
    assert _layer_name() == "dense"
    assert _layer_name() == "dense_1"
    _clean_problem_modules()  # skipped: the counter (and TensorFlow's kernel cache) survive
    assert _layer_name() == "dense_2"
    keras.backend.clear_session(free_memory=False)
    assert _layer_name() == "dense"
