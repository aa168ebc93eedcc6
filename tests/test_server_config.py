"""The shipped `.streamlit/config.toml`: the app listens on this machine only and sends no usage
statistics, checked on a real `streamlit run` server started as the README says."""

import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(120)


def test_config_file_says_localhost_and_no_usage_statistics():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"
    assert config["browser"]["gatherUsageStats"] is False


def _listeners(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on `port`."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            addr, hexport = fields[1].split(":")
            if int(hexport, 16) == port and fields[3] == "0A":  # LISTEN
                out.add(addr)
    return out


def test_streamlit_run_listens_on_localhost_only(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "streamlit_app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.fileWatcherType",
                "none",
            ],
            cwd=REPO,
            stdout=f,
            stderr=subprocess.STDOUT,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
                "LATENT_EXPLORER_HOME": str(tmp_path / "home"),
                "PYTHONPATH": str(REPO),
            },
        )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not _listeners(port):
            time.sleep(0.2)
        listeners = _listeners(port)
        assert listeners, log.read_text()
        loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1
        assert listeners <= loopback, f"listening on {listeners}, expected loopback only"
        time.sleep(1.0)
        text = log.read_text()
        assert "Network URL" not in text and "Collecting usage statistics" not in text, text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
