"""A numeric job in a child process at a lower CPU priority, with its progress read from its output: the
t-SNE and UMAP of the page's analysis runner (model.analysis.tsne_in_child, model.embedding). A child can be
killed at once when its work is no longer wanted, which a thread could not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def child_priority(pid: int) -> None:
    """Run child process `pid` 10 steps below this process (its main thread) in CPU priority: nice 10 under
    a server at 0, whatever the calling thread's own niceness (the page's analysis runner thread is
    already at 10: counting from it put the child at 19, starved by any other work)."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + 10))
    except (AttributeError, OSError):  # not Linux, or not permitted: the normal priority
        pass


OUT = "{out}"  # run_child's placeholder for the output file in argv


def takes_info(progress) -> bool:
    """Whether `progress` takes keyword arguments (`progress(fraction, **info)`, as the page's analysis
    runner does), so a child's estimate can go with its progress."""
    import inspect

    try:
        params = inspect.signature(progress).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD for p in params)


def run_child(argv, n: int, progress, fraction, what: str, poll: float = 0.25, info=None) -> np.ndarray:
    """`python -m <argv...>` in a child process at a lower CPU priority (`child_priority`), for the (n, 2)
    array it writes to the .npy file named by the argument OUT (a placeholder in `argv`).

    `progress(fraction(lines))` is called every `poll` seconds with the child's output so far (a list
    of lines); if it raises (the work is no longer wanted), the child is killed at once and the
    exception goes on, so a cancelled job stops using the CPU and its memory at once (a thread could
    not be stopped). `info(lines)` (optional) gives a dict that goes with it, `progress(fraction, **info)`,
    when `progress` takes keywords (`takes_info`). RuntimeError with the child's last words if it fails
    (MemoryError, a killed process...): "the <what> process failed: ...".

    Returns the (n, 2) float32 array."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    with tempfile.TemporaryDirectory(prefix=f"{what.lower()}-") as tmp:
        out = Path(tmp) / "xy.npy"
        args = [str(out) if a == OUT else str(a) for a in argv]
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=tmp,
            text=True,
            errors="replace",
        )
        child_priority(proc.pid)
        lines: list[str] = []
        with_info = progress is not None and takes_info(progress)
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        try:
            while proc.poll() is None:
                if progress is not None:
                    extra = info(lines) if info is not None and with_info else {}
                    progress(fraction(lines), **extra)
                time.sleep(poll)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        reader.join(timeout=5)
        if proc.returncode != 0:
            last = [ln.strip() for ln in lines if ln.strip()][-1:] or [f"exit code {proc.returncode}"]
            how = "was killed" if proc.returncode < 0 else "failed"
            raise RuntimeError(f"the {what} process {how}: {last[0][:300]}")
        from model.analysis import read_xy  # the .npy reader of the projection cache

        xy = read_xy(out, n)
        if xy is None:
            raise RuntimeError(f"the {what} process wrote no valid result")
        return xy
