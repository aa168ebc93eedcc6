"""Processes and locks: start a background process (a job, a sweep's driver), is it alive (pid *and*
start time), is a file lock held, and the launcher's reaper threads (one per child it started, recording
the exit code)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from filelock import FileLock, Timeout

from model.paths import home, pid_alive

REPO_ROOT = Path(__file__).resolve().parents[2]  # on the child's path: it imports this checkout's model/

reapers: dict[str, threading.Thread] = {}  # job id -> the thread waiting for that child (this process only)


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a live pid, from /proc; None if it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ("?", -1)
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[0], int(fields[19])


def spawn_module(
    args: list[str], cwd: Path, log: Path, mode: str = "wb"
) -> tuple[subprocess.Popen, list[str]]:
    """Start `python -m <args>` in its own session (it outlives a closed terminal, a Ctrl-C reaches only
    it), in `cwd`, its output to `log` (opened with `mode`), under the current home, with this checkout on
    its path and TensorFlow's start-up notices off. Returns (process, argv). Raises OSError."""
    cmd = [sys.executable, "-m", *args]
    env = dict(
        os.environ,
        LATENT_EXPLORER_HOME=str(home()),
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    with open(log, mode) as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, cmd


def start_time(pid: int) -> int | None:
    """The start time of a live pid (clock ticks, from /proc), None if unknown: with the pid, it names
    the process even after the pid is reused."""
    st = proc_stat(pid)
    return st[1] if st and st[1] >= 0 else None


def process_alive(pid: int | None, pid_start: int | None) -> bool:
    """Whether the job's process still runs: same pid *and* start time (pids are reused); zombies are dead."""
    if not pid:
        return False
    if Path("/proc/self/stat").exists():
        st = proc_stat(pid)
        if st is None or st[0] in "ZX":
            return False
        return pid_start is None or st[1] < 0 or st[1] == pid_start
    return pid_alive(pid)  # no /proc (macOS): best effort


def lock_held(path: Path, wait: float = 0.0) -> bool:
    """Whether another process (or thread) holds the file lock (still, after `wait` seconds)."""
    lock = FileLock(path)
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        return True
    lock.release()
    return False
