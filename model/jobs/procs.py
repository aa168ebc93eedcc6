"""Processes and locks: is a job's process alive (pid *and* start time), is a file lock held, and the
launcher's reaper threads (one per child it started, recording the exit code)."""

from __future__ import annotations

import threading
from pathlib import Path

from filelock import FileLock, Timeout

from model.paths import pid_alive

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
