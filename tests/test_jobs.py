"""Background training jobs (model.jobs) and the retrain panel (explorer.panels.retrain), with real processes.

Each job trains a tiny model (256 images, 1 epoch); a job process spends most of its ~10-20 s loading
TensorFlow and validating on the 10k test images. Every test runs in its own temporary home.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from model import jobs
from model.config import VAEConfig
from model.errors import JobError
from model.jobs import files, procs
from model.jobs import status as status_mod
from model.latent import LatentModel
from model.store import ModelStore

TINY = VAEConfig(epochs=1, limit=256)
REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)  # a safety net: the machine may be busy


@pytest.fixture(autouse=True)
def _no_stray_jobs(monkeypatch):
    """Jobs at normal priority (the machine is shared: niced jobs crawl); kill any a test left running."""
    monkeypatch.setenv(jobs.NICE_ENV, "0")
    yield
    try:
        root = jobs.jobs_root()
    except JobError:
        return
    for job_id in jobs.list_jobs():
        status = files.read_status(root / job_id / "status.json") or {}
        if procs.process_alive(status.get("pid"), status.get("pid_start")):
            os.kill(status["pid"], signal.SIGKILL)


def wait_for(job_id, predicate, timeout=240.0):
    """Poll the job until predicate(status) holds; returns every status seen."""
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        js = jobs.job_status(job_id)
        seen.append(js)
        if predicate(js):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"timed out; last status {seen[-1]}")


def model_dirs(store):
    return sorted(p.name for p in store.root.iterdir() if p.is_dir())


def assert_untouched(store, old_id, old_dirs):
    """The previous model is still current and loadable, and nothing new or partial is in the store."""
    assert store.current().id == old_id
    assert model_dirs(store) == old_dirs
    assert not list(store.root.glob(".tmp-*"))
    digit = LatentModel.from_record(store.record(old_id)).decode(np.zeros((1, 2), "float32"))
    assert digit.shape == (1, 28, 28) and np.isfinite(digit).all()


def jobs_status_cli() -> str:
    """What `python -m model.jobs status` prints, run in another process (as a second server would)."""
    return subprocess.run(
        [sys.executable, "-m", "model.jobs", "status"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=60,
    ).stdout


def _beatable(store, model_id: str) -> None:
    """Give the default model a poor test loss, so a tiny job's model is not much worse than it (a much
    worse one is saved but does not become the default: ModelStore.offer_as_default)."""
    meta_path = store.record(model_id).path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["test_metrics"]["loss"] = 1e4
    meta_path.write_text(json.dumps(meta))


def test_job_progress_then_new_model_becomes_current(home):
    store = ModelStore()
    old = store.current().id
    _beatable(store, old)
    info = jobs.start_job(TINY)
    assert info.new and info.pid and (info.path / "status.json").is_file()
    assert jobs.active_job().id == info.id
    seen = wait_for(info.id, lambda js: not js.active)
    final = seen[-1]
    assert final.state == "succeeded", final.error
    # progress was visible while it ran: batches, then an ETA, a loss, and the validation phase
    running = [js for js in seen if js.active]
    assert {js.phase for js in running} >= {"starting", "validating"}
    assert any(js.steps == 1 + (256 - 1) // 128 and js.step > 0 and js.loss > 0 for js in running)
    assert any(js.eta is not None for js in running)
    assert final.history["loss"] and final.history["val_loss"] and final.curve
    assert final.fraction == 1.0 and final.elapsed > 0 and final.ended
    # the new model is saved and current; the old one is still there and loadable
    assert final.model_id and final.model_id != old
    assert store.current().id == final.model_id
    assert {old, final.model_id} <= {r.id for r in store.list()}
    assert store.record(final.model_id).config == TINY
    assert LatentModel.from_record(store.record(old)).decode(np.zeros((1, 2), "float32")).shape == (1, 28, 28)
    assert jobs.active_job() is None
    assert not procs.lock_held(jobs.jobs_root() / "job.lock")
    deadline = time.time() + 30  # the process may take a few seconds to exit after its last event
    while (
        time.time() < deadline and json.loads((info.path / "status.json").read_text())["returncode"] is None
    ):
        time.sleep(0.1)
    status = json.loads((info.path / "status.json").read_text())  # the reaper thread recorded the exit
    assert status["state"] == "succeeded" and status["returncode"] == 0


def test_concurrent_starts_from_threads_and_a_process_give_one_job(home, tmp_path):
    go = tmp_path / "go"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import os, time
            from model.config import VAEConfig
            from model.jobs import start_job
            while not os.path.exists({str(go)!r}):
                time.sleep(0.005)
            info = start_job(VAEConfig(epochs=1, limit=256))
            print(info.id, info.new)
        """),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    time.sleep(1.0)  # let the child import model.jobs and wait for the signal
    barrier = threading.Barrier(5)
    results = []

    def start():
        barrier.wait()
        results.append(jobs.start_job(TINY))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    go.touch()
    barrier.wait()
    for t in threads:
        t.join()
    out, _ = child.communicate(timeout=60)
    child_id, child_new = out.split()
    ids = {r.id for r in results} | {child_id}
    assert len(ids) == 1, ids
    assert [r.new for r in results].count(True) + (child_new == "True") == 1
    assert jobs.list_jobs() == [child_id]
    # a second start while it runs returns the running job
    again = jobs.start_job(VAEConfig(epochs=2, limit=512))
    assert again.id == child_id and not again.new
    jobs.cancel_job()
    final = wait_for(child_id, lambda js: not js.active)[-1]
    assert final.state == "cancelled"


def test_cancel_mid_epoch_keeps_the_current_model_even_if_the_launcher_died(home):
    store = ModelStore()
    old, dirs = store.current().id, model_dirs(store)
    # another process starts the job and exits at once (a Streamlit server that went away)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from model.config import VAEConfig; from model.jobs import start_job; "
            "print(start_job(VAEConfig(epochs=1, limit=16384, batch_size=32)).id)",
        ],  # 512 steps: the cancel lands mid-epoch even on a quick machine
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    job_id = out.stdout.strip()
    assert jobs.active_job().id == job_id  # the job outlives its launcher
    wait_for(job_id, lambda js: js.step >= 1 or not js.active)
    js = jobs.cancel_job()
    assert js.id == job_id and js.cancel_requested
    final = wait_for(job_id, lambda js: not js.active)[-1]
    assert final.state == "cancelled" and final.model_id is None
    assert final.epochs_done == 0  # it really stopped mid-epoch
    assert_untouched(store, old, dirs)
    assert not procs.lock_held(jobs.jobs_root() / "job.lock")


def test_kill_9_mid_epoch_fails_the_job_and_keeps_the_old_model(home):
    store = ModelStore()
    old, dirs = store.current().id, model_dirs(store)
    info = jobs.start_job(VAEConfig(epochs=1, limit=4096, batch_size=32))
    wait_for(info.id, lambda js: js.step >= 1 or not js.active)
    assert procs.lock_held(jobs.jobs_root() / "job.lock")  # the job process holds the lock
    os.kill(info.pid, signal.SIGKILL)
    final = wait_for(info.id, lambda js: not js.active, timeout=10)[-1]
    assert final.state == "failed"
    assert "killed (SIGKILL)" in final.error and "previous models are untouched" in final.error
    assert final.epochs_done == 0
    assert_untouched(store, old, dirs)
    assert not procs.lock_held(jobs.jobs_root() / "job.lock")  # the kernel released it
    # another process (say a second server) sees the same verdict
    out = jobs_status_cli()
    assert f"{info.id}: failed" in out and "SIGKILL" in out


def test_kill_9_while_saving_leaves_no_partial_model(home):
    """A save killed halfway leaves only a hidden temp dir, ignored by the store and swept later."""
    store = ModelStore()
    old, dirs = store.current().id, model_dirs(store)
    script = textwrap.dedent("""
        import os, signal
        from model.config import VAEConfig
        from model.store import ModelStore

        class Part:  # stands in for a Keras model: writes its file; the decoder then kill -9s the saver
            def __init__(self, die):
                self.die = die

            def save(self, path):
                open(path, "wb").write(b"weights" * 1000)
                if self.die:
                    os.kill(os.getpid(), signal.SIGKILL)

        ModelStore().save(Part(False), Part(True), VAEConfig(epochs=1, limit=256))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, timeout=90, env=dict(os.environ, PYTHONPATH=str(REPO))
    )
    assert proc.returncode == -signal.SIGKILL
    partial = list(store.root.glob(".tmp-*"))
    assert len(partial) == 1 and (partial[0] / "decoder.keras").exists()
    assert store.current().id == old and [r.id for r in store.list()] == [old]
    assert store.sweep() == partial  # the saver is dead: its temp dir goes
    assert_untouched(store, old, dirs)


def test_nan_loss_fails_with_a_message(home):
    store = ModelStore()
    old, dirs = store.current().id, model_dirs(store)
    info = jobs.start_job(VAEConfig(epochs=1, limit=256, batch_size=32, learning_rate=0.99))
    final = wait_for(info.id, lambda js: not js.active)[-1]
    assert final.state == "failed"
    assert "NaN" in final.error and "Fix: lower the learning rate" in final.error
    assert_untouched(store, old, dirs)


def test_unwritable_home_gives_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the home should be")
    monkeypatch.setenv("LATENT_EXPLORER_HOME", str(blocker / "home"))
    with pytest.raises(JobError, match="LATENT_EXPLORER_HOME to a writable directory"):
        jobs.start_job(TINY)


def test_unwritable_store_fails_the_job_with_a_clear_status(home):
    (home / "models").rename(home / "models.bak")
    (home / "models").write_text("a file where the model store should be")
    info = jobs.start_job(TINY)
    final = wait_for(info.id, lambda js: not js.active)[-1]
    assert final.state == "failed"
    assert "model store" in final.error and "LATENT_EXPLORER_HOME" in final.error


# ----------------------------------------------------------------------------- the store decides


class _Part:
    """Stands in for a Keras model in ModelStore.save (no training needed)."""

    def save(self, path):
        Path(path).write_bytes(b"weights")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _ended_job(job_id, *, events=(), returncode=-9, cancel=False, saved=None):
    """A job directory as a job process leaves it when it dies: status.json still says running, a dead
    pid, the given progress events; `saved` = None (no model), "renamed" (the model directory is in
    place, current.json not yet changed) or "current" (the model is also current)."""
    from model.progress import write_event

    job_dir = jobs.jobs_root() / job_id
    job_dir.mkdir()
    files.write_json(
        job_dir / "status.json",
        {
            "id": job_id,
            "state": "running",
            "config": TINY.to_dict(),
            "pid": _dead_pid(),
            "pid_start": None,
            "started": time.time() - 30,
            "ended": None,
            "returncode": returncode,
            "model_id": None,
            "error": None,
        },
    )
    files.write_json(jobs.jobs_root() / "latest.json", {"id": job_id})
    write_event(job_dir / "progress.jsonl", "start", epochs=1, steps=2, pid=0)
    for kind, fields in events:
        write_event(job_dir / "progress.jsonl", kind, **fields)
    if cancel:
        (job_dir / "cancel").write_text("1")
    if saved:
        return ModelStore().save(
            _Part(), _Part(), TINY, extra={"job": job_id}, make_current=saved == "current"
        )
    return None


@pytest.mark.parametrize(
    "case",
    [
        "killed after the rename",
        "killed after current.json",
        "disk full after the save",
        "cancelled too late",
    ],
)
def test_status_is_derived_from_the_store_when_the_job_saved_a_model(home, case):
    store = ModelStore()
    old = store.current().id
    full = (
        "error",
        {
            "message": "File system error on /h/jobs/x/progress.jsonl: No space left on device. "
            "Fix: free disk space, then start again; the previous models are untouched."
        },
    )
    rec = _ended_job(
        "20990101-000000-aaaaaa",
        saved="renamed" if case == "killed after the rename" else "current",
        events=[full] if case == "disk full after the save" else (),
        returncode=1 if case == "disk full after the save" else -9,
        cancel=case == "cancelled too late",
    )
    js = jobs.job_status("20990101-000000-aaaaaa")
    assert js.state == "succeeded" and js.model_id == rec.id and js.error is None, js
    assert js.phase == "ended" and not js.active
    if case == "killed after the rename":
        assert "killed (SIGKILL)" in js.warning and "not made the current model" in js.warning
        assert store.current().id == old
    elif case == "killed after current.json":
        assert "killed (SIGKILL)" in js.warning and "current" not in js.warning
        assert store.current().id == rec.id
    elif case == "disk full after the save":
        assert "No space left on device" in js.warning
        # the failed job's advice ("free disk space, then start again") is wrong once the model is saved
        assert "then start again" not in js.warning and "nothing to start again" in js.warning
        assert js.warning.endswith("Fix: free disk space before the next training.")
    else:
        assert js.warning is None  # a cancel that came after the save: the model stands
    assert "previous models are untouched" not in (js.warning or "")
    assert jobs.active_job() is None
    status = json.loads((jobs.jobs_root() / js.id / "status.json").read_text())
    assert status["state"] == "succeeded" and status["model_id"] == rec.id  # recorded for other readers
    out = jobs_status_cli()
    assert f"{js.id}: succeeded" in out and f"model: {rec.id}" in out


def test_no_saved_model_means_failed_even_with_models_of_other_jobs(home):
    _ended_job("20990101-000000-bbbbbb", saved="current")  # another job's model, same config
    _ended_job("20990101-000000-cccccc")
    js = jobs.job_status("20990101-000000-cccccc")
    assert js.state == "failed" and js.model_id is None
    assert "killed (SIGKILL)" in js.error and "previous models are untouched" in js.error
    _ended_job("20990101-000000-dddddd", cancel=True)
    assert jobs.job_status("20990101-000000-dddddd").state == "cancelled"


def test_a_real_job_killed_right_after_the_save_reports_the_saved_model(home, tmp_path, monkeypatch):
    """The real job process, killed with SIGKILL at the moment current.json would change."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        textwrap.dedent("""
        import os, signal
        from model import store

        def die(self, model_id):
            os.kill(os.getpid(), signal.SIGKILL)

        store.ModelStore.set_current = die
    """)
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))  # the job process inherits it (after the repo root)
    store = ModelStore()
    old = store.current().id
    _beatable(store, old)  # so the job's model is offered as the default: set_current is called
    info = jobs.start_job(TINY)
    final = wait_for(info.id, lambda js: not js.active)[-1]
    assert final.state == "succeeded", final.error
    assert final.model_id and final.model_id != old and final.returncode == -signal.SIGKILL
    assert "killed (SIGKILL)" in final.warning and "not made the current model" in final.warning
    assert store.record(final.model_id).extra["job"] == info.id
    assert store.current().id == old
    assert not (info.path / "vae.weights.h5").exists() and not (info.path / "logs").exists()  # --no-files


def test_death_messages_name_the_cause_and_the_fix():
    full = "Traceback...\nOSError: [Errno 28] No space left on device: '/x/models/.tmp-1'\n"
    assert "disk is full. Fix: free disk space" in jobs.death_message(1, full)
    assert "killed (SIGKILL)" in jobs.death_message(-9, "")
    msg = jobs.death_message(2, "...\nerror: No model 'x'. Fix: train one\n")
    assert msg.startswith("The training process exited with code 2") and "No model 'x'. Fix: train one" in msg


def test_loss_curve_breaks_between_epochs():
    from explorer.panels.training_jobs import loss_figure

    js = jobs.JobStatus(
        id="j",
        state="running",
        phase="training",
        config={},
        epochs=3,
        steps=10,
        curve=[(0.5, 5.0), (1.0, 4.0), (1.5, 3.0), (2.0, 2.5), (2.5, 2.0)],
        history={"loss": [4.0, 2.5], "val_loss": [3.9, 2.4]},
    )
    fig = loss_figure(js)
    assert fig.data[0].x == (0.5, 1.0, None, 1.5, 2.0, None, 2.5)  # Keras' running mean restarts per epoch
    assert [t.name for t in fig.data] == ["training (batches)", "training (epoch)", "validation"]
    assert fig.data[2].y == (3.9, 2.4)


def test_eta_from_step_rate_and_validation_time():
    start = {"time": 100.0}
    batches = [
        {"epoch": 0, "step": 1, "time": 101.0},
        {"epoch": 0, "step": 11, "time": 102.0},
        {"epoch": 0, "step": 20, "time": 102.9},
        {"epoch": 1, "step": 10, "time": 106.0},
    ]
    epochs = [{"epoch": 0, "time": 105.0}]  # 2.1 s of validation after the last batch
    # per step 0.1 s; left: 30 steps of epoch 2 and 20 of epoch 3, two validations + the final one + save
    eta = status_mod.eta(start, batches, epochs, epochs=3, steps=20, batch_size=128, now=106.0)
    assert eta == pytest.approx(30 * 0.1 + 3 * 2.1 + jobs.SAVE_S)
    assert status_mod.eta(start, batches[:1], [], epochs=3, steps=20, batch_size=128) is None


# ----------------------------------------------------------------------------- the Streamlit panel


def _panel_app():
    import streamlit as st

    from explorer.panels.retrain import first_run, retrain_panel
    from model.store import ModelStore

    store = ModelStore()
    with st.sidebar:
        retrain_panel(store)
    if store.current() is None:
        first_run(store)


def test_retrain_panel_starts_shows_and_cancels_a_job(home):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_panel_app, default_timeout=30).run()
    assert not at.exception
    at.sidebar.number_input(key="retrain_epochs").set_value(1)
    at.sidebar.selectbox(key="retrain_limit").set_value(256)
    at.sidebar.radio(key="retrain_schedule").set_value("cosine")
    at.sidebar.number_input(key="retrain_beta").set_value(4.0)
    at.sidebar.button[0].click().run()  # Start training
    assert not at.exception
    assert "Training started" in at.sidebar.success[0].value
    job = jobs.active_job()
    assert job is not None and job.config["epochs"] == 1 and job.config["limit"] == 256
    assert job.config["lr_schedule"] == "cosine"
    # the job's config.json is the VAEConfig the form built, β included
    saved = json.loads((jobs.jobs_root() / job.id / "config.json").read_text())
    assert saved == VAEConfig(epochs=1, limit=256, lr_schedule="cosine", kl_weight=4.0).to_dict()
    # another session sees the running job, with its Start button disabled
    other = AppTest.from_function(_panel_app, default_timeout=30).run()
    assert any("**Training** MNIST digits" in m.value and "β 4" in m.value for m in other.sidebar.markdown)
    assert other.sidebar.button[0].disabled
    assert len(other.sidebar.get("progress")) == 1
    # Cancel in the first session
    cancel = next(b for b in at.sidebar.button if b.key == "retrain_cancel_sidebar")
    cancel.click().run()
    assert not at.exception
    assert any(c.value == "Cancelling…" for c in at.sidebar.caption)
    final = wait_for(job.id, lambda js: not js.active, timeout=30)[-1]
    assert final.state == "cancelled"
    other.run()
    assert any("cancelled" in w.value for w in other.sidebar.warning)
    assert not other.sidebar.button[0].disabled


def test_start_with_a_config_trained_already_offers_that_model(home):
    """Five Start presses with one config made five duplicate models."""
    from streamlit.testing.v1 import AppTest

    store = ModelStore()
    first = store.current().id
    twin = store.save(_Part(), _Part(), VAEConfig(epochs=1, limit=256), make_current=False)
    at = AppTest.from_function(_panel_app, default_timeout=30).run()
    at.sidebar.number_input(key="retrain_epochs").set_value(1)
    at.sidebar.selectbox(key="retrain_limit").set_value(256)
    at.sidebar.button[0].click().run()  # Start training
    assert not at.exception
    assert jobs.latest_job() is None  # nothing started yet
    [offer] = [i.value for i in at.sidebar.info if "trained already" in i.value]
    assert twin.label in offer
    at.button(key="retrain_dup_explore").click().run()
    assert not at.exception and at.session_state["_model"] == twin.id  # this tab explores it
    assert store.current_id() == first  # the default for new tabs stays
    assert not any("trained already" in i.value for i in at.sidebar.info)
    at.sidebar.button[0].click().run()  # Start again: offered again; this time train anyway
    at.button(key="retrain_dup_train").click().run()
    assert not at.exception and "Training started" in at.sidebar.success[0].value
    job = jobs.active_job()
    assert job is not None and job.config["epochs"] == 1 and job.config["limit"] == 256
    jobs.cancel_job(job.id, grace=1.0)
    assert wait_for(job.id, lambda js: not js.active, timeout=30)[-1].state in ("cancelled", "failed")


def test_first_run_explains_and_offers_two_presets(empty_home):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_panel_app, default_timeout=30).run()
    assert not at.exception
    assert at.subheader[0].value == "No trained model yet"
    labels = [b.label for b in at.main.button]
    assert labels == ["Train the default model", "Train a quick preview model"]
    text = " ".join(m.value for m in at.main.markdown)
    assert "30 epochs" in text and "3 epochs" in text and "10,000 images" in text


def test_the_retrain_form_has_a_widget_for_every_config_field(home):
    """The form's labels, defaults and choices come from the VAEConfig fields; a field the form does
    not lay out by hand still gets a widget (made from its metadata)."""
    from dataclasses import fields

    from streamlit.testing.v1 import AppTest

    from model.config import option

    at = AppTest.from_function(_panel_app, default_timeout=30).run()
    assert not at.exception
    kinds = ("number_input", "radio", "select_slider", "selectbox", "text_input")
    widgets = {w.label: w for kind in kinds for w in at.sidebar.get(kind) if w.key.startswith("retrain_")}
    assert {option(f.name).label for f in fields(VAEConfig)} <= set(widgets)
    for f in fields(VAEConfig):
        if f.name != "dataset":  # the dataset offered first is the first one available here
            assert widgets[option(f.name).label].value == f.default, f.name
    assert widgets[option("loss").label].options == ["BCE (seed)", "MSE"]
    at.sidebar.number_input(key="retrain_seed").set_value(2**32)  # above the seed's range
    at.sidebar.button[0].click().run()
    assert not at.exception and jobs.latest_job() is None
    assert "Expected seed to be an integer in [0, 2**32)" in at.sidebar.error[0].value


def test_describe_names_the_config_and_its_schedule():
    from explorer.panels.training_jobs import describe

    config = dict(dataset="mnist", latent_dim=2, loss="bce", epochs=30, batch_size=128, limit=None)
    assert describe(config) == "MNIST digits · z2 · BCE · 30 epochs · batch 128 · all images"
    assert (
        describe({**config, "epochs": 1, "limit": 10_000, "lr_schedule": "cosine"})
        == "MNIST digits · z2 · BCE · 1 epoch · batch 128 · 10,000 images · cosine lr"
    )
    assert describe(VAEConfig.quick(kl_weight=0.5)) == (
        "MNIST digits · z2 · BCE · 3 epochs · batch 128 · 10,000 images · β 0.5"
    )


def test_start_job_takes_only_a_vae_config(home):
    with pytest.raises(TypeError, match=r"Expected a VAEConfig\. Received: dict\. Fix: start_job\(VAEConfig"):
        jobs.start_job(dict(epochs=1, limit=256))
    assert jobs.latest_job() is None


# ------------------------------------------------------------------------- one config into the job


def test_the_saved_model_has_the_jobs_config_field_for_field(home):
    """The config went through a hand-made argv and lost lr_schedule (a cosine job trained with
    a constant rate while its status.json said cosine). Every field differs from the default here."""
    config = VAEConfig(
        dataset="mnist",
        latent_dim=3,
        loss="mse",
        epochs=1,
        batch_size=64,
        learning_rate=2e-3,
        limit=256,
        precision="float32",
        seed=7,
        lr_schedule="cosine",
        kl_weight=2.0,
    )
    assert all(
        getattr(config, k) != v for k, v in VAEConfig().to_dict().items() if k not in ("dataset", "precision")
    )
    info = jobs.start_job(config)
    assert json.loads((info.path / "config.json").read_text()) == config.to_dict()
    final = wait_for(info.id, lambda js: not js.active)[-1]
    assert final.state == "succeeded", final.error
    saved = ModelStore().record(final.model_id)
    assert saved.config == config  # the SAVED model's config, not status.json's
    assert saved.history["loss"] and saved.extra["job"] == info.id


def test_status_derivation_is_pure():
    """model.jobs.status: events and facts in, a verdict and a JobStatus out; no process, no file."""
    from model.jobs import status as S

    start = {"event": "start", "time": 10.0, "epochs": 2, "steps": 4}
    batches = [
        {"event": "batch", "time": 11.0 + i, "epoch": 0, "step": i + 1, "loss": 9.0 - i} for i in range(4)
    ]
    epoch0 = {"event": "epoch", "time": 16.0, "epoch": 0, "loss": 6.0, "val_loss": 5.5}
    running = S.derive([start, *batches], alive=True, cancelled=False)
    assert running == S.Verdict("running")
    js = S.build(
        "j",
        {"config": {"epochs": 2, "batch_size": 128}, "started": 9.0},
        [start, *batches],
        running,
        cancel_requested=False,
        now=15.0,
    )
    assert (js.phase, js.step, js.steps, js.epoch, js.loss) == ("validating", 4, 4, 1, 6.0) and js.eta > 0
    js = S.build("j", {"config": {"epochs": 2}}, [start, *batches, epoch0], running, cancel_requested=False)
    assert (js.phase, js.epochs_done, js.val_loss, js.history["loss"]) == ("training", 1, 5.5, [6.0])
    last = [{**b, "epoch": 1, "time": b["time"] + 10} for b in batches]
    epoch1 = {**epoch0, "epoch": 1, "time": 26.0}
    js = S.build(
        "j",
        {"config": {"epochs": 2}},
        [start, *batches, epoch0, *last, epoch1],
        running,
        cancel_requested=False,
    )
    assert (js.phase, js.step, js.steps) == ("saving", 4, 4)  # every batch ran: not "batch 0/4" while saving
    done = {"event": "done", "time": 30.0, "model_id": "m1"}
    assert S.derive([start, done], alive=False, cancelled=False) == S.Verdict("succeeded", "m1")
    # no final event, the process gone: the store decides
    dead = S.derive([start], alive=False, cancelled=False, returncode=-9, saved=lambda: None)
    assert dead.state == "failed" and "killed (SIGKILL)" in dead.error and "untouched" in dead.error
    late = S.derive([start], alive=False, cancelled=False, returncode=-9, saved=lambda: ("m2", True))
    assert late.state == "succeeded" and late.model_id == "m2" and "killed (SIGKILL)" in late.warning
    assert "untouched" not in late.warning
    full = S.derive(
        [start],
        alive=False,
        cancelled=False,
        returncode=1,
        log_tail=lambda: "OSError: [Errno 28] No space left on device",
        saved=lambda: ("m3", True),
    )
    assert full.state == "succeeded" and "the disk is full" in full.warning
    assert (
        "then start the job again" not in full.warning and "free disk space before the next" in full.warning
    )
    error = {"event": "error", "time": 20.0, "message": "Training diverged. Fix: lower the learning rate."}
    assert S.derive([start, error], alive=False, cancelled=False).error.startswith("Training diverged")
    assert S.derive([start, error], alive=False, cancelled=True).state == "cancelled"
    assert S.derive([start], alive=False, cancelled=True).state == "cancelled"
    calls = []
    S.derive([start, done], alive=False, cancelled=False, saved=lambda: calls.append(1))
    assert calls == []  # the store is read only when the events do not settle it


def test_ended_jobs_show_where_they_stopped():
    """A finished job said "batch 0/16", a job that diverged in epoch 1 said "epoch 2/2"."""
    from model.jobs import status as S

    start = {"event": "start", "time": 10.0, "epochs": 2, "steps": 16}

    def batches(epoch, upto):
        return [
            {"event": "batch", "time": 11.0 + epoch * 20 + s, "epoch": epoch, "step": s, "loss": 5.0}
            for s in range(1, upto + 1)
        ]

    def epoch_end(epoch, loss=4.0):
        return {"event": "epoch", "time": 30.0 + epoch * 20, "epoch": epoch, "loss": loss, "val_loss": 4.5}

    def ended(events, **how):
        """The status of a job whose process is gone, as the page builds it."""
        verdict = S.derive(events, alive=False, cancelled=False, **how)
        return S.build("j", {"config": {"epochs": 2}}, events, verdict, cancel_requested=False)

    done = {"event": "done", "time": 60.0, "model_id": "m1"}
    finished = [start, *batches(0, 16), epoch_end(0), *batches(1, 16), epoch_end(1), done]
    js = ended(finished)
    assert (js.state, js.epoch, js.epochs, js.step, js.steps, js.epochs_done) == (
        "succeeded",
        2,
        2,
        16,
        16,
        2,
    )

    # TerminateOnNaN stops at batch 3 of the first epoch; Keras still sends that epoch's end (loss NaN)
    error = {"event": "error", "time": 20.0, "message": "Training diverged."}
    diverged = [start, *batches(0, 3), epoch_end(0, loss=float("nan")), error]
    js = ended(diverged)
    assert (js.state, js.epoch, js.step, js.epochs_done) == ("failed", 1, 3, 0)
    assert 0 < js.fraction < 0.5

    # killed in the second epoch at batch 7
    killed = [start, *batches(0, 16), epoch_end(0), *batches(1, 7)]
    js = ended(killed, returncode=-9)
    assert (js.state, js.epoch, js.step, js.epochs_done) == ("failed", 2, 7, 1)
    # still running in the second epoch: unchanged
    js = S.build(
        "j", {"config": {"epochs": 2}}, killed, S.Verdict("running"), cancel_requested=False, now=40.0
    )
    assert (js.phase, js.epoch, js.step, js.epochs_done) == ("training", 2, 7, 1)


def test_job_files_of_the_wrong_json_type_are_read_as_absent_never_raised_on(home):
    """latest.json, status.json and progress.jsonl are read by every page: a value of another JSON type
    in any of them reads as missing (a field dropped, an event skipped, no job), never as a traceback."""
    root = jobs.jobs_root()
    job_dir = root / "20260101-000000-aaaa"
    job_dir.mkdir()
    good = {"config": TINY.to_dict(), "started": 10.0, "ended": 20.0, "returncode": 1, "state": "failed"}
    start = {"event": "start", "time": 11.0, "epochs": 1, "steps": 2}
    batch = {"event": "batch", "time": 12.0, "epoch": 0, "step": 1, "loss": 3.0}
    bad_events = [
        [1],
        "x",
        5,
        None,
        {"event": 3, "time": 1.0},
        {"event": "batch", "time": "x", "epoch": 0, "step": 1},
        {"event": "batch", "time": 13.0, "epoch": "x", "step": 1},
        {"event": "batch", "time": 13.0, "epoch": 0, "step": [2]},
        {"event": "epoch", "time": 14.0, "epoch": "x", "loss": 3.0},
        {"event": "epoch", "time": 14.0, "epoch": 0, "loss": "x", "val_loss": {"a": 1}},
        {"event": "start", "time": 11.5, "epochs": "x", "steps": -1},
        {"event": "error", "time": 15.0, "message": ["not", "text"]},
        {"event": "done", "time": 16.0, "model_id": 123},
    ]
    lines = [json.dumps(start), json.dumps(batch)] + [json.dumps(e) for e in bad_events]
    (job_dir / "progress.jsonl").write_text("\n".join(lines) + "\n")
    evs = files.events(job_dir / "progress.jsonl")
    assert evs[:2] == [start, batch]
    assert all(isinstance(e, dict) and isinstance(e["event"], str) for e in evs)
    bad_status = [
        [1],
        5,
        "x",
        {**good, "config": [1]},
        {**good, "config": {"epochs": "x", "batch_size": [1]}},
        {**good, "started": "x", "ended": [2], "returncode": "1", "pid": "12", "pid_start": {}},
        {**good, "state": 7, "model_id": 3, "error": {"a": 1}},
    ]
    for status in bad_status:
        (job_dir / "status.json").write_text(json.dumps(status))
        for latest in (5, [1], "x", {"id": 123}, {"id": ["a"]}, {"id": "../x"}, {"id": job_dir.name}):
            (root / "latest.json").write_text(json.dumps(latest))
            js = files.latest_job()  # the page's first read
            assert js is None or (js.id == job_dir.name and js.state in status_mod.STATES), (status, latest)
            if js is not None:
                assert isinstance(js.epochs, int) and isinstance(js.started, float | int)
                assert js.returncode is None or isinstance(js.returncode, int)
    # a status.json that is not an object is no job; one with bad fields is a job without those fields
    (job_dir / "status.json").write_text(json.dumps([1]))
    with pytest.raises(JobError, match="No training job"):
        files.job_status(job_dir.name)
    (job_dir / "status.json").write_text(json.dumps({**good, "pid": "12", "config": {"epochs": "x"}}))
    js = files.job_status(job_dir.name)
    assert js.state == "succeeded" and js.model_id is None  # the done event, without its bad model id
    assert js.pid is None and js.epochs == 1 and js.step == 1 and js.history == {}
    # and the page renders with all of it
    from tests.apptest import assert_clean, run_app

    (root / "latest.json").write_text(json.dumps({"id": job_dir.name}))
    assert_clean(run_app())
    (root / "latest.json").write_text("5")
    assert_clean(run_app())


def test_the_retrain_form_and_the_first_run_offer_the_registered_datasets(empty_home, monkeypatch):
    """The Retrain form's dataset choices and the first run's fallback come from model.data.DATASETS."""
    from dataclasses import replace

    from streamlit.testing.v1 import AppTest

    from model import data

    mnist = data.DATASETS["mnist"]
    letters = replace(mnist, name="letters", label="Letters A–J", noun="letter", missing=lambda: None)
    monkeypatch.setitem(data.DATASETS, "letters", letters)
    at = AppTest.from_function(_panel_app, default_timeout=30).run()
    assert not at.exception
    assert at.sidebar.selectbox(key="retrain_dataset").options == [
        "MNIST digits",
        "Fashion-MNIST",
        "Letters A–J",
    ]
    # the first run trains on the first dataset of the registry that is available here
    for name in ("mnist", "fashion_mnist"):
        monkeypatch.setitem(data.DATASETS, name, replace(data.DATASETS[name], missing=lambda: "not here"))
    at = AppTest.from_function(_panel_app, default_timeout=30).run()
    assert not at.exception
    assert at.sidebar.selectbox(key="retrain_dataset").options == ["Letters A–J"]
    [warning] = [w.value for w in at.main.warning]
    assert warning == "MNIST digits is not available here (not here); training on Letters A–J instead."
    assert "Letters A–J · z2" in " ".join(m.value for m in at.main.markdown)


def test_callers_outside_the_package_import_from_model_jobs():
    """model.jobs exports what its callers use; nothing outside the package reaches into its modules
    with `from model.jobs.<module> import ...` (tests may import a module whole to test it)."""
    import re

    assert all(hasattr(jobs, name) for name in jobs.__all__)
    reaching = []
    for path in [*REPO.glob("model/*.py"), *REPO.glob("explorer/**/*.py"), *REPO.glob("bench/*.py")]:
        reaching += [
            f"{path.name}: {m}" for m in re.findall(r"from model\.jobs\.\w+ import .*", path.read_text())
        ]
    assert reaching == []
