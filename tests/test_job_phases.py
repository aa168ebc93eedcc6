"""A training job says what it does before its first batch: loading the data, loading TensorFlow, building
the model, then the first batch (Keras compiling the training step), instead of a bare "Starting"."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from explorer.panels.training_jobs import progress_text
from model import jobs
from model.config import VAEConfig
from model.jobs import procs
from model.jobs import status as S
from model.progress import read_events

pytestmark = pytest.mark.timeout(300)


def _status(events, now=None):
    return S.build(
        "j",
        {"config": {"epochs": 2, "batch_size": 128}, "started": 1.0},
        events,
        S.Verdict("running"),
        cancel_requested=False,
        now=now,
    )


def test_phase_events_name_what_a_starting_job_does():
    t = time.time()
    data, tf, build = ({"event": "phase", "time": t - 30 + i, "what": w} for i, w in enumerate(S.PHASES))
    assert _status([]).activity is None and progress_text(_status([])).startswith("Starting")
    js = _status([data, tf])
    assert (js.phase, js.activity) == ("starting", "loading TensorFlow")
    assert 28 <= js.activity_elapsed <= 40, js.activity_elapsed
    assert progress_text(js).startswith("Starting: loading TensorFlow… (0:")
    assert _status([data, tf, build]).activity == "building the model"
    start = {"event": "start", "time": t - 5, "epochs": 2, "steps": 8}
    js = _status([data, tf, build, start])
    assert (js.phase, js.activity, js.step) == ("training", S.FIRST_BATCH, 0)
    assert progress_text(js).startswith("Epoch 1/2 · first batch (compiling the training step)… (0:0")
    batch = {"event": "batch", "time": t - 1, "epoch": 0, "step": 2, "loss": 300.0}
    js = _status([data, tf, build, start, batch])
    assert js.activity is None and progress_text(js) == "Epoch 1/2 · batch 2/8"
    failed = S.Verdict("failed", error="x")
    ended = S.build("j", {"config": {"epochs": 2}}, [data, tf], failed, cancel_requested=False)
    assert ended.activity is None  # an ended job is not "loading" anything


@pytest.fixture
def _nice0(monkeypatch):
    monkeypatch.setenv(jobs.NICE_ENV, "0")
    yield
    for job_id in jobs.list_jobs():
        st = json.loads((jobs.jobs_root() / job_id / "status.json").read_text())
        if procs.process_alive(st.get("pid"), st.get("pid_start")):
            os.kill(st["pid"], signal.SIGKILL)


def test_the_job_process_writes_its_phases_before_training(home, _nice0):
    info = jobs.start_job(VAEConfig(epochs=1, limit=256))
    seen = set()
    deadline = time.time() + 240
    while (js := jobs.job_status(info.id)).active and time.time() < deadline:
        if js.activity:
            seen.add(js.activity)
        time.sleep(0.05)
    assert js.state == "succeeded", js.error
    events = read_events(info.path / "progress.jsonl")
    kinds = [e["event"] for e in events]
    phases = [e["what"] for e in events if e["event"] == "phase"]
    assert phases == list(S.PHASES), phases
    assert kinds.index("start") == len(phases), kinds  # every phase comes before Keras' start event
    times = [e["time"] for e in events]
    assert times == sorted(times)
    assert seen, "the status never named what the starting job was doing"
    assert seen <= {*S.PHASES, S.FIRST_BATCH}, seen
    start = events[len(phases)]["time"]
    took = [
        (e["what"], round(b["time"] - e["time"], 1))
        for e, b in zip(events, events[1:])
        if e["event"] == "phase"
    ]
    first = next(e["time"] for e in events if e["event"] == "batch")
    print(f"phase seconds: {took}, start -> first batch: {first - start:.1f}")
