"""Settings for a long-running process that serves a trained model (the Streamlit explorer).

Never imports streamlit. The UI calls `keep_compiled_functions()` once; nothing happens at import.
"""
from __future__ import annotations

import sys

# The function in streamlit/runtime/scriptrunner/script_runner.py that calls keras.backend.clear_session()
# after every script run ("some modules are stateful, so we have to clear their state").
_STREAMLIT_CALLER = "_clean_problem_modules"


def keep_compiled_functions() -> bool:
    """Make `keras.backend.clear_session()` skip the call Streamlit makes after every script run.

    Streamlit clears the Keras session after each run (every slider move) for apps that build models in
    their script. That call also clears TensorFlow's kernel cache, so the next decode re-instantiates
    and re-optimises the compiled decoder (~25 ms instead of ~1-2 ms), and runs a full `gc.collect()`.
    This app only builds models when loading them, so the call brings nothing. Only calls made from
    Streamlit's `_clean_problem_modules` are skipped; any other caller gets the real clear_session.

    Returns True when it installed the wrapper, False when it was already installed.
    """
    import keras

    current = keras.backend.clear_session
    if getattr(current, "_skips_streamlit", False):
        return False

    def clear_session(*args, **kwargs):
        if sys._getframe(1).f_code.co_name == _STREAMLIT_CALLER:
            return None
        return current(*args, **kwargs)

    clear_session.__doc__ = current.__doc__
    clear_session._skips_streamlit = True
    clear_session.wrapped = current
    keras.backend.clear_session = clear_session
    return True
