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

from dataclasses import fields

import streamlit as st

from explorer import session
from explorer.panels.common import plain
from explorer.panels.training_jobs import (
    _announce_end,
    _latest,
    _live_fragment,
    _outcome,
    _own,
    _show_notice,
    _start,
    describe,
)
from model import bundle
from model.config import VAEConfig, option
from model.data import available_datasets, dataset_label
from model.paths import shown

# The values the form offers for a few fields (each holds the field's default; the defaults, the
# allowed values, labels and help come from the VAEConfig fields: model.config).
BATCH_SIZES = (32, 64, 128, 256, 512)
SUBSETS = (None, 30_000, 10_000, 5_000, 1_000, 256)  # training images (None: all)
LATENT_SIZES = (2, 3, 4, 8, 16, 32)


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


def _radio(name: str, key: str, fmt=str, more: str = ""):
    """A horizontal radio of field `name`'s choices, on its default; `more` is added to its help."""
    choices = option(name).offered()
    return st.radio(
        _label(name),
        choices,
        index=choices.index(getattr(VAEConfig(), name)),
        key=key,
        horizontal=True,
        format_func=_choice(name, fmt),
        help=_help(name) + more,
    )


def _field_input(name: str, default):
    """A widget for a VAEConfig field the form does not lay out by hand, made from its metadata."""
    opt, key = option(name), f"retrain_{name}"
    if opt.choices and not opt.open:
        return _radio(name, key)
    if opt.kind is str:
        return st.text_input(opt.label, value=default, key=key, help=_help(name))
    step = 1 if opt.kind is int else None
    return st.number_input(opt.label, value=default, step=step, key=key, help=_help(name))


def _number(name: str, key: str, bounds: tuple, step, fmt: str | None = None, more: str = ""):
    """A number input of field `name` within `bounds` (min, max), on its default."""
    lo, hi = bounds
    default = getattr(VAEConfig(), name)
    return st.number_input(_label(name), lo, hi, default, step, format=fmt, key=key, help=_help(name) + more)


def _slider(name: str, key: str, values: tuple, more: str = ""):
    """A select slider of field `name` over `values`, on its default."""
    return st.select_slider(
        _label(name), values, value=getattr(VAEConfig(), name), key=key, help=_help(name) + more
    )


def _main_inputs() -> dict:
    """The options shown first: epochs, loss, β, batch size."""
    return {
        "epochs": _number("epochs", "retrain_epochs", (1, 500), 1),
        "loss": _radio("loss", "retrain_loss", str.upper),
        "kl_weight": _number(
            "kl_weight",
            "retrain_beta",
            (0.0, 1000.0),
            0.5,
            "%.2f",
            " The page reports the loss recon + KL whatever β.",
        ),
        "batch_size": _slider("batch_size", "retrain_batch", BATCH_SIZES),
    }


def _data_inputs() -> dict:
    """The data options: training images, latent size and the dataset (the ones available here)."""
    datasets = available_datasets()
    v = {
        "limit": st.selectbox(
            _label("limit"),
            SUBSETS,
            index=SUBSETS.index(VAEConfig().limit),
            key="retrain_limit",
            format_func=lambda n: "all (60,000)" if n is None else f"first {n:,}",
            help=_help("limit"),
        ),
        "latent_dim": _slider(
            "latent_dim", "retrain_latent", LATENT_SIZES, " With more than 2 the sliders explore a 2-D slice."
        ),
        "dataset": st.selectbox(
            _label("dataset"),
            [name for name, how in datasets.items() if how is None] or [VAEConfig().dataset],
            key="retrain_dataset",
            format_func=dataset_label,
        ),
    }
    for name, how in datasets.items():
        if how is not None:
            st.caption(f"{dataset_label(name)} is not available here: {how}")
    return v


def _optimizer_inputs() -> dict:
    """The learning rate and its schedule."""
    return {
        "learning_rate": _number("learning_rate", "retrain_lr", (1e-5, 0.99), 1e-4, "%.5f"),
        "lr_schedule": _radio(
            "lr_schedule",
            "retrain_schedule",
            more=" With batch 64, learning rate 0.002 and 20 epochs (`python -m model.train --fast`) cosine "
            "decay beats the seed's 30-epoch test loss in about half the time.",
        ),
    }


def _options_form(active: bool) -> VAEConfig | None:
    """The retrain options; returns the VAEConfig to train when Start is pressed.

    Labels, help, defaults and the allowed values come from the VAEConfig fields (model.config)."""
    with st.form("retrain_form", border=False):
        v = _main_inputs()  # field name -> the widget's value
        with st.expander("More options"):
            v |= _data_inputs() | _optimizer_inputs()
            for f in fields(VAEConfig):  # any other field: a widget made from its metadata
                if f.name not in v:
                    v[f.name] = _field_input(f.name, f.default)
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


def _first_dataset() -> str | None:
    """The first dataset of the registry that is available here (a warning if it is not the first one),
    or None (an error saying how to get them)."""
    datasets = available_datasets()
    first = next(iter(datasets))  # the registry's order (model.data.DATASETS)
    dataset = next((d for d, how in datasets.items() if how is None), None)
    if dataset is None:
        st.error(
            "No dataset is available to train on. "
            + " ".join(f"{dataset_label(k)}: {v}" for k, v in datasets.items())
        )
    elif dataset != first:
        st.warning(
            f"{dataset_label(first)} is not available here ({datasets[first]}); training on "
            f"{dataset_label(dataset)} instead."
        )
    return dataset


def _offer_presets(dataset: str) -> None:
    """The first run's two buttons: the seed's model and a quick preview, on `dataset`."""
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
        dataset = _first_dataset()
        if dataset is None:
            return
        _offer_presets(dataset)
    _live_fragment("main", wide=True, active=active)
