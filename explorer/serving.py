"""Tweaks for a long-running process that serves a trained model (the Streamlit explorer), behind one
switch: LATENT_EXPLORER_SERVING_TWEAKS=0 turns them off (the app then runs as Streamlit does by default).

The first two lean on Streamlit internals; tests/test_serving.py fails loudly when a Streamlit upgrade
changes them:
- `keep_compiled_functions()`: skip the `keras.backend.clear_session()` that Streamlit's
  `_clean_problem_modules` (streamlit/runtime/scriptrunner/script_runner.py) makes after every script run.
- `freeze_gc(stamp)`: `gc.freeze()` once per model, so the `gc.collect(2)` that Streamlit's script runner
  makes after every run (option `runner.postScriptGC`) walks only objects created since.
And one for glibc's malloc (Linux):
- `limit_heap_growth()`: a fixed glibc mmap threshold, so that large buffers freed when runs end and
  sessions close go back to the system instead of staying in the heap as fragments (bench/load.py).
docs/performance.md has the measured effect of each.

Streamlit-process tweaks, so they live in explorer/; never imports streamlit itself, and reaches Keras only
through model.tflog inside `keep_compiled_functions` (explorer/ never imports TensorFlow). Nothing happens
at import.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys

from model.env import env_flag

ENV = "LATENT_EXPLORER_SERVING_TWEAKS"  # "0" turns both tweaks off

# The function in streamlit/runtime/scriptrunner/script_runner.py that calls keras.backend.clear_session()
# after every script run ("some modules are stateful, so we have to clear their state").
STREAMLIT_CALLER = "_clean_problem_modules"

_frozen: set[str] = set()


def enabled() -> bool:
    """Whether the tweaks are on (the default); LATENT_EXPLORER_SERVING_TWEAKS=0 turns them off."""
    return env_flag(ENV, True)


def keep_compiled_functions() -> bool:
    """Make `keras.backend.clear_session()` skip the call Streamlit makes after every script run.

    Streamlit clears the Keras session after each run (every slider move) for apps that build models in
    their script. That call also clears TensorFlow's kernel cache, so the next decode re-instantiates
    and re-optimises the compiled decoder (many times slower than a warm decode), and runs a full
    `gc.collect()`. This app only builds models when loading them, so the call brings nothing. Only calls
    made from Streamlit's `_clean_problem_modules` are skipped; any other caller gets the real clear_session.

    Returns True when it installed the wrapper, False when it was already installed or the tweaks are off.
    """
    if not enabled():
        return False
    from model.tflog import keras  # lazy, and through model/: explorer/ never imports Keras directly

    current = keras.backend.clear_session
    if getattr(current, "skips_streamlit", False):
        return False

    def clear_session(*args, **kwargs):
        if sys._getframe(1).f_code.co_name == STREAMLIT_CALLER:
            return None
        return current(*args, **kwargs)

    clear_session.__doc__ = current.__doc__
    clear_session.skips_streamlit = True
    clear_session.wrapped = current
    keras.backend.clear_session = clear_session
    return True


def freeze_gc(stamp: str) -> bool:
    """Move everything alive now (TensorFlow, Keras, the loaded model, cached arrays) out of the GC's reach,
    once per model stamp per process. Call it after the first full render. Returns True when it froze.

    Why: after *every* script run (a slider move included) Streamlit runs `gc.collect(2)` (and, unless
    `keep_compiled_functions` is active, `keras.backend.clear_session()` runs another full one). With
    TensorFlow loaded each walks millions of objects, holding the GIL, so the server answers nothing
    meanwhile. After `gc.freeze()` a collection only walks the objects created since.
    Garbage that exists at the moment of freezing is kept, so this runs once per model, not per run.
    """
    if not enabled() or stamp in _frozen:
        return False
    _frozen.add(stamp)
    gc.collect()
    gc.freeze()
    return True


# glibc mallopt() parameter (malloc.h) and the value kept
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept fixed
# The user's own malloc settings: when one is set, limit_heap_growth leaves malloc alone.
MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")
_heap_limited = False


def limit_heap_growth() -> bool:
    """Keep the server's memory from creeping up as browser sessions come and go (glibc only).

    Every Streamlit script run happens on a new thread and allocates and frees arrays and PNG buffers of
    100 kB to 1 MB. By default glibc raises its mmap threshold to the size of each large block freed, so
    later large blocks land in the thread's heap instead of a mapping of their own, and freed memory
    stays there as fragments that `malloc_trim` cannot return. This pins the threshold at glibc's default
    128 kB: large buffers are mapped and unmapped, so their memory goes back at once.

    The number of heaps (MALLOC_ARENA_MAX) cannot be limited from here: glibc fixes it once 8 heaps
    exist, and Streamlit has about 15 before the first script run. README ("Load") gives
    `MALLOC_ARENA_MAX=2` for long-running servers and what each setting measured.

    Once per process; does nothing when the tweaks are off, when the user set MALLOC_MMAP_THRESHOLD_ or
    GLIBC_TUNABLES, or off glibc. Returns True when it changed the setting.
    """
    global _heap_limited
    if _heap_limited or not enabled() or any(os.environ.get(k) for k in MALLOC_ENV):
        return False
    _heap_limited = True
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return False
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


class _MallInfo2(ctypes.Structure):  # struct mallinfo2 (malloc.h, glibc >= 2.33)
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


def heap_stats() -> dict[str, int]:
    """glibc's own count of the process's malloc memory, in bytes, over all heaps: "in_use" (a leak
    grows it), "free" (freed but kept in the heaps: fragmentation grows only this), "heaps" (their size)
    and "mapped" (blocks with a mapping of their own). {} off glibc >= 2.33. For benchmarks and tests."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    mallinfo2.restype = _MallInfo2
    m = mallinfo2()
    return {"in_use": m.uordblks + m.hblkhd, "free": m.fordblks, "heaps": m.arena, "mapped": m.hblkhd}
