"""The harness itself: one server per start, and nothing of its process group left after stop (once
`with StreamlitServer(...).start() as srv` started two servers and stopped one, leaking ~1 GB a run)."""

from __future__ import annotations

import os
import shlex
import signal

from browser_harness import StreamlitServer, group_processes


class ServerWithStubbornChild(StreamlitServer):
    """Streamlit plus a child in its process group that ignores SIGTERM (like a busy subprocess)."""

    def command(self):
        streamlit = " ".join(shlex.quote(a) for a in super().command())
        return ["sh", "-c", f"(trap '' TERM; exec sleep 600) & exec {streamlit}"]


def streamlit_pids(pgid):
    return [pid for pid, _state, cmd in group_processes(pgid) if "streamlit run" in cmd]


def test_double_start_runs_one_server_and_stop_leaves_no_process(tmp_path):
    srv = ServerWithStubbornChild(tmp_path / "home", log_path=tmp_path / "server.log")
    with srv.start(timeout=120) as same:  # the pattern that leaked a server
        assert same is srv
        pgid = srv.proc.pid
        members = group_processes(pgid)
        assert streamlit_pids(pgid) == [pgid], members  # one server, the group leader
        assert any("sleep 600" in cmd for _pid, _state, cmd in members), members
        first = srv.proc
        assert srv.start() is srv and srv.proc is first  # a second start is a no-op
    assert not srv.running
    assert group_processes(pgid) == []  # the SIGTERM-proof child was killed too
    # and no stray server of this test anywhere (one started before the fix, outside the group)
    assert not [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _cmdline(pid).count(str(srv.port)) and "streamlit" in _cmdline(pid)
    ]


def test_stop_after_the_server_died_still_ends_its_group(tmp_path):
    srv = ServerWithStubbornChild(tmp_path / "home", log_path=tmp_path / "server.log").start(timeout=120)
    pgid = srv.proc.pid
    os.kill(pgid, signal.SIGKILL)  # the server crashes; its child lives on in the group
    srv.proc.wait(10)
    assert any("sleep 600" in cmd for _pid, _state, cmd in group_processes(pgid))
    srv.stop()
    assert group_processes(pgid) == []


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
