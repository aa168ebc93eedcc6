"""explorer.serving: the Streamlit-internal tweaks, the malloc settings, their switch, and the Streamlit
internals they rely on.

The `streamlit_*` tests read the installed Streamlit: when an upgrade renames or changes what the tweaks
lean on, they fail and say what to re-check in explorer/serving.py.
"""

import gc
import inspect
import sys

import keras
import pytest
import streamlit.runtime.scriptrunner.script_runner as script_runner
from streamlit import config as st_config

from explorer import serving
from explorer.serving import keep_compiled_functions


def _layer_name():
    return keras.layers.Dense(1).name


def _clean_problem_modules():  # the name of Streamlit's per-run caller
    keras.backend.clear_session()


@pytest.fixture
def restore_clear_session(monkeypatch):
    monkeypatch.setattr(keras.backend, "clear_session", keras.backend.clear_session)  # restored after


def test_only_streamlits_per_run_call_is_skipped(restore_clear_session):
    keep_compiled_functions()
    assert keep_compiled_functions() is False  # idempotent: installed once
    keras.backend.clear_session(free_memory=False)  # a direct call still clears: name counters reset
    assert _layer_name() == "dense"
    assert _layer_name() == "dense_1"
    _clean_problem_modules()  # skipped: the counter (and TensorFlow's kernel cache) survive
    assert _layer_name() == "dense_2"
    keras.backend.clear_session(free_memory=False)
    assert _layer_name() == "dense"


def test_switch_turns_both_tweaks_off(restore_clear_session, monkeypatch):
    monkeypatch.setenv(serving.ENV, "0")
    before = keras.backend.clear_session
    assert keep_compiled_functions() is False
    assert keras.backend.clear_session is before  # not wrapped
    frozen = gc.get_freeze_count()
    assert serving.freeze_gc("switch-test") is False
    assert gc.get_freeze_count() == frozen


def test_freeze_gc_freezes_once_per_stamp(monkeypatch):
    monkeypatch.delenv(serving.ENV, raising=False)
    monkeypatch.setattr(serving, "_frozen", set())
    try:
        junk = [[i] for i in range(1000)]  # alive now: frozen with everything else
        assert serving.freeze_gc("stamp-a") is True
        assert gc.get_freeze_count() >= len(junk)
        assert serving.freeze_gc("stamp-a") is False  # once per model
    finally:
        gc.unfreeze()


# ------------------------------------------------------------------ the Streamlit internals relied on


def test_streamlit_clears_keras_from_the_function_serving_skips(restore_clear_session):
    """Streamlit's own `_clean_problem_modules` must call keras.backend.clear_session() directly (that
    frame's name is what keep_compiled_functions checks); run it with the wrapper on and see it skipped."""
    caller = getattr(script_runner, serving.STREAMLIT_CALLER, None)
    assert callable(caller), (
        f"streamlit {script_runner.__name__} has no {serving.STREAMLIT_CALLER}() any more: find where this "
        "Streamlit clears the Keras session after a script run and update explorer/serving.py"
    )
    source = inspect.getsource(caller)
    assert "keras" in source and ".backend.clear_session()" in source, (
        f"{serving.STREAMLIT_CALLER}() no longer calls keras.backend.clear_session(): "
        "re-check explorer/serving.py"
    )
    assert serving.STREAMLIT_CALLER in inspect.getsource(script_runner.ScriptRunner), (
        "Streamlit's ScriptRunner no longer calls it after a run: re-check explorer/serving.py"
    )
    assert "keras" in sys.modules
    keep_compiled_functions()
    keras.backend.clear_session(free_memory=False)
    assert _layer_name() == "dense"
    caller()  # Streamlit's real function: the wrapper must recognise its frame and skip the clear
    assert _layer_name() == "dense_1"


def test_streamlit_collects_garbage_after_every_run():
    """freeze_gc exists because the script runner runs gc.collect(2) after each run (runner.postScriptGC,
    on by default); if Streamlit stops doing that, the freeze may no longer be worth its kept garbage."""
    finished = getattr(script_runner.ScriptRunner, "_on_script_finished", None)
    assert finished is not None, "Streamlit's ScriptRunner._on_script_finished is gone: re-check freeze_gc"
    source = inspect.getsource(finished)
    assert "gc.collect(" in source and "runner.postScriptGC" in source, (
        "Streamlit no longer collects garbage after a script run: re-check explorer/serving.py freeze_gc"
    )
    assert st_config.get_option("runner.postScriptGC") is True


# A child process that frees a 1 MB buffer and allocates another, and prints how many bytes glibc mapped
# for the second one and what limit_heap_growth returned.
_HEAP_PROBE = """
import sys
import numpy as np
from explorer import serving
limited = serving.limit_heap_growth() if sys.argv[1] == "limit" else None
a = np.ones(1 << 20, np.uint8)
del a  # by default glibc now raises its mmap threshold above 1 MB
before = serving.heap_stats()["mapped"]
b = np.ones(1 << 20, np.uint8)
print(limited, serving.heap_stats()["mapped"] - before)
"""


def _heap_probe(mode: str, **env) -> tuple[str, int]:
    import os
    import subprocess
    from pathlib import Path

    clean = {k: v for k, v in os.environ.items() if k not in (*serving.MALLOC_ENV, serving.ENV)}
    out = subprocess.run(
        [sys.executable, "-c", _HEAP_PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**clean, **env},
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings (Linux only)")
def test_limit_heap_growth_maps_large_buffers_so_freeing_them_returns_memory():
    assert _heap_probe("default") == ("None", 0)  # glibc's default: the second buffer lands in the heap
    limited, mapped = _heap_probe("limit")
    assert limited == "True" and mapped >= 1 << 20  # its own mapping: unmapped (returned) when freed
    # a user's own threshold (4 MB: the 1 MB buffer stays in the heap), or the switch, leave glibc alone
    assert _heap_probe("limit", MALLOC_MMAP_THRESHOLD_=str(4 << 20)) == ("False", 0)
    assert _heap_probe("limit", **{serving.ENV: "0"}) == ("False", 0)
