"""The sidebar: the model picker (every unreadable model named, with Delete), the current model's test
quality and config, the store's size, then the Retrain panel.

Widget keys: model_pick, delete_<id>, delete_yes_<id>, delete_no_<id>; the Delete confirmation and the
notes shown after a delete or a failed switch go through explorer.session.
"""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from explorer import session
from explorer.panels import retrain
from model.config import option
from model.store import StoreError, dir_size


def sidebar(store):
    """Model picker, config, quality and the Retrain panel. Returns the current record (or None).

    Every model the store cannot read is named here with the reason and a Delete button (a current
    model that became unreadable first: the page then explores the newest readable one)."""
    with st.sidebar:
        st.header("Model")
        if note := session.pop_delete_note():
            (st.error if note[0] == "error" else st.success)(note[1])
        records = store.list()
        current = store.current()
        broken = store.broken()
        current_id = store.current_id()
        if current_id in broken:
            instead = f" Exploring **{current.id}** instead." if current is not None else ""
            st.error(f"The current model **{current_id}** cannot be read.{instead}\n\n{broken[current_id]}")
            _delete_button(store, current_id, broken=True)
        for model_id, why in broken.items():
            if model_id != current_id:
                st.warning(f"Unreadable model **{model_id}**: {why}")
                _delete_button(store, model_id, broken=True)
        if records:
            ids = [r.id for r in records]
            labels = {r.id: r.label for r in records}
            current_id = current.id if current is not None and current.id in labels else None
            # One stable widget whose value follows switches made elsewhere (another session, a finished
            # retrain). Only a user's pick calls _switch_model; a widget keyed by the current model was
            # remounted on every switch and the browser could send its stale pick back, reverting a retrain.
            key = "model_pick"
            session.follow_current_model(key, current_id, ids)
            st.selectbox(
                "Model to explore",
                ids,
                index=None,
                key=key,
                format_func=labels.get,
                placeholder="Pick a model",
                on_change=_switch_model,
                args=(store, key),
                help="Every saved model, newest first; the one picked here becomes the current "
                "model for every open session.",
            )
        if current is not None:
            _model_card(current)
            _delete_button(store, current.id, broken=False)
        else:
            st.caption("No model yet.")
        _store_size(store, len(records), len(broken))
        st.divider()
        st.header("Retrain")
        retrain.retrain_panel(store)
    return current


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def _store_size(store, n_models: int, n_broken: int) -> None:
    """The store's size on disk (models, plus the job directories kept for their logs)."""
    size = store.size_bytes()
    jobs_size = dir_size(store.root.parent / "jobs")
    unreadable = f" + {n_broken} unreadable" if n_broken else ""
    st.caption(
        f"Store: {n_models} model{'' if n_models == 1 else 's'}{unreadable}, "
        f"{_fmt_bytes(size)} on disk (training job logs: {_fmt_bytes(jobs_size)}) in `{store.root}`."
    )


def _delete_button(store, model_id: str, *, broken: bool) -> None:
    """ "Delete…", then a confirmation ("Yes, delete" / "Keep it") before the model goes."""
    if session.confirm_delete() == model_id:
        st.warning(f"Delete **{model_id}** for good? Other models are untouched.")
        c1, c2 = st.columns(2)
        c1.button(
            "Yes, delete",
            key=f"delete_yes_{model_id}",
            type="primary",
            on_click=_delete_model,
            args=(store, model_id),
        )
        c2.button("Keep it", key=f"delete_no_{model_id}", on_click=session.ask_delete, args=(None,))
    else:
        st.button(
            "Delete this unreadable model…" if broken else "Delete this model…",
            key=f"delete_{model_id}",
            icon=":material/delete:",
            on_click=session.ask_delete,
            args=(model_id,),
            help=f"Removes {store.root / model_id} (asks first).",
        )


def _delete_model(store, model_id: str) -> None:
    session.ask_delete(None)
    was_current = store.current_id() == model_id
    try:
        store.delete(model_id)
    except StoreError as e:
        session.set_delete_note("error", str(e))
        return
    if was_current:  # make the fallback explicit: the newest remaining model becomes current
        remaining = store.list()
        if remaining:
            try:
                store.set_current(remaining[0].id)
            except StoreError:
                pass  # current() falls back to the newest readable model anyway
    session.set_delete_note("success", f"Deleted the model {model_id}.")


def _switch_model(store, key: str) -> None:
    model_id = session.widget_value(key)
    if model_id:
        try:
            store.set_current(model_id)
        except StoreError as e:
            session.set_switch_error(str(e))


def _model_card(record) -> None:
    if err := session.pop_switch_error():
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
    st.markdown("\n".join(f"- {k}: `{v}`" for k, v in rows.items()))
    st.caption(f"id `{record.id}`")
