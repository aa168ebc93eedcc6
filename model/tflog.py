"""TensorFlow and Keras, imported without TensorFlow's start-up noise in the terminal (unless asked).

On every start TensorFlow's C++ side writes notices straight to the process's stderr (file descriptor 2),
before its own log settings apply: "oneDNN custom operations are on", "Could not find cuda drivers", "This
TensorFlow binary is optimized to use ...", and on a machine without a GPU
`E0000 ... failed call to cuInit: ... CUDA error (303)`, which a user reads as an error. TF_CPP_MIN_LOG_LEVEL
does not cover the notices written before absl's logging is initialised, so the first import (and the
device probe that tries cuInit) runs with fd 2 pointed at a temporary file; afterwards the known notices
are dropped and everything else written meanwhile (a real warning, another thread's output) is written to
stderr. GPUs are not touched: CUDA_VISIBLE_DEVICES is left alone.

    LATENT_EXPLORER_TF_LOGS=1   show TensorFlow's start-up logs as TensorFlow writes them

Use `from model.tflog import keras, tf` for the first import in a process (PEP 562: the module itself
imports nothing until one of the two names is asked for), or `import_tensorflow()`.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading

from model.env import env_flag

ENV = "LATENT_EXPLORER_TF_LOGS"  # 1: TensorFlow's start-up logs go to the terminal as they are written

# What TensorFlow writes on a normal start (INFO lines, absl's pre-initialisation notice, the CPU feature
# note's second line, and the known start-up warnings/errors of a machine without a usable GPU).
_NOISE = re.compile(
    r"^(?:I\d{4} .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .*"
    r"|[WE]\d{4} .*(?:failed call to cuInit|Unable to register cu(?:DNN|FFT|BLAS) factory"
    r"|computation placer already registered|Could not find TensorRT|TF-TRT Warning).*)$"
)
_lock = threading.Lock()


def wanted() -> bool:
    """True when the user asked to see TensorFlow's start-up logs (LATENT_EXPLORER_TF_LOGS=1)."""
    return env_flag(ENV, False)


def filter_noise(text: str) -> str:
    """`text` without TensorFlow's start-up notices (one per line); every other line is kept."""
    kept = [line for line in text.splitlines(keepends=True) if not _NOISE.match(line.rstrip("\r\n"))]
    return "".join(kept)


def import_tensorflow():
    """Import TensorFlow and Keras (once per process) and return `tf`.

    Unless LATENT_EXPLORER_TF_LOGS=1: TF_CPP_MIN_LOG_LEVEL defaults to 2 (TensorFlow's INFO and WARNING
    logs off; its errors still show), and the import and device probe write their notices to a
    temporary file, of which only the lines that are not start-up noise reach stderr."""
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"]
    with _lock:
        if wanted():
            import keras
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
            return tf
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                import keras  # noqa: F401
                import tensorflow as tf

                tf.config.list_physical_devices("GPU")  # the cuInit probe, while fd 2 is captured
                tf.get_logger().setLevel("ERROR")
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                rest = filter_noise(captured.read().decode("utf-8", errors="replace"))
                if rest:
                    sys.stderr.write(rest)
                    sys.stderr.flush()
        return tf


def __getattr__(name):  # PEP 562: `from model.tflog import keras, tf` imports them quietly, then
    if name in ("tf", "tensorflow"):
        return import_tensorflow()
    if name == "keras":
        import_tensorflow()
        return sys.modules["keras"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
