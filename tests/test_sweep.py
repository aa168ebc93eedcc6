"""Sweeps (model.sweep) on both job backends (model.jobs.backends): the local runner and a real Ray.

The behavioural tests run once per backend: "local" (one job process after another) and "ray" (a real
local Ray instance on 127.0.0.1, started once per session with token authentication and shut down at
the end; each job a Ray task). Every job trains a tiny model (512 images, 1 epoch).
"""

import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from model import jobs, sweep
from model.config import VAEConfig
from model.errors import JobError
from model.jobs import files, procs
from model.store import ModelStore

REPO = Path(__file__).resolve().parents[1]
TINY = VAEConfig(epochs=1, limit=512)
pytestmark = pytest.mark.timeout(900)  # a safety net: the machine may be busy

HOLDER = textwrap.dedent(
    """
    import json, sys
    import ray
    ctx = ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=sys.argv[1],
                   _node_ip_address="127.0.0.1", logging_level="error")
    print(json.dumps({"address": ctx.address_info["gcs_address"]}), flush=True)
    sys.stdin.read()  # until the test session closes our stdin
    ray.shutdown()
    """
)


def _processes_using(marker: str) -> list[int]:
    """Pids of live processes whose command line mentions `marker` (our Ray instance's temp dir)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd and procs.process_alive(int(p.name), None):
                pids.append(int(p.name))
    return pids


@pytest.fixture(scope="session")
def ray_address():
    """A real local Ray instance for the session (2 CPUs, 127.0.0.1, token authentication); its address.

    Its processes are started by a holder process and stopped by `ray.shutdown()` when the session ends;
    any process left with our temp dir in its command line is then killed by pid."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths live under it
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, temp],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = holder.stdout.readline()
        assert line, "the Ray holder process did not start"
        yield json.loads(line)["address"]
    finally:
        holder.stdin.close()
        try:
            holder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
        time.sleep(1.0)
        for pid in _processes_using(temp):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(params=["local", "ray"])
def backend(request, monkeypatch):
    """The backend argument of start_sweep / --ray: "local", or the session's Ray address."""
    monkeypatch.setenv(jobs.NICE_ENV, "0")  # the machine is shared: niced jobs crawl
    monkeypatch.delenv("LATENT_EXPLORER_RAY_ADDRESS", raising=False)
    if request.param == "local":
        return "local"
    return request.getfixturevalue("ray_address")


@pytest.fixture(autouse=True)
def _no_stray_processes():
    """Kill any sweep driver or local job process a failing test left running (ours, by pid)."""
    yield
    try:
        for sweep_id in sweep.list_sweeps():
            d = files.read_json(sweep.sweeps_root() / sweep_id / "driver.json") or {}
            if procs.process_alive(d.get("pid"), d.get("pid_start")):
                os.kill(d["pid"], signal.SIGKILL)
        for job_id in jobs.list_jobs():
            s = files.read_json(jobs.jobs_root() / job_id / "status.json") or {}
            if s.get("backend", "local") == "local" and procs.process_alive(s.get("pid"), s.get("pid_start")):
                os.kill(s["pid"], signal.SIGKILL)
    except (JobError, OSError):
        pass


def wait_sweep(sweep_id, predicate=lambda st: not st.active, timeout=600.0, each=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = sweep.sweep_status(sweep_id)
        if each:
            each(st)
        if predicate(st):
            return st
        time.sleep(0.2)
    raise AssertionError(f"timed out; last status {st}")


def worker_pid(job_id) -> int | None:
    """The pid of the process training the job (its `start` event: a job process or a Ray worker)."""
    evs = files.events(jobs.jobs_root() / job_id / "progress.jsonl")
    return next((e.get("pid") for e in evs if e.get("event") == "start"), None)


def model_dirs(store):
    return sorted(p.name for p in store.root.iterdir() if p.is_dir()) if store.root.is_dir() else []


# ----------------------------------------------------------------------------- grid and CLI (no training)


def test_parse_grid_types_values_by_field_and_names_bad_input():
    grid = sweep.parse_grid(["latent-dim=2,8", "learning_rate=0.001,2e-3", "limit=none,512", "loss=mse"])
    assert grid == {
        "latent_dim": [2, 8],
        "learning_rate": [0.001, 0.002],
        "limit": [None, 512],
        "loss": ["mse"],
    }
    for item, words in [
        ("nope=1,2", "Unknown grid field 'nope'"),
        ("latent_dim=2,x", "'x'"),
        ("latent_dim=0", "latent_dim"),
        ("loss=l1", "loss"),
        ("latent_dim", "FIELD=V1,V2"),
        ("latent_dim=2,,3", "Empty value"),
    ]:
        with pytest.raises(ValueError, match=words):
            sweep.parse_grid([item])
    with pytest.raises(ValueError, match="given twice"):
        sweep.parse_grid(["seed=1", "seed=2"])


def test_expand_is_the_product_first_key_slowest_without_duplicates():
    configs = sweep.expand(TINY, {"latent_dim": [2, 8], "seed": [0, 1, 0]})
    assert [(c.latent_dim, c.seed) for c in configs] == [(2, 0), (2, 1), (8, 0), (8, 1)]
    assert all(c.epochs == 1 and c.limit == 512 for c in configs)
    assert sweep.swept_fields(configs) == ["latent_dim", "seed"]


def test_the_local_path_imports_no_ray_and_no_tensorflow():
    code = (
        "import sys, model.sweep, model.jobs.backends as b; "
        "b.make_backend('local'); model.sweep.parse_grid(['beta=1,2']); "
        "print(sorted(m for m in ('ray', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--grid", "nope=1"], "Unknown grid field"),
        (["--grid", "seed=1", "--weights", "x.h5"], "--weights is not a sweep option"),
        (["--grid", "seed=1", "--ray", "nowhere"], "Expected a backend"),
        (["--grid", "seed=1", "--cpus-per-job", "0"], "--cpus-per-job > 0"),
        (["--grid", "seed=1", "--epochs", "zero"], "epochs"),
        (["--epochs", "1"], "--grid"),
    ],
)
def test_cli_bad_flags_give_one_line_and_exit_2(empty_home, capsys, argv, words):
    assert sweep.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err
    assert sweep.list_sweeps() == []


# ----------------------------------------------------------------------------- both backends


def test_cli_sweep_of_beta_trains_each_config_and_reuses_them_the_second_time(home, backend, tmp_path):
    store = ModelStore()
    before = model_dirs(store)
    out = tmp_path / "out.json"
    cmd = [sys.executable, "-m", "model.sweep", "--grid", "beta=0.5,2", "--limit", "512", "--epochs", "1"]
    cmd += ["--json", str(out)] + ([] if backend == "local" else ["--ray", backend])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cli = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 60
    while sweep.latest_sweep_id() is None and time.time() < deadline and cli.poll() is None:
        time.sleep(0.2)
    sweep_id = sweep.latest_sweep_id()
    assert sweep_id, cli.communicate()[0]
    progressed = set()  # rows whose job reported training progress while it ran

    def watch(st):
        for row in st.rows:
            if row.job is not None and row.job.active and row.job.step > 0 and row.job.steps:
                progressed.add(row.index)

    st = wait_sweep(sweep_id, each=watch)
    output = cli.communicate(timeout=300)[0]
    assert cli.returncode == 0, output
    assert st.state == "succeeded" and st.backend == ("local" if backend == "local" else "ray")
    assert progressed == {0, 1}
    assert "[1/2] beta=0.5: running" in output and "[2/2] beta=2.0: succeeded" in output
    table = json.loads(out.read_text())
    assert table["state"] == "succeeded" and table["fields"] == ["kl_weight"]
    assert [r["kl_weight"] for r in table["rows"]] == [0.5, 2.0]
    for r in table["rows"]:
        rec = store.record(r["model_id"])
        assert rec.config == TINY.replace(kl_weight=r["kl_weight"]) == VAEConfig.from_dict(r["config"])
        assert rec.extra["job"] == r["job"] and not r["reused"]
        assert r["test_loss"] == pytest.approx(rec.test_metrics["loss"])
        assert r["reconstruction_loss"] == pytest.approx(rec.test_metrics["reconstruction_loss"])
        assert r["kl_loss"] == pytest.approx(rec.test_metrics["kl_loss"])
        assert 0.0 <= r["knn_accuracy"] <= 1.0
    assert len(model_dirs(store)) == len(before) + 2

    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already in the store: not retrained" in again.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["reused"] for r in rows] == [True, True]
    assert [r["model_id"] for r in rows] == [r["model_id"] for r in table["rows"]]
    assert len(model_dirs(store)) == len(before) + 2


def test_cancel_one_job_and_kill_anothers_process_the_third_succeeds(home, backend):
    store = ModelStore()
    configs = [dataclasses.replace(TINY, seed=s, batch_size=32) for s in (3, 4, 5)]
    info = sweep.start_sweep(configs, backend=backend)
    acted: dict[int, str] = {}  # row index -> "cancel" | "kill"

    def act(st):
        for row in st.rows:
            js = row.job
            if row.index in acted or js is None or not js.active or js.step == 0:
                continue
            if "cancel" not in acted.values():
                sweep.cancel_sweep(info.id, js.id)
                acted[row.index] = "cancel"
            elif "kill" not in acted.values():
                pid = worker_pid(js.id)
                assert pid and pid != os.getpid()
                os.kill(pid, signal.SIGKILL)
                acted[row.index] = "kill"

    st = wait_sweep(info.id, each=act)
    assert sorted(acted.values()) == ["cancel", "kill"], acted
    by_action = {a: st.rows[i] for i, a in acted.items()}
    (rest,) = [r for r in st.rows if r.index not in acted]
    cancelled, killed = by_action["cancel"], by_action["kill"]
    assert cancelled.state == "cancelled" and cancelled.model_id is None
    assert store.find(cancelled.config) is None
    assert killed.state == "failed" and store.find(killed.config) is None
    assert (
        ("worker" in killed.error and "died" in killed.error)
        if backend != "local"
        else "SIGKILL" in killed.error
    )
    assert rest.state == "succeeded" and store.record(rest.model_id).config == rest.config
    assert st.state == "failed"
    assert not [p for p in store.root.iterdir() if p.name.startswith(".tmp-")]
    assert jobs.job_status(cancelled.job.id).state == "cancelled"  # the same files for model.jobs


def test_a_killed_driver_leaves_nothing_running_and_nothing_half_saved(home, backend):
    store = ModelStore()
    before = model_dirs(store)
    configs = [dataclasses.replace(TINY, seed=s) for s in (6, 7)]
    info = sweep.start_sweep(configs, backend=backend, cpus_per_job=2)  # Ray: one job at a time
    st = wait_sweep(info.id, lambda st: any(r.job and r.job.active and r.job.step > 0 for r in st.rows))
    os.kill(info.pid, signal.SIGKILL)
    st = wait_sweep(info.id, timeout=300)
    assert st.state in ("failed", "succeeded")
    assert all(r.state in ("succeeded", "failed") for r in st.rows)
    lost = [r for r in st.rows if r.state == "failed"]
    assert lost and all("lost" in r.error.lower() for r in lost)
    # a local job process outlives its driver and may finish; a Ray task dies with its owner
    assert len(model_dirs(store)) - len(before) == sum(r.state == "succeeded" for r in st.rows)
    assert not [p for p in store.root.iterdir() if p.name.startswith(".tmp-")]


def test_damaged_sweep_files_give_a_sweep_error_or_are_read_around(empty_home):
    """sweep.json that is not a sweep's is a SweepError naming it; wrong types elsewhere are ignored."""
    root = sweep.sweeps_root()
    good = {"configs": [TINY.to_dict()], "fields": ["kl_weight"], "backend": "local", "created": 1.0}
    for name, meta in {
        "empty": "",
        "list": "[1]",
        "noconfigs": json.dumps({"fields": []}),
        "badconfig": json.dumps({"configs": [{"epochs": "x"}]}),
        "configsnum": json.dumps({"configs": 5}),
    }.items():
        (root / name).mkdir()
        (root / name / "sweep.json").write_text(meta)
        with pytest.raises(sweep.SweepError, match="sweep.json is damaged"):
            sweep.sweep_status(name)
    (root / "odd").mkdir()
    (root / "odd" / "sweep.json").write_text(json.dumps({**good, "created": "x", "reused": [1], "fields": 3}))
    (root / "odd" / "jobs.json").write_text(json.dumps({"0": 5}))
    (root / "odd" / "driver.json").write_text(json.dumps({"pid": "x", "pid_start": []}))
    (root / "odd" / "end.json").write_text(json.dumps({"ended": "x", "error": 7}))
    st = sweep.sweep_status("odd")
    assert [r.state for r in st.rows] == ["failed"] and st.state == "failed" and st.fields == []
