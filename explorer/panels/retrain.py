"""Retraining from the app: the sidebar panel and the first-run screen.

Training runs in a background process (`model.jobs`), so the page keeps answering while it trains; its
progress is read from the job's files by a fragment that reruns on a timer (`st.fragment(run_every=)`)
in every open session, whoever started the job. When a job starts or ends, the fragment reruns the
whole app once: on success the trainer has already made the new model the store's current model
(`store.current()`), so every session switches to it without a restart; older models stay in the
store's model picker.

Session state used here (all prefixed `retrain_` / `_retrain_`):
  _retrain_active_<where>   whether a job ran at the last full run (a change triggers a full rerun)
  _retrain_notice_<where>   a (kind, text) message to show once after a rerun ("sidebar" or "main")
  _retrain_ended            the job whose end this session saw (announced once with a toast)
"""

from __future__ import annotations

import time

import plotly.graph_objects as go
import streamlit as st

from explorer import session
from model import bundle, jobs
from model.data import available_datasets

POLL_ACTIVE_S = 1.0  # progress refresh while a job runs
POLL_IDLE_S = 5.0  # how soon an idle session notices a job started elsewhere
MAX_CURVE_POINTS = 400  # the live loss curve is thinned to about this many points
BATCH_SIZES = (32, 64, 128, 256, 512)
SUBSETS = (None, 30_000, 10_000, 5_000, 1_000, 256)  # training images (None: all)
LATENT_SIZES = (2, 3, 4, 8, 16, 32)
DATASET_LABELS = {"mnist": "MNIST digits", "fashion_mnist": "Fashion-MNIST"}
# first-run presets: the seed's model, and a quick one to look around while the real one trains later
DEFAULT_PRESET = dict(epochs=30, batch_size=128, loss="bce", latent_dim=2, limit=None)
QUICK_PRESET = dict(epochs=3, batch_size=128, loss="bce", latent_dim=2, limit=10_000)


# ----------------------------------------------------------------------------- pure helpers


def fmt_duration(seconds: float | None) -> str:
    """`75` -> "1:15", `3725` -> "1:02:05", None -> "—"."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def describe(config: dict) -> str:
    """One line naming a training config: "MNIST · z2 · BCE · 30 epochs · batch 128 · 10,000 images"."""
    n = f"{config['limit']:,} images" if config.get("limit") else "all images"
    epochs = config.get("epochs")
    return (
        f"{DATASET_LABELS.get(config.get('dataset'), config.get('dataset'))} · z{config.get('latent_dim')} · "
        f"{str(config.get('loss', '')).upper()} · {epochs} epoch{'' if epochs == 1 else 's'} · "
        f"batch {config.get('batch_size')} · {n}"
        + (" · cosine lr" if config.get("lr_schedule") == "cosine" else "")
    )


def progress_text(js: jobs.JobStatus) -> str:
    if js.phase == "starting":
        return "Starting: loading TensorFlow and the data…"
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
    except jobs.JobError as e:
        return None, str(e)


def _start(config: dict, where: str) -> None:
    """Start a job (or find the running one), remember what to tell the user, rerun the app."""
    try:
        info = jobs.start_job(config)
    except jobs.JobError as e:
        notice = ("error", str(e))
    else:
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
    session.set_retrain_notice(where, notice)
    st.rerun()


def _show_notice(where: str) -> None:
    notice = session.pop_retrain_notice(where)
    if notice:
        kind, text = notice
        {"error": st.error, "info": st.info, "success": st.success, "warning": st.warning}[kind](text)


def _outcome(js: jobs.JobStatus) -> None:
    """How the latest finished job ended (every session sees it, so a failure is never silent)."""
    when = time.strftime("%H:%M", time.localtime(js.ended or js.started))
    if js.state == "succeeded":
        st.caption(
            f"Last training ({describe(js.config)}) finished at {when} in "
            f"{fmt_duration(js.elapsed)}: it is the current model unless another was picked since."
        )
        if js.warning:
            st.warning(f"{js.warning} (model `{js.model_id}`)")
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
    if active != session.retrain_active(key):
        session.set_retrain_active(key, active)
        if not active and js is not None:
            session.set_retrain_ended(js.id)
        st.rerun()  # the page picks up the new model (store.current()) and the new refresh rate
    if active:
        _job_view(js, wide=wide, key=key)


def _live_fragment(key: str, wide: bool, active: bool) -> None:
    session.set_retrain_active(key, active)
    st.fragment(_live, run_every=POLL_ACTIVE_S if active else POLL_IDLE_S)(key, wide)


def _announce_end() -> None:
    """Once per session, after a job it watched ended: a toast saying what happened."""
    job_id = session.pop_retrain_ended()
    if not job_id:
        return
    try:
        js = jobs.job_status(job_id)
    except jobs.JobError:
        return
    if js.state == "succeeded":
        st.toast(f"New model trained ({describe(js.config)}); now exploring it.", icon="✅")
    elif js.state == "failed":
        st.toast("Training failed: see the Retrain panel.", icon="⚠️")
    elif js.state == "cancelled":
        st.toast("Training cancelled; the current model is unchanged.", icon="🛑")


# ----------------------------------------------------------------------------- sidebar panel


def _options_form(active: bool) -> dict | None:
    """The retrain options; returns the config dict when Start is pressed."""
    datasets = available_datasets()
    usable = [name for name, how in datasets.items() if how is None]
    with st.form("retrain_form", border=False):
        epochs = st.number_input(
            "Epochs",
            min_value=1,
            max_value=500,
            value=DEFAULT_PRESET["epochs"],
            step=1,
            key="retrain_epochs",
            help="Passes over the training images (the seed trains 30).",
        )
        loss = st.radio(
            "Reconstruction loss",
            ("bce", "mse"),
            key="retrain_loss",
            horizontal=True,
            format_func={"bce": "BCE (seed)", "mse": "MSE"}.get,
            help="Binary cross-entropy (the seed's default) or mean squared error.",
        )
        batch = st.select_slider(
            "Batch size", BATCH_SIZES, value=DEFAULT_PRESET["batch_size"], key="retrain_batch"
        )
        with st.expander("More options"):
            limit = st.selectbox(
                "Training images",
                SUBSETS,
                key="retrain_limit",
                format_func=lambda n: "all (60,000)" if n is None else f"first {n:,}",
                help="Train on a subset for a quick model.",
            )
            latent = st.select_slider(
                "Latent size",
                LATENT_SIZES,
                value=2,
                key="retrain_latent",
                help="Dimensions of z; with more than 2 the sliders explore a 2-D slice.",
            )
            dataset = st.selectbox(
                "Dataset",
                usable or ["mnist"],
                key="retrain_dataset",
                format_func=lambda d: DATASET_LABELS.get(d, d),
            )
            for name, how in datasets.items():
                if how is not None:
                    st.caption(f"{DATASET_LABELS.get(name, name)} is not available here: {how}")
            lr = st.number_input(
                "Learning rate",
                min_value=1e-5,
                max_value=0.99,
                value=1e-3,
                step=1e-4,
                format="%.5f",
                key="retrain_lr",
                help="RMSprop's step size (seed: 0.001). Too large a value makes the "
                "loss NaN, which stops the job with a message.",
            )
            schedule = st.radio(
                "Learning-rate schedule",
                ("constant", "cosine"),
                key="retrain_schedule",
                horizontal=True,
                format_func={"constant": "constant (seed)", "cosine": "cosine decay to 0"}.get,
                help="Cosine decay lowers the rate smoothly to 0 by the last epoch. With "
                "batch 64, learning rate 0.002 and 20 epochs (`python -m model.train "
                "--fast`) it beats the seed's 30-epoch test loss in about half the time.",
            )
        start = st.form_submit_button(
            "Start training",
            type="primary",
            icon=":material/play_arrow:",
            disabled=active,
            help="A training job is running; cancel it first."
            if active
            else "Train in the background; the new model becomes current when done.",
        )
    if not start:
        return None
    return dict(
        dataset=dataset,
        latent_dim=int(latent),
        loss=loss,
        epochs=int(epochs),
        batch_size=int(batch),
        learning_rate=float(lr),
        limit=limit,
        lr_schedule=schedule,
    )


def _trained_already(store, config: dict):
    """The newest stored model trained with exactly this config, or None."""
    from model.config import VAEConfig
    from model.store import StoreError

    try:
        return store.find(VAEConfig.from_dict(config))
    except (StoreError, TypeError, ValueError, OSError):
        return None


def _explore_existing(store, model_id: str) -> None:
    session.clear_retrain_duplicate()
    try:
        store.set_current(model_id)
    except Exception as e:  # noqa: BLE001 - StoreError: say it, never a traceback
        session.set_retrain_notice("sidebar", ("error", str(e)))


def _offer_existing(store, active: bool) -> None:
    """After Start with a config trained already: explore that model, or train again anyway."""
    dup = session.retrain_duplicate()
    if not dup:
        return
    config, model_id = dup
    try:
        record = store.record(model_id)
    except Exception:  # noqa: BLE001 - deleted or broken since: nothing to offer
        session.clear_retrain_duplicate()
        return
    st.info(
        f"This config was trained already: **{record.label}**. Explore that model, or train "
        "another one with the same settings?"
    )
    c1, c2 = st.columns(2)
    c1.button(
        "Explore it",
        key="retrain_dup_explore",
        type="primary",
        on_click=_explore_existing,
        args=(store, model_id),
        icon=":material/visibility:",
    )
    if c2.button("Train again", key="retrain_dup_train", disabled=active, icon=":material/replay:"):
        session.clear_retrain_duplicate()
        _start(config, "sidebar")


def retrain_panel(store) -> None:
    """Sidebar panel: retrain options, Start/Cancel, and live progress of the running job.

    Every open session shows the running job, whoever started it; when it succeeds, every session
    reruns and explores the new model (the store's current model).
    """
    _announce_end()
    _show_notice("sidebar")
    js, err = _latest()
    if err:
        st.error(err)
        return
    active = js is not None and js.active
    config = _options_form(active)
    if config is not None:
        existing = _trained_already(store, config)
        if existing is None:
            _start(config, "sidebar")  # reruns the app
        else:
            session.set_retrain_duplicate((config, existing.id))
    _offer_existing(store, active)
    if js is not None and not active:
        _outcome(js)
    if store.current() is None:
        if active:
            st.caption("Training progress is shown on the main page.")
        return  # first_run() draws the progress in the main area
    _live_fragment("sidebar", wide=False, active=active)


# ----------------------------------------------------------------------------- first run


def first_run(store) -> None:
    """Main area when the store has no model: explain, offer to train one, show its progress."""
    st.subheader("No trained model yet")
    st.markdown(
        "The explorer shows the latent space of a variational autoencoder trained on handwritten "
        f"digits. This store (`{store.root}`) has no model to explore: the bundled MNIST model is "
        "installed only into a store without one, once, and stays deleted if you delete it. Pick one "
        "below; nothing trains until you click. Training runs in the background: this page shows its "
        "progress and opens the explorer when the model is ready."
    )
    refused = bundle.refusal() if not store.list() else None
    if refused:
        st.warning("The bundled model was refused, so it was not installed:")
        st.text(refused)  # as text: it holds file names and fingerprints
    js, err = _latest()
    if err:
        st.error(err)
        return
    active = js is not None and js.active
    _show_notice("main")
    if not active:
        if js is not None:
            _outcome(js)
        datasets = available_datasets()
        dataset = next((d for d in ("mnist", "fashion_mnist") if datasets.get(d) is None), None)
        if dataset is None:
            st.error(
                "No dataset is available to train on. "
                + " ".join(f"{DATASET_LABELS.get(k, k)}: {v}" for k, v in datasets.items())
            )
            return
        if dataset != "mnist":
            st.warning(
                f"MNIST is not available here ({datasets['mnist']}); training on "
                f"{DATASET_LABELS[dataset]} instead."
            )
        c1, c2 = st.columns(2)
        with c1:
            st.markdown(
                f"**Default model** — the seed's setup: {describe({**DEFAULT_PRESET, 'dataset': dataset})}. "
                "Best quality; takes a while on a CPU (the ETA shows once it runs)."
            )
            if st.button(
                "Train the default model",
                type="primary",
                key="retrain_first_default",
                icon=":material/model_training:",
            ):
                _start({**DEFAULT_PRESET, "dataset": dataset}, "main")
        with c2:
            st.markdown(
                f"**Quick preview** — {describe({**QUICK_PRESET, 'dataset': dataset})}. "
                "Ready in about a minute; blurrier digits. Retrain the full model later from "
                "the sidebar."
            )
            if st.button("Train a quick preview model", key="retrain_first_quick", icon=":material/bolt:"):
                _start({**QUICK_PRESET, "dataset": dataset}, "main")
        st.caption("Or from a terminal: `python -m model.train` (the page picks the model up on reload).")
    _live_fragment("main", wide=True, active=active)
