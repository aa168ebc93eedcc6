"""The sidebar: the model picker (every unreadable model named, with Delete), this tab's model's test
quality and config, the store's size, then the Retrain panel.

The model a tab explores belongs to the tab (`tab_record`): a pick here, a link or "Explore it" changes
this tab only; the store's current model is only the default a new tab opens on.

Widget keys: model_pick, model_default, model_offer_go, model_offer_no, delete_<id>, delete_yes_<id>,
delete_no_<id>; the tab's model is shared state (explorer.session); the Delete
confirmation and the notes shown after a delete or a failed switch are this panel's own (`_own()`).
"""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from explorer import session
from explorer.panels import links, retrain, sweep
from explorer.panels.common import model_labels, plain
from model.config import option
from model.errors import ModelNotFoundError, StoreError
from model.paths import shown
from model.store import dir_size


def _own() -> dict:
    """This panel's state: model_note / delete_note ((kind, text) shown once), switch_error,
    confirm_delete (the model id whose Delete asks to confirm), seen_model (the picker's last model)."""
    return session.own("sidebar")


def _note(kind: str, text: str) -> None:
    _own()["model_note"] = (kind, text)


def _ask_delete(model_id: str | None) -> None:
    """Button callback: ask to confirm deleting `model_id` (None: forget the question)."""
    _own()["confirm_delete"] = model_id


def _follow_tab_model(widget_key: str, model_id: str | None, ids: list[str]) -> None:
    """Make the model picker's widget value follow this tab's model when code changed it (a link, a
    finished training this tab started, "Explore it", a delete)."""
    if _own().get("seen_model") != model_id or st.session_state.get(widget_key) not in ids:
        _own()["seen_model"] = model_id
        st.session_state[widget_key] = model_id


def tab_record(store):
    """The model this tab explores (a ModelRecord), or None when the store has none.

    The tab's own choice (session state) if it is still readable; on a tab's first run, the model its link
    names; else the store's default. A model deleted (from another tab) or damaged since is named once
    (shown once by `model_note`) and the tab falls back to the default."""
    model_id = session.tab_model()
    if model_id is None:
        model_id = links.link_model(store)
    if model_id is not None:
        try:
            record = store.record(model_id)
        except ModelNotFoundError:
            _note(
                "warning",
                f"The model **{plain(model_id)}** this tab explored was deleted (from another tab or "
                "session): its pictures and downloads are gone. This tab now explores the default model.",
            )
        except StoreError as e:
            _note(
                "error",
                f"The model **{plain(model_id)}** this tab explored cannot be read any more: {plain(e)}\n\n"
                "This tab now explores the default model.",
            )
        else:
            session.set_tab_model(record.id)
            return record
    record = store.current()
    session.set_tab_model(None if record is None else record.id)
    return record


def model_note() -> None:
    """Main area, under the title: what happened to this tab's model since its last run (once)."""
    if note := _own().pop("model_note", None):
        {"warning": st.warning, "error": st.error, "info": st.info}[note[0]](note[1])


def sidebar(store):
    """Model picker, config, quality and the Retrain panel. Returns this tab's record (or None).

    Every model the store cannot read is named here with the reason and a Delete button (a default
    model that became unreadable first: new tabs then open on the newest readable one)."""
    current = tab_record(store)
    with st.sidebar:
        st.header("Model")
        if note := _own().pop("delete_note", None):
            (st.error if note[0] == "error" else st.success)(note[1])
        _offer(store, current)
        records = store.list()
        broken = store.broken()
        default_id = store.current_id()
        if default_id in broken:
            fallback = store.current()
            instead = f" New tabs open on **{plain(fallback.id)}** instead." if fallback is not None else ""
            st.error(
                f"The default model **{plain(default_id)}** cannot be read.{instead}\n\n"
                f"{plain(broken[default_id])}"
            )
            _delete_button(store, default_id, broken=True)
        for model_id, why in broken.items():
            if model_id != default_id:
                st.warning(f"Unreadable model **{plain(model_id)}**: {plain(why)}")
                _delete_button(store, model_id, broken=True)
        if records:
            ids = [r.id for r in records]
            labels = model_labels(records)  # unique: the browser sends back the label, not the id
            # One stable widget whose value follows this tab's model when code changes it (a link, a
            # training this tab started, "Explore it"). Only a user's pick calls _switch_model.
            key = "model_pick"
            _follow_tab_model(key, current.id if current is not None else None, ids)
            st.selectbox(
                "Model to explore",
                ids,
                index=None,
                key=key,
                format_func=labels.get,
                placeholder="Pick a model",
                on_change=_switch_model,
                args=(store, key),
                help="Every saved model, newest first. The one picked here is explored in this tab only; "
                "new tabs open on the default model.",
            )
        if current is not None:
            _default_status(store, current)
            _model_card(current)
            _delete_button(store, current.id, broken=False)
        else:
            st.caption("No model yet.")
        _store_size(store, len(records), len(broken))
        st.divider()
        st.header("Retrain")
        train_tab, sweep_tab = st.tabs(["Train", "Sweep"])
        with train_tab:
            retrain.retrain_panel(store)
        with sweep_tab:
            sweep.sweep_tab(store)
    return current


def _offer(store, current) -> None:
    """A model trained from another tab: "Explore it" here, or dismiss."""
    offer = session.model_offer()
    if offer is None or (current is not None and offer == current.id):
        return
    try:
        record = store.record(offer)
    except StoreError:
        session.set_model_offer(None)  # deleted or damaged since: nothing to offer
        return
    st.info(f"A new model was trained (from another tab or session): **{plain(record.label)}**.")
    c1, c2 = st.columns(2)
    c1.button(
        "Explore it",
        key="model_offer_go",
        type="primary",
        icon=":material/visibility:",
        on_click=session.set_tab_model,
        args=(record.id,),
        help="Explore the new model in this tab; other tabs keep theirs.",
    )
    c2.button("Not now", key="model_offer_no", on_click=session.set_model_offer, args=(None,))


def _default_status(store, record) -> None:
    """Whether this tab's model is the default for new tabs, and a button to make it so."""
    if store.current_id() == record.id:
        st.caption("This is the default model: new tabs open on it.")
        return
    if why := store.why_not_default(record):
        st.caption(f"Not the default for new tabs: {why}.")  # numbers only
    st.button(
        "Make it the default for new tabs",
        key="model_default",
        icon=":material/star:",
        on_click=_make_default,
        args=(store, record.id),
        help="New tabs (and links without a model) open on the default model; open tabs keep theirs.",
    )


def _make_default(store, model_id: str) -> None:
    try:
        store.set_current(model_id)
    except StoreError as e:
        _own()["switch_error"] = plain(e)


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def _store_size(store, n_models: int, n_broken: int) -> None:
    """The store's size on disk (models, plus the job directories kept for their logs)."""
    size = store.size_bytes()
    jobs_size = dir_size(store.root.parent / "jobs")
    unreadable = f" + {n_broken} unreadable" if n_broken else ""
    st.caption(
        f"Store: {n_models} model{'' if n_models == 1 else 's'}{unreadable}, "
        f"{_fmt_bytes(size)} on disk (training job logs: {_fmt_bytes(jobs_size)}) "
        f"in {plain(shown(store.root))}."
    )


def _delete_button(store, model_id: str, *, broken: bool) -> None:
    """ "Delete…", then a confirmation ("Yes, delete" / "Keep it") before the model goes."""
    if _own().get("confirm_delete") == model_id:
        st.warning(
            f"Delete **{plain(model_id)}** for good? Other models are untouched; a tab exploring it "
            "is told on its next step."
        )
        c1, c2 = st.columns(2)
        c1.button(
            "Yes, delete",
            key=f"delete_yes_{model_id}",
            type="primary",
            on_click=delete_model,
            args=(store, model_id),
        )
        c2.button("Keep it", key=f"delete_no_{model_id}", on_click=_ask_delete, args=(None,))
    else:
        st.button(
            "Delete this unreadable model…" if broken else "Delete this model…",
            key=f"delete_{model_id}",
            icon=":material/delete:",
            on_click=_ask_delete,
            args=(model_id,),
            help=f"Removes {plain(shown(store.root / model_id))} (asks first).",
        )


def delete_model(store, model_id: str) -> None:
    """Button callback: delete a model (this tab's own one: the tab goes on to the default)."""
    _ask_delete(None)
    was_current = store.current_id() == model_id
    try:
        store.delete(model_id)
    except StoreError as e:
        _own()["delete_note"] = ("error", plain(e))
        return
    if session.tab_model() == model_id:
        session.set_tab_model(None)  # this tab deleted its own model: on to the default, no warning
    if was_current:  # make the fallback explicit: the newest remaining model becomes current
        remaining = store.list()
        if remaining:
            try:
                store.set_current(remaining[0].id)
            except StoreError:
                pass  # current() falls back to the newest readable model anyway
    _own()["delete_note"] = ("success", f"Deleted the model {plain(model_id)}.")


def _switch_model(store, key: str) -> None:
    """The picker's callback: explore the picked model in this tab only."""
    model_id = session.widget_value(key)
    if model_id:
        try:
            store.record(model_id)
        except StoreError as e:
            _own()["switch_error"] = plain(e)
        else:
            session.set_tab_model(model_id)


def _model_card(record) -> None:
    if err := _own().pop("switch_error", None):
        st.error(err)
    c = record.config
    m = record.test_metrics
    st.subheader("Quality (test set)")
    if m:
        cells = [
            f"{m[k]:.2f}" if isinstance(m.get(k), (int, float)) else "–"
            for k in ("loss", "reconstruction_loss", "kl_loss")
        ]
        st.markdown("| test loss | reconstruction | KL |\n|---:|---:|---:|\n| " + " | ".join(cells) + " |")
        st.caption(
            "Per image: reconstruction = 784 × mean pixel "
            f"{c.loss.upper()}, KL = KL(q(z|x) ‖ N(0, I)); loss = recon + KL."
        )
    else:
        st.caption("No test metrics saved with this model.")
    st.subheader("Config")
    rows = {}  # every field of the config, labelled as in the Retrain panel
    for f in fields(c):
        label, value = option(f.name).label, getattr(c, f.name)
        rows[label[:1].lower() + label[1:]] = "all" if value is None else value
    if record.train_seconds:
        rows["training time"] = f"{record.train_seconds:.0f} s"
    st.markdown("\n".join(f"- {k}: {plain(v)}" for k, v in rows.items()))
    st.caption(f"id {plain(record.id)}")
