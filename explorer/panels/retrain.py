"""Retraining from the app: the sidebar panel and the first-run screen.

Training runs in a background process (`model.jobs`), so the page keeps answering while it trains; its
progress is read from the job's files by a fragment that reruns on a timer (`st.fragment(run_every=)`)
in every open session, whoever started the job. When a job starts or ends, the fragment reruns the
whole app once: on success the tab that started the job explores the new model; every other tab keeps
its model and is offered the new one ("Explore it" in the sidebar). The trainer offers the new model as
the default for new tabs (`ModelStore.offer_as_default`); older models stay in the model picker.

Widget keys are prefixed `retrain_`; the panel's own state is `_own()` (below). The model this tab
explores is shared state (explorer.session).
"""

from __future__ import annotations

import time
from dataclasses import fields

import plotly.graph_objects as go
import streamlit as st

from explorer import session
from explorer.panels.common import plain
from model import bundle, jobs
from model.config import VAEConfig, option
from model.data import available_datasets
from model.errors import JobError
from model.paths import shown

POLL_ACTIVE_S = 1.0  # progress refresh while a job runs
POLL_IDLE_S = 5.0  # how soon an idle session notices a job started elsewhere
MAX_CURVE_POINTS = 400  # the live loss curve is thinned to about this many points
# The values the form offers for a few fields (each holds the field's default; the defaults, the
# allowed values, labels and help come from the VAEConfig fields: model.config).
BATCH_SIZES = (32, 64, 128, 256, 512)
SUBSETS = (None, 30_000, 10_000, 5_000, 1_000, 256)  # training images (None: all)
LATENT_SIZES = (2, 3, 4, 8, 16, 32)
DATASET_LABELS = {"mnist": "MNIST digits", "fashion_mnist": "Fashion-MNIST"}


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
        f"{DATASET_LABELS.get(c.dataset, c.dataset)} · z{c.latent_dim} · {c.loss.upper()} · "
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


# ----------------------------------------------------------------------------- sidebar panel


def _label(name: str) -> str:
    return option(name).label


def _help(name: str) -> str:
    text = option(name).help
    return text[:1].upper() + text[1:] + "."


def _choice(name: str, fmt=str):
    """A format_func for field `name`'s choices: the value, "(seed)" after the default."""
    default = getattr(VAEConfig(), name)
    return lambda v: fmt(v) + (" (seed)" if v == default else "")


def _field_input(name: str, default):
    """A widget for a VAEConfig field the form does not lay out by hand, made from its metadata."""
    opt, key = option(name), f"retrain_{name}"
    if opt.choices and not opt.open:
        return st.radio(
            opt.label,
            opt.choices,
            index=opt.choices.index(default),
            key=key,
            horizontal=True,
            format_func=_choice(name),
            help=_help(name),
        )
    if opt.kind is str:
        return st.text_input(opt.label, value=default, key=key, help=_help(name))
    step = 1 if opt.kind is int else None
    return st.number_input(opt.label, value=default, step=step, key=key, help=_help(name))


def _options_form(active: bool) -> VAEConfig | None:
    """The retrain options; returns the VAEConfig to train when Start is pressed.

    Labels, help, defaults and the allowed values come from the VAEConfig fields (model.config)."""
    d, v = VAEConfig(), {}  # v: field name -> the widget's value
    datasets = available_datasets()
    usable = [name for name, how in datasets.items() if how is None]
    with st.form("retrain_form", border=False):
        v["epochs"] = st.number_input(
            _label("epochs"),
            min_value=1,
            max_value=500,
            value=d.epochs,
            step=1,
            key="retrain_epochs",
            help=_help("epochs"),
        )
        v["loss"] = st.radio(
            _label("loss"),
            option("loss").choices,
            index=option("loss").choices.index(d.loss),
            key="retrain_loss",
            horizontal=True,
            format_func=_choice("loss", str.upper),
            help=_help("loss"),
        )
        v["kl_weight"] = st.number_input(
            _label("kl_weight"),
            min_value=0.0,
            max_value=1000.0,
            value=d.kl_weight,
            step=0.5,
            format="%.2f",
            key="retrain_beta",
            help=_help("kl_weight") + " The page reports the loss recon + KL whatever β.",
        )
        v["batch_size"] = st.select_slider(
            _label("batch_size"),
            BATCH_SIZES,
            value=d.batch_size,
            key="retrain_batch",
            help=_help("batch_size"),
        )
        with st.expander("More options"):
            v["limit"] = st.selectbox(
                _label("limit"),
                SUBSETS,
                index=SUBSETS.index(d.limit),
                key="retrain_limit",
                format_func=lambda n: "all (60,000)" if n is None else f"first {n:,}",
                help=_help("limit"),
            )
            v["latent_dim"] = st.select_slider(
                _label("latent_dim"),
                LATENT_SIZES,
                value=d.latent_dim,
                key="retrain_latent",
                help=_help("latent_dim") + " With more than 2 the sliders explore a 2-D slice.",
            )
            v["dataset"] = st.selectbox(
                _label("dataset"),
                usable or [d.dataset],
                key="retrain_dataset",
                format_func=lambda name: DATASET_LABELS.get(name, name),
            )
            for name, how in datasets.items():
                if how is not None:
                    st.caption(f"{DATASET_LABELS.get(name, name)} is not available here: {how}")
            v["learning_rate"] = st.number_input(
                _label("learning_rate"),
                min_value=1e-5,
                max_value=0.99,
                value=d.learning_rate,
                step=1e-4,
                format="%.5f",
                key="retrain_lr",
                help=_help("learning_rate"),
            )
            v["lr_schedule"] = st.radio(
                _label("lr_schedule"),
                option("lr_schedule").choices,
                index=option("lr_schedule").choices.index(d.lr_schedule),
                key="retrain_schedule",
                horizontal=True,
                format_func=_choice("lr_schedule"),
                help=_help("lr_schedule") + " With batch 64, learning rate 0.002 and 20 epochs "
                "(`python -m model.train --fast`) cosine decay beats the seed's 30-epoch test loss in "
                "about half the time.",
            )
            for f in fields(VAEConfig):  # any other field: a widget made from its metadata
                if f.name not in v:
                    v[f.name] = _field_input(f.name, getattr(d, f.name))
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
    try:
        return VAEConfig(**v)
    except ValueError as e:  # a value the widgets' bounds let through (e.g. a seed of 2**32)
        st.error(f"{e}. Fix: change that option and start again.")
        return None


def _trained_already(store, config: VAEConfig):
    """The newest stored model trained with exactly this config, or None."""
    from model.errors import StoreError

    try:
        return store.find(config)
    except (StoreError, OSError):
        return None


def _explore_existing(store, model_id: str) -> None:
    _own().pop("duplicate", None)
    try:
        store.record(model_id)
    except Exception as e:  # StoreError: say it, never a traceback
        _own()["notice_sidebar"] = ("error", str(e))
    else:
        session.set_tab_model(model_id)  # this tab only


def _offer_existing(store, active: bool) -> None:
    """After Start with a config trained already: explore that model, or train again anyway."""
    dup = _own().get("duplicate")
    if not dup:
        return
    config, model_id = dup
    try:
        record = store.record(model_id)
    except Exception:  # deleted or broken since: nothing to offer
        _own().pop("duplicate", None)
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
        _own().pop("duplicate", None)
        _start(config, "sidebar")


def retrain_panel(store) -> None:
    """Sidebar panel: retrain options, Start/Cancel, and live progress of the running job.

    Every open session shows the running job, whoever started it; when it succeeds, the tab that
    started it explores the new model and the others are offered it ("Explore it").
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
            _own()["duplicate"] = (config, existing.id)
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
        f"digits. This store ({plain(shown(store.root))}) has no model to explore: the bundled MNIST "
        "model is installed only into a store without one, once, and stays deleted if you delete it. "
        "Pick one below; nothing trains until you click. Training runs in the background: this page "
        "shows its progress and opens the explorer when the model is ready."
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
        seed, quick = VAEConfig.preset("seed", dataset=dataset), VAEConfig.quick(dataset=dataset)
        c1, c2 = st.columns(2)
        with c1:
            st.markdown(
                f"**Default model** — the seed's setup: {describe(seed)}. "
                "Best quality; takes a while on a CPU (the ETA shows once it runs)."
            )
            if st.button(
                "Train the default model",
                type="primary",
                key="retrain_first_default",
                icon=":material/model_training:",
            ):
                _start(seed, "main")
        with c2:
            st.markdown(
                f"**Quick preview** — {describe(quick)}. "
                "Ready in about a minute; blurrier digits. Retrain the full model later from "
                "the sidebar."
            )
            if st.button("Train a quick preview model", key="retrain_first_quick", icon=":material/bolt:"):
                _start(quick, "main")
        st.caption("Or from a terminal: `python -m model.train` (the page picks the model up on reload).")
    _live_fragment("main", wide=True, active=active)
