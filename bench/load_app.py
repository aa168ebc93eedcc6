"""The explorer page with a server-side timing log, for bench/load.py (not part of the app).

    LOAD_TIMINGS_LOG=/tmp/t.jsonl streamlit run bench/load_app.py

Same page as streamlit_app.py; in addition every run of the explore fragment (a slider/pad release, a
scatter click, the pick's deferred ring redraw) and every full script run appends one JSON line:
    {"t": epoch s, "session": id, "kind": "slider" | "click" | "ring" | "full", "ms": wall time,
     "decode_ms": the explorer's own timer}
"kind" comes from the session state before and after the run: a new pick to apply (set by the click's
callback, which runs before the fragment) -> click; otherwise the
latent values changed -> slider; neither, in a fragment run -> ring (the rerun a click schedules).
A file `<log>.dump` asks for a snapshot of the server's sessions, caches and Python objects (written
as one {"kind": "dump", ...} line, then the request file is removed): see bench/load.py.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import explorer.app as app
from explorer import serving
from explorer.panels import explore

LOG = os.environ.get("LOAD_TIMINGS_LOG")
_lock = threading.Lock()


def _write(rec: dict) -> None:
    if LOG:
        with _lock, open(LOG, "a") as f:
            f.write(json.dumps(rec) + "\n")


def _snapshot() -> tuple:
    """(a new pick to apply, the latent values the last run of this session ended with, the values now).
    Callbacks (a click's, the pad's release) run before the script, so "now" at the start of a run
    already holds the new values: compare with the end of the previous run."""
    ss = st.session_state  # a click's callback has set `pick` before the run; the run applies it
    z = tuple(round(float(v), 6) for k, v in sorted(ss.to_dict().items()) if k[:1] == "z" and k[1:].isdigit())
    return ss.get("pick") != ss.get("_applied_pick"), ss.get("_load_last_z"), z


def _timed(func, fragment: bool):
    def run(*args, **kwargs):
        ctx = get_script_run_ctx()
        before = _snapshot()
        t0 = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:  # also when the fragment ends with st.rerun (a click's deferred redraw)
            ms = 1000 * (time.perf_counter() - t0)
            in_fragment = bool(ctx and ctx.fragment_ids_this_run)
            after = _snapshot()
            st.session_state["_load_last_z"] = after[2]
            kind = (
                "full"
                if not in_fragment
                else ("click" if before[0] else "slider" if before[2] != before[1] else "ring")
            )
            if fragment and not in_fragment:
                kind = "full-panel"  # the fragment's part of a full run
            _write(
                {
                    "t": time.time(),
                    "session": ctx.session_id if ctx else None,
                    "kind": kind,
                    "ms": ms,
                    "decode_ms": st.session_state.get("_timings", {}).get("decode_ms"),
                }
            )

    return run


def _dump(label: str = "") -> dict:
    """What the process holds: sessions, media files, cache entries, the commonest Python objects."""
    from streamlit.runtime import Runtime

    out = {}
    rt = Runtime.instance()
    mgr = rt._session_mgr
    out["sessions_active"] = len(mgr.list_active_sessions())
    out["sessions_all"] = len(mgr.list_sessions())
    cache = getattr(getattr(mgr, "_session_storage", None), "_cache", None)  # a TTLCache
    if label == "expire" and cache is not None:
        cache.expire()  # drop closed sessions older than server.disconnectedSessionTTL now
    if label == "trim":  # hand freed heap back to the OS: tells allocator retention from live objects
        import ctypes

        gc.collect()
        out["malloc_trim"] = ctypes.CDLL("libc.so.6").malloc_trim(0)
    # Streamlit keeps a closed session for reconnection (server.disconnectedSessionTTL, default 120 s) in a
    # TTLCache whose expired entries leave only when the cache is next written (another session closing).
    out["stored_sessions_raw"] = len(getattr(cache, "_data", {}) or {}) if cache is not None else None
    mfm = rt.media_file_mgr
    storage = getattr(mfm, "_storage", None)
    out["media_files"] = len(getattr(storage, "_files_by_id", {}) or {})
    out["media_bytes"] = sum(
        len(getattr(f, "content", b"") or b"") for f in (getattr(storage, "_files_by_id", {}) or {}).values()
    )
    out["media_by_session"] = len(getattr(mfm, "_files_by_session_and_coord", {}) or {})
    caches: dict[str, list] = {}  # "category/name" -> [entries, bytes], from Streamlit's own stats
    for stats in rt.stats_mgr.get_stats().values():
        for stat in stats:
            if hasattr(stat, "byte_length"):
                entry = caches.setdefault(f"{stat.category_name}/{stat.cache_name}", [0, 0])
                entry[0] += 1
                entry[1] += stat.byte_length
    out["caches"] = caches
    out["py_allocated_blocks"] = sys.getallocatedblocks()  # live Python objects' memory blocks
    out.update({f"malloc_{k}": v for k, v in serving.heap_stats().items()})  # in use vs free-but-kept
    out["cache_bytes"] = sum(b for _, b in caches.values())
    gc.collect()
    counts = Counter(type(o).__qualname__ for o in gc.get_objects())  # created since the freeze
    out["objects"] = dict(counts.most_common(25))
    out["gc_frozen"] = gc.get_freeze_count()
    return out


def _describe(o) -> str:
    name = type(o).__qualname__
    if isinstance(o, dict):
        return f"dict{sorted(map(str, o))[:6]}"
    if hasattr(o, "__code__"):
        return f"{name} {getattr(o, '__qualname__', '')}"
    if type(o).__name__ == "cell":
        return "cell"
    return name


def _chains(type_name: str, depth: int = 6, samples: int = 3) -> list[list[str]]:
    """For a few live objects of `type_name`: one chain of referrers each (what keeps them alive)."""
    import inspect

    frozen = gc.get_freeze_count()
    gc.unfreeze()  # get_referrers does not see frozen objects; debugging only (this costs a full collection)
    gc.collect()
    objs = [o for o in gc.get_objects() if type(o).__qualname__ == type_name][:samples]
    out = []
    for o in objs:
        chain, cur, seen = [], o, {id(objs)}
        for _ in range(depth):
            refs = gc.get_referrers(cur)
            cand = [
                r
                for r in refs
                if id(r) not in seen and not inspect.isframe(r) and r is not objs and r is not refs
            ]
            del refs
            if not cand:
                break
            seen.add(id(cur))
            # follow a non-list referrer when there is one (lists are mostly this function's own)
            cur = next((r for r in cand if not isinstance(r, list)), cand[0])
            chain.append(" | ".join(_describe(r) for r in cand[:4]))
            del cand
        out.append(chain)
    del objs, cur
    if frozen:
        gc.freeze()
    return out


def _watch_dumps() -> None:
    req = Path(f"{LOG}.dump")
    while True:
        if req.exists():
            try:
                label = req.read_text().strip()
                rec = {"t": time.time(), "kind": "dump", "label": label, **_dump(label)}
                if label.startswith("refs:"):  # e.g. "refs:WidgetMetadata"
                    rec["chains"] = _chains(label[5:])
            except Exception as e:  # report, never crash the server
                rec = {"t": time.time(), "kind": "dump", "error": repr(e)}
            _write(rec)
            req.unlink(missing_ok=True)
        time.sleep(0.2)


if LOG and not getattr(app, "_load_timed", False):  # once per process (the script reruns per session)
    app._load_timed = True
    explore.explore_panel = st.fragment(_timed(explore.explore_panel.__wrapped__, fragment=True))
    app.main = _timed(app.main, fragment=False)
    threading.Thread(target=_watch_dumps, name="load-dump", daemon=True).start()

app.main()
