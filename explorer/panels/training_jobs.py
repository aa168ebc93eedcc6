"""A training job seen from the page: progress, the live loss curve, Cancel, notices, and what a tab
does when a job ends (the tab that started it explores the model; other tabs are offered it).

Shared by the sidebar's Retrain panel and the first-run screen (explorer.panels.retrain). The panel's own
state is `_own()` (below); the model this tab explores is shared state (explorer.session).
"""

from __future__ import annotations

import time

import plotly.graph_objects as go
import streamlit as st

from explorer import session
from explorer.panels.common import plain
from model import jobs
from model.config import VAEConfig
from model.data import dataset_label
from model.errors import JobError

POLL_ACTIVE_S = 1.0  # progress refresh while a job runs
POLL_IDLE_S = 5.0  # how soon an idle session notices a job started elsewhere
MAX_CURVE_POINTS = 400  # the live loss curve is thinned to about this many points

# ----------------------------------------------------------------------------- pure helpers


def _own() -> dict:
    """This panel's state: notice_<where> ((kind, text) shown once), active_<key> (a job was running at the
    last look), ended (the id of a job seen ending), duplicate ((config, model id) a run would repeat),
    started (the ids of the jobs this tab started)."""
    return session.own("retrain")


def add_started_job(job_id: str) -> None:
    """Remember that this tab started the training job `job_id` (it explores the model when done)."""
    _own()["started"] = [*_own().get("started", []), job_id]


def started_job(job_id: str) -> bool:
    """Whether this tab started the training job `job_id`."""
    return job_id in _own().get("started", [])


def fmt_duration(seconds: float | None) -> str:
    """`75` -> "1:15", `3725` -> "1:02:05", None -> "—"."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def describe(config: VAEConfig | dict) -> str:
    """One line naming a training config: "MNIST · z2 · BCE · 30 epochs · batch 128 · 10,000 images",
    plus " · cosine lr" and " · β 4" when they are not the seed's. A dict is a job's saved config."""
    if not isinstance(config, VAEConfig):
        try:
            config = VAEConfig.from_dict(config, strict=False)
        except (TypeError, ValueError) as e:
            return f"an unreadable config ({e})"
    c = config
    n = f"{c.limit:,} images" if c.limit else "all images"
    return (
        f"{dataset_label(c.dataset)} · z{c.latent_dim} · {c.loss.upper()} · "
        f"{c.epochs} epoch{'' if c.epochs == 1 else 's'} · batch {c.batch_size} · {n}"
        + (" · cosine lr" if c.lr_schedule == "cosine" else "")
        + (f" · β {c.kl_weight:g}" if c.kl_weight != 1 else "")
    )


def progress_text(js: jobs.JobStatus) -> str:
    since = f" ({fmt_duration(js.activity_elapsed)})" if js.activity_elapsed is not None else ""
    if js.phase == "starting":
        return f"Starting: {js.activity or 'loading TensorFlow and the data'}…{since}"
    if js.phase == "training" and js.activity:
        return f"Epoch {js.epoch}/{js.epochs} · {js.activity}…{since}"
    if js.phase == "saving":
        return "Evaluating on the test set and saving the model…"
    if js.phase == "validating":
        return f"Epoch {js.epoch}/{js.epochs} · validating on the test set…"
    return f"Epoch {js.epoch}/{js.epochs} · batch {js.step}/{js.steps}"


def loss_figure(js: jobs.JobStatus, height: int = 220) -> go.Figure:
    """Live loss curve: the running training loss per batch, and train/validation loss per epoch."""
    fig = go.Figure()
    if js.curve:
        curve = js.curve[:: max(1, len(js.curve) // MAX_CURVE_POINTS)]
        if curve[-1] is not js.curve[-1]:
            curve.append(js.curve[-1])
        x, y = [], []
        for (x0, _), (x1, y1) in zip([(0.0, None)] + curve, curve):
            if int(x1 - 1e-9) != int(x0 - 1e-9) and x:  # Keras' running mean restarts each epoch: a gap
                x.append(None)
                y.append(None)
            x.append(x1)
            y.append(y1)
        fig.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines", name="training (batches)", line=dict(width=1.5, color="#1f77b4")
            )
        )
    n = len(js.history.get("loss", []))
    if n:
        ep = list(range(1, n + 1))
        fig.add_trace(
            go.Scatter(
                x=ep,
                y=js.history["loss"],
                mode="markers",
                name="training (epoch)",
                marker=dict(color="#1f77b4", size=7),
            )
        )
        if "val_loss" in js.history:
            fig.add_trace(
                go.Scatter(
                    x=ep,
                    y=js.history["val_loss"],
                    mode="lines+markers",
                    name="validation",
                    line=dict(color="#ff7f0e"),
                )
            )
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=30, b=10),
        showlegend=True,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=10)),
        xaxis_title="epoch",
        yaxis_title="loss",
        xaxis=dict(range=[0, max(js.epochs, 1)]),
    )
    return fig


# ----------------------------------------------------------------------------- state


def _latest() -> tuple[jobs.JobStatus | None, str | None]:
    """(latest job status or None, an error message or None)."""
    try:
        return jobs.latest_job(), None
    except JobError as e:
        return None, str(e)


def _start(config: VAEConfig, where: str) -> None:
    """Start a job (or find the running one), remember what to tell the user, rerun the app."""
    try:
        info = jobs.start_job(config)
    except JobError as e:
        notice = ("error", str(e))
    else:
        if info.new:
            add_started_job(info.id)  # this tab explores the model when it is done
        if info.new and where == "main":
            notice = (
                "success",
                "Training started in the background: the explorer opens here when the model is ready.",
            )
        elif info.new:
            notice = (
                "success",
                "Training started in the background: keep exploring, the new model appears when it is done.",
            )
        else:
            notice = (
                "info",
                "A training job is already running (started from another tab or "
                "session); here is its progress. Cancel it to start another.",
            )
    _own()[f"notice_{where}"] = notice
    st.rerun()


def _show_notice(where: str) -> None:
    notice = _own().pop(f"notice_{where}", None)
    if notice:
        kind, text = notice
        {"error": st.error, "info": st.info, "success": st.success, "warning": st.warning}[kind](text)


def _outcome(js: jobs.JobStatus) -> None:
    """How the latest finished job ended (every session sees it, so a failure is never silent)."""
    when = time.strftime("%H:%M", time.localtime(js.ended or js.started))
    if js.state == "succeeded":
        st.caption(
            f"Last training ({describe(js.config)}) finished at {when} in "
            f"{fmt_duration(js.elapsed)}: the tab that started it explores it; the others can pick it."
        )
        if js.warning:
            st.warning(f"{js.warning} (model {plain(js.model_id)})")
    elif js.state == "cancelled":
        st.warning(
            f"The last training job was cancelled at {when}. Nothing was saved; the previous "
            "models are untouched."
        )
    elif js.state == "failed":
        st.error(f"The last training job failed ({when}): {js.error}")


def _job_view(js: jobs.JobStatus, *, wide: bool, key: str) -> None:
    """Progress bar, losses, elapsed/ETA, the live loss curve and Cancel for a running job."""
    st.markdown(f"**Training** {describe(js.config)}")
    st.progress(js.fraction, text=progress_text(js))
    loss = f"{js.loss:.1f}" if js.loss is not None else "—"
    val = f"{js.val_loss:.1f}" if js.val_loss is not None else "—"
    eta = f"≈ {fmt_duration(js.eta)}" if js.eta is not None else "—"
    if wide:
        c = st.columns(4)
        c[0].metric("Training loss", loss)
        c[1].metric("Validation loss", val)
        c[2].metric("Elapsed", fmt_duration(js.elapsed))
        c[3].metric("Time left", eta)
    else:
        st.caption(
            f"loss **{loss}** · validation **{val}**  \nelapsed {fmt_duration(js.elapsed)} · left {eta}"
        )
    if js.curve or js.history:
        st.plotly_chart(loss_figure(js, height=320 if wide else 260), config={"displayModeBar": False})
    if js.cancel_requested:
        st.caption("Cancelling…")
    elif st.button(
        "Cancel training",
        key=f"retrain_cancel_{key}",
        icon=":material/stop_circle:",
        help="Stop the job now; nothing is saved and the current model stays.",
    ):
        jobs.cancel_job(js.id)  # returns at once; the next refresh shows the job cancelled
        st.caption("Cancelling…")


def _live(key: str, wide: bool) -> None:
    """Fragment body: show the running job; on a start or end, rerun the whole app once."""
    js, err = _latest()
    if err:
        st.error(err)
        return
    active = js is not None and js.active
    if active != _own().get(f"active_{key}"):
        _own()[f"active_{key}"] = active
        if not active and js is not None:
            _own()["ended"] = js.id
            _follow(js)
        st.rerun()  # the page picks up this tab's model and the new refresh rate
    if active:
        _job_view(js, wide=wide, key=key)


def _follow(js: jobs.JobStatus) -> None:
    """A training that succeeded: the tab that started it explores its model, any other is offered it."""
    if js.state != "succeeded" or not js.model_id:
        return
    if started_job(js.id):
        session.set_tab_model(js.model_id)
    else:
        session.set_model_offer(js.model_id)


def _live_fragment(key: str, wide: bool, active: bool) -> None:
    _own()[f"active_{key}"] = active
    st.fragment(_live, run_every=POLL_ACTIVE_S if active else POLL_IDLE_S)(key, wide)


def _announce_end() -> None:
    """Once per session, after a job it watched ended: a toast saying what happened."""
    job_id = _own().pop("ended", None)
    if not job_id:
        return
    try:
        js = jobs.job_status(job_id)
    except JobError:
        return
    if js.state == "succeeded" and started_job(js.id):
        st.toast(f"New model trained ({describe(js.config)}); now exploring it.", icon="✅")
    elif js.state == "succeeded":
        st.toast(f"A new model was trained ({describe(js.config)}): see the sidebar.", icon="✅")
    elif js.state == "failed":
        st.toast("Training failed: see the Retrain panel.", icon="⚠️")
    elif js.state == "cancelled":
        st.toast("Training cancelled; the current model is unchanged.", icon="🛑")
