"""Where latent explorer keeps its files (data cache, trained models, jobs)."""

import contextlib
import hashlib
import os
import uuid
from pathlib import Path

HOME_ENV = "LATENT_EXPLORER_HOME"


def home() -> Path:
    """The root directory for cached data and models.

    `$LATENT_EXPLORER_HOME` if set, else `$XDG_CACHE_HOME/latent-explorer`, else
    `~/.cache/latent-explorer`. Created on first use.
    """
    root = os.environ.get(HOME_ENV)
    if root:
        path = Path(root).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(cache) / "latent-explorer"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shown(path: str | os.PathLike) -> str:
    """`path` as shown to a user of the page: relative to the home (`<home>/models/x`), so a server's
    absolute paths are not shown to every viewer; a path outside the home keeps only its last part."""
    path = Path(path)
    try:
        base = home()
        for root in (base, base.resolve()):
            if path == root or path.is_relative_to(root):
                rel = path.relative_to(root).as_posix()
                return "<home>" if rel == "." else f"<home>/{rel}"
        for root in (base, base.resolve()):
            if path.resolve().is_relative_to(root):
                return f"<home>/{path.resolve().relative_to(root).as_posix()}"
    except (OSError, RuntimeError, ValueError):  # no usable home, a loop of symlinks
        pass
    return f".../{path.name}" if path.name else str(path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temp file in the same directory, fsync, then rename.

    The temp name is unique per call, so threads (Streamlit sessions) and processes writing the same
    file at once never share a temp file; the last rename wins and readers see a complete file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, hex, read in 1 MiB blocks. Raises OSError if it cannot be read."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (a pid <= 0 is never ours: os.kill(0 or -1, 0) probes process groups)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def using_home(path):
    """Point LATENT_EXPLORER_HOME at `path` for the duration of a `with` block (tests, benchmarks)."""
    old = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(path)
    try:
        yield Path(path)
    finally:
        if old is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = old
