"""Sweep state on disk: where sweeps live, what a sweep's files say (SweepInfo, SweepRow, SweepStatus),
its status derived from them and cancelling one. The API and the file layout: model/sweep.py."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from model.config import VAEConfig
from model.errors import JobError
from model.jobs import JobStatus, job_status, procs, read_json
from model.paths import HOME_ENV, atomic_write_text, home, shown

ROW_STATES = ("reused", "pending", "running", "succeeded", "failed", "cancelled")


class SweepError(JobError):
    """A sweep cannot start or be found; the message names the fix."""


# ----------------------------------------------------------------------------- files


def sweeps_root() -> Path:
    try:
        root = home() / "sweeps"
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SweepError(
            f"Cannot create the sweeps directory: {e.strerror or e}. "
            f"Fix: set {HOME_ENV} to a writable directory."
        ) from None
    return root


def list_sweeps() -> list[str]:
    """Sweep ids, newest first."""
    return sorted((p.name for p in sweeps_root().iterdir() if (p / "sweep.json").is_file()), reverse=True)


def latest_sweep_id() -> str | None:
    return (read_json(sweeps_root() / "latest.json") or {}).get("id")


@dataclass(frozen=True)
class SweepInfo:
    id: str
    path: Path
    backend: str  # "local" | "ray"
    address: str | None  # the Ray address
    fields: list[str]
    reused: dict[int, str]  # row index -> model id of a config already in the store
    pid: int | None  # the driver (None when every config was reused)


@dataclass
class SweepRow:
    index: int
    config: VAEConfig
    job: JobStatus | None = None
    model_id: str | None = None
    reused: bool = False
    state: str = "pending"  # one of ROW_STATES
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("reused", "succeeded")

    def label(self, fields: list[str]) -> str:
        d = self.config.to_dict()
        return " ".join(f"{'beta' if k == 'kl_weight' else k}={d[k]}" for k in fields) or self.config.slug()


@dataclass
class SweepStatus:
    id: str
    state: str  # running | succeeded | failed | cancelled
    backend: str
    address: str | None
    fields: list[str]
    rows: list[SweepRow] = field(default_factory=list)
    created: float = 0.0
    ended: float | None = None
    error: str | None = None
    cancel_requested: bool = False

    @property
    def active(self) -> bool:
        return self.state == "running"


def _sweep_dir(sweep_id: str) -> Path:
    if not isinstance(sweep_id, str) or not sweep_id or "/" in sweep_id or sweep_id.startswith("."):
        raise SweepError(f"Invalid sweep id {sweep_id!r}. Fix: pick one of list_sweeps().")
    path = sweeps_root() / sweep_id
    if not (path / "sweep.json").is_file():
        raise SweepError(f"No sweep {sweep_id!r} in {path.parent}. Fix: pick one of {list_sweeps()[:5]}.")
    return path


# ----------------------------------------------------------------------------- status


LOST = (
    "Lost: the sweep driver stopped before this config's job started. "
    "Fix: start the sweep again (finished configs are reused, not retrained)."
)


def sweep_status(sweep_id: str) -> SweepStatus:
    """The live status of a sweep, from its files (cheap enough to poll every second)."""
    path = _sweep_dir(sweep_id)
    meta, configs = _read_meta(path)
    driver = read_json(path / "driver.json") or {}
    end = read_json(path / "end.json")
    jobs = {k: v for k, v in (read_json(path / "jobs.json") or {}).items() if isinstance(v, dict)}
    alive = end is None and procs.process_alive(_int(driver.get("pid")), _number(driver.get("pid_start")))
    if end is None and not driver and time.time() - meta["created"] < 10:
        alive = True  # start_sweep is writing driver.json
    cancel_all = (path / "cancel").exists()
    reused = meta["reused"]
    rows = []
    for i, cfg in enumerate(configs):
        row = SweepRow(i, cfg)
        rec = jobs.get(str(i)) or {}
        if str(i) in reused:
            row.reused, row.state, row.model_id = True, "reused", reused[str(i)]
        elif rec.get("job"):
            try:
                row.job = job_status(rec["job"])
                row.state, row.model_id, row.error = row.job.state, row.job.model_id, row.job.error
            except JobError:  # its directory was pruned: what the driver recorded
                row.state = rec.get("state") or "failed"
                row.model_id, row.error = rec.get("model_id"), rec.get("error")
        elif rec.get("error"):
            row.state, row.error = "failed", rec["error"]
        elif cancel_all:
            row.state = "cancelled"
        elif alive:
            row.state = "pending"
        else:
            row.state, row.error = "failed", (end or {}).get("error") or LOST
        rows.append(row)
    if alive or any(r.state == "running" for r in rows):
        state = "running"
    elif all(r.ok for r in rows):
        state = "succeeded"
    elif any(r.state == "failed" for r in rows):
        state = "failed"
    else:
        state = "cancelled"
    return SweepStatus(
        id=sweep_id,
        state=state,
        backend=meta["backend"],
        address=meta["address"],
        fields=meta["fields"],
        rows=rows,
        created=meta["created"],
        ended=None if state == "running" else _number((end or {}).get("ended")),
        error=_text((end or {}).get("error")),
        cancel_requested=cancel_all,
    )


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _int(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _text(v) -> str | None:
    return v if isinstance(v, str) else None


def _read_meta(path: Path) -> tuple[dict, list[VAEConfig]]:
    """sweep.json's fields, each checked, and its configs; a damaged file is a SweepError saying so."""
    meta = read_json(path / "sweep.json")
    damaged = (
        f"The sweep {path.name}'s sweep.json is damaged or not a sweep's ({{}}). "
        f"Fix: delete the folder {shown(path)}; its models stay in the store."
    )
    configs = (meta or {}).get("configs")
    if not isinstance(configs, list) or not configs:
        raise SweepError(damaged.format("no list of configs"))
    try:
        configs = [VAEConfig.from_dict(c, strict=False) for c in configs]
    except (TypeError, ValueError) as e:
        raise SweepError(damaged.format(f"a config cannot be read: {e}")) from None
    reused = meta.get("reused")
    fields_ = meta.get("fields")
    checked = {
        "backend": meta.get("backend") if meta.get("backend") in ("local", "ray") else "local",
        "address": _text(meta.get("address")),
        "fields": [f for f in fields_ if isinstance(f, str)] if isinstance(fields_, list) else [],
        "created": _number(meta.get("created")) or 0.0,
        "reused": {k: v for k, v in reused.items() if isinstance(v, str)} if isinstance(reused, dict) else {},
    }
    return checked, configs


def cancel_sweep(sweep_id: str, job_id: str | None = None) -> SweepStatus:
    """Cancel one job of the sweep (`job_id`), or all of them and every job not started yet."""
    from model.jobs import cancel_job

    path = _sweep_dir(sweep_id)
    st = sweep_status(sweep_id)
    jobs = [r.job.id for r in st.rows if r.job is not None and r.job.active]
    if job_id is not None:
        if job_id not in [r.job.id for r in st.rows if r.job is not None]:
            raise SweepError(f"No job {job_id!r} in sweep {sweep_id}. Fix: pick one of its rows' jobs.")
        jobs = [job_id] if job_id in jobs else []
    else:
        atomic_write_text(path / "cancel", str(time.time()))
    for j in jobs:
        cancel_job(j)
    return sweep_status(sweep_id)
