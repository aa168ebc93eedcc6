"""TensorFlow's start-up noise stays out of the terminal unless LATENT_EXPLORER_TF_LOGS=1 asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from model import tflog

ROOT = Path(__file__).resolve().parents[1]

# What the page does on its first run: the cached loader loads the current model (TensorFlow's first import)
LOAD = """
from explorer import cache
store = cache.get_store()
record = store.current()
model = cache._load_model(cache.model_stamp(record), str(store.root), record.id)
print("latent_dim", model.latent_dim)
"""


def _load_in_subprocess(home: Path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", tflog.ENV)}
    return subprocess.run(
        [sys.executable, "-c", LOAD],
        cwd=ROOT,
        env={**clean, "LATENT_EXPLORER_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_loading_the_model_prints_no_tensorflow_start_up_noise(home):
    quiet = _load_in_subprocess(home)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "latent_dim 2" in quiet.stdout
    for noise in ("cuInit", "E0000", "I0000", "oneDNN", "absl::InitializeLog"):
        assert noise not in quiet.stderr, f"{noise!r} on stderr:\n{quiet.stderr[-2000:]}"
    # the switch shows them again: what was hidden is TensorFlow's own start-up output
    loud = _load_in_subprocess(home, **{tflog.ENV: "1"})
    assert loud.returncode == 0, loud.stderr[-2000:]
    shown = [line for line in loud.stderr.splitlines() if tflog.filter_noise(line + "\n") == ""]
    assert shown, f"no TensorFlow start-up line with {tflog.ENV}=1:\n{loud.stderr[-2000:]}"
    assert any(("cuInit" in line or "oneDNN" in line) for line in shown), shown


def test_filter_noise_keeps_everything_else():
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796236366.432791   26068 port.cc:153] oneDNN custom operations are on.\n"
        "E0000 00:00:1796236384.555924   26068 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
        "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
        "E0000 00:00:1796236384.555924   26068 some_op.cc:12] a real error\n"
        "UserWarning: something the user should see\n"
    )
    assert tflog.filter_noise(text) == (
        "E0000 00:00:1796236384.555924   26068 some_op.cc:12] a real error\n"
        "UserWarning: something the user should see\n"
    )
