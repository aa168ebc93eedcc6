"""Sweeps from the app: the Retrain panel's *Sweep* tab, its live rows, and the *Sweep results* section.

A sweep is a grid of training configs, one job per point (`model.sweep`): on the local runner one after
another, on a Ray cluster (LATENT_EXPLORER_RAY_ADDRESS) in parallel. Its state lives in files, so every
open tab shows the same rows, whoever started it; a config already in the store is reused, not retrained.

The results section lays a sweep's models side by side, ordered by the swept fields: each model's test
set in latent space (2-D, or PCA) and a small manifold, the loss terms against the swept value, and an
*Explore* button that opens the model in this tab.

Widget keys: sweep_form, sweep_fields, sweep_values_<field>, sweep_epochs, sweep_limit, sweep_cancel_all,
sweep_cancel_row, sweep_cancel_one, sweep_results_open, sweep_results_pick, sweep_explore_<model id>.
Private state (this module's `_state`): the notice to show after a start.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer import scatter, session, views
from explorer.panels.common import lazy_expander
from model import sweep
from model.config import VAEConfig, option
from model.data import model_dataset
from model.errors import DataError, JobError, StoreError

POLL_ACTIVE_S = 1.0
POLL_IDLE_S = 5.0
SCATTER_POINTS = 2_000  # test images drawn in each result's small scatter
MANIFOLD_N = 10  # the small manifold: MANIFOLD_N x MANIFOLD_N digits over [-span, span]^2
MANIFOLD_SPAN = 3.0
MAX_RESULTS = 12  # models laid side by side

# What the tab offers to sweep (VAEConfig fields) and the values it suggests; labels and checks come from
# the field's Option (model.config), the values are parsed by model.sweep.parse_grid like --grid.
SUGGESTED = {
    "kl_weight": "0.5, 1, 2, 4",
    "latent_dim": "2, 8",
    "loss": "bce, mse",
    "learning_rate": "0.0005, 0.001, 0.002",
    "batch_size": "64, 128",
    "seed": "0, 1, 2",
    "epochs": "5, 10",
    "limit": "1000, 10000, all",
}


def _state() -> dict:
    return st.session_state.setdefault("_sweep", {})


def field_label(name: str) -> str:
    return option(name).label


# ----------------------------------------------------------------------------- pure helpers


def grid_items(values: dict[str, str]) -> list[str]:
    """The --grid items ("field=v1,v2") of the tab's inputs; values are comma-separated text."""
    return [f"{name}={text.replace(' ', '')}" for name, text in values.items()]


def configs_for(base: VAEConfig, values: dict[str, str]) -> list[VAEConfig]:
    """The sweep's configs: `base` with every combination of the typed values. ValueError names a bad one."""
    if not values:
        raise ValueError("Expected at least one field to sweep. Fix: pick a field and give its values.")
    return sweep.expand(base, sweep.parse_grid(grid_items(values)))


def row_cells(row: sweep.SweepRow, fields: list[str]) -> dict:
    """One table row of the live view: config, state, epoch/batch, loss, ETA, model."""
    js = row.job
    progress = loss = eta = ""
    if js is not None and js.active:
        progress = f"epoch {js.epoch}/{js.epochs} · batch {js.step}/{js.steps}" if js.steps else js.phase
        eta = f"{js.eta:.0f} s" if js.eta is not None else ""
    if js is not None and js.loss is not None:
        loss = f"{js.loss:.1f}"
    return {
        "config": row.label(fields),
        "state": row.state,
        "progress": progress,
        "loss": loss,
        "ETA": eta,
        "model": row.model_id or "",
        "note": row.error or ("already trained: reused" if row.reused else ""),
    }


def order_rows(rows: list[sweep.SweepRow], fields: list[str]) -> list[sweep.SweepRow]:
    """Rows ordered by the swept fields' values (None, i.e. 'all images', last)."""

    def key(row):
        d = row.config.to_dict()
        return tuple((d[f] is None, d[f] if d[f] is not None else 0) for f in fields)

    return sorted(rows, key=key)


def loss_terms_figure(points: list[tuple[object, dict, str]], field: str, height: int = 300) -> go.Figure:
    """Reconstruction and KL (and the total) against the swept field's value, one marker per model.

    `points`: (value, test metrics, series name) per model; models of one series are joined by a line
    (the series is the other swept fields' values)."""
    fig = go.Figure()
    series: dict[str, list] = {}
    for value, metrics, name in points:
        series.setdefault(name, []).append((value, metrics))
    numeric = all(isinstance(v, (int, float)) for v, _, _ in points)
    for name, items in series.items():
        items.sort(key=lambda t: t[0] if numeric else str(t[0]))
        x = [v if numeric else str(v) for v, _ in items]
        for term, dash in (("reconstruction_loss", "solid"), ("kl_loss", "dot")):
            label = "reconstruction" if term == "reconstruction_loss" else "KL"
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[m.get(term) for _, m in items],
                    mode="lines+markers",
                    name=f"{label} {name}".strip(),
                    line=dict(dash=dash),
                )
            )
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title=field_label(field),
        yaxis_title="test loss term (per image)",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=10)),
    )
    if numeric and field in ("kl_weight", "learning_rate") and len({v for v, _, _ in points}) > 2:
        fig.update_xaxes(type="log")
    return fig


# ----------------------------------------------------------------------------- the Sweep tab


def _start(configs: list[VAEConfig], fields: list[str]) -> None:
    try:
        info = sweep.start_sweep(configs, fields=fields)
    except JobError as e:
        _state()["notice"] = ("error", str(e))
    else:
        n, reused = len(configs), len(info.reused)
        where = f"on Ray ({info.address})" if info.backend == "ray" else "one after another"
        text = f"Sweep started: {n} config{'s' if n != 1 else ''} {where}."
        if reused:
            text += f" {reused} already trained: reused, not retrained."
        _state()["notice"] = ("success", text)
    st.rerun()


def sweep_tab(store) -> None:
    """The Retrain panel's Sweep tab: fields and values, Start, and the live rows of the latest sweep."""
    notice = _state().pop("notice", None)
    if notice:
        (st.error if notice[0] == "error" else st.success)(notice[1])
    latest = _latest()
    busy = latest is not None and latest.active
    picked = st.multiselect(
        "Fields to sweep",
        list(SUGGESTED),
        default=["kl_weight"],
        format_func=field_label,
        key="sweep_fields",
        help="Every combination of the values below is one training job.",
    )
    with st.form("sweep_form", border=False):
        values = {}
        for name in picked:
            values[name] = st.text_input(
                f"{field_label(name)} values",
                SUGGESTED[name],
                key=f"sweep_values_{name}",
                help="Comma-separated.",
            )
        base = VAEConfig()
        epochs = st.number_input("Epochs (each job)", 1, 500, 5, key="sweep_epochs")
        limit = st.number_input(
            "Training images (each job; 0 = all)", 0, 60_000, 10_000, step=1_000, key="sweep_limit"
        )
        start = st.form_submit_button(
            "Start sweep",
            type="primary",
            icon=":material/grid_view:",
            disabled=busy,
            help="A sweep is running; cancel it first." if busy else "Train every config in the background.",
        )
    if start:
        try:
            base = dataclasses.replace(base, epochs=int(epochs), limit=int(limit) or None)
            configs = configs_for(base, values)  # a swept epochs/limit overrides the base's
        except ValueError as e:
            st.error(str(e))
        else:
            _start(configs, [sweep.field_name(k) for k in values])
    _live_fragment(busy)


def _latest() -> sweep.SweepStatus | None:
    try:
        sweep_id = sweep.latest_sweep_id()
        return sweep.sweep_status(sweep_id) if sweep_id else None
    except JobError:
        return None


def _cancel(sweep_id: str, job_id: str | None) -> None:
    try:
        sweep.cancel_sweep(sweep_id, job_id)
    except JobError as e:
        _state()["notice"] = ("error", str(e))


def _live() -> None:
    s = _latest()
    if s is None:
        st.caption("No sweep yet.")
        return
    was = _state().get("active")
    _state()["active"] = s.active
    if was is not None and was != s.active:
        st.rerun()  # a sweep started or ended elsewhere: new refresh rate, the results section updates
    done = sum(r.state in ("succeeded", "reused") for r in s.rows)
    where = f"Ray ({s.address})" if s.backend == "ray" else "local runner"
    st.markdown(f"**Sweep** `{s.id}` · {where} · {s.state} · {done}/{len(s.rows)} done")
    if s.error:
        st.error(s.error)
    st.dataframe(
        [row_cells(r, s.fields) for r in s.rows],
        hide_index=True,
        width="stretch",
        column_config={"model": st.column_config.TextColumn(width="small")},
    )
    running = [r for r in s.rows if r.job is not None and r.job.active and not r.job.cancel_requested]
    if s.active and not s.cancel_requested:
        c1, c2 = st.columns(2)
        c1.button(
            "Cancel all",
            key="sweep_cancel_all",
            on_click=_cancel,
            args=(s.id, None),
            icon=":material/stop_circle:",
            help="Stop every running job and start no more; finished models stay.",
        )
        if running:
            labels = {r.job.id: r.label(s.fields) for r in running}
            job_id = c2.selectbox(
                "Job",
                list(labels),
                format_func=labels.get,
                key="sweep_cancel_row",
                label_visibility="collapsed",
            )
            c2.button("Cancel this job", key="sweep_cancel_one", on_click=_cancel, args=(s.id, job_id))
    elif s.cancel_requested and s.active:
        st.caption("Cancelling…")


def _live_fragment(active: bool) -> None:
    st.fragment(_live, run_every=POLL_ACTIVE_S if active else POLL_IDLE_S)()


# ----------------------------------------------------------------------------- results


@st.cache_data(max_entries=64, show_spinner=False)
def result_view(model_id: str, stamp: str, _store) -> tuple:
    """A model's small views: its first SCATTER_POINTS test images' posterior means in 2-D (PCA above 2),
    their labels, a MANIFOLD_N x MANIFOLD_N manifold PNG, the axis titles and the class names. Cached
    per model stamp."""
    record = _store.record(model_id)
    from model.latent import LatentModel  # lazy: loading needs Keras

    model = LatentModel.from_record(_store.record(model_id))
    data = model_dataset(record.config.dataset, record.path)
    z_mean, _ = model.encode(data.x_test[:SCATTER_POINTS])
    if z_mean.shape[1] == 2:
        xy, titles = z_mean, ("z[0]", "z[1]")
    else:
        centred = z_mean - z_mean.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy, titles = centred @ vt[:2].T, ("PC1", "PC2")
    png = views.to_png(model.manifold(n=MANIFOLD_N, span=MANIFOLD_SPAN))
    labels = np.asarray(data.y_test[:SCATTER_POINTS])
    return xy.astype(np.float32), labels, png, titles, tuple(data.class_names)


def _explore(model_id: str) -> None:
    session.set_tab_model(model_id)


def sweep_results_panel(store) -> None:
    """Main area: a sweep's models side by side (collapsed; costs nothing until opened)."""
    box, is_open = lazy_expander("Sweep results", "sweep_results_open", ":material/grid_view:")
    if not is_open:
        return
    with box:
        try:
            ids = sweep.list_sweeps()
        except JobError as e:
            st.error(str(e))
            return
        if not ids:
            st.info(
                "No sweep yet: start one in the sidebar (Retrain → Sweep) or with `python -m model.sweep`."
            )
            return
        statuses = {}
        for sid in ids[:20]:
            try:
                statuses[sid] = sweep.sweep_status(sid)
            except JobError:
                continue
        sweep_id = st.selectbox(
            "Sweep",
            list(statuses),
            key="sweep_results_pick",
            format_func=lambda i: (
                f"{i} · {', '.join(map(field_label, statuses[i].fields))} · {statuses[i].state}"
            ),
        )
        if sweep_id is None:
            return
        _results(store, statuses[sweep_id])


def _results(store, s: sweep.SweepStatus) -> None:
    from explorer.cache import model_stamp

    rows = [r for r in order_rows(s.rows, s.fields) if r.model_id]
    if not rows:
        st.caption(f"No model of this sweep is in the store yet ({s.state}).")
        return
    records = {}
    for r in rows:
        try:
            records[r.model_id] = store.record(r.model_id)
        except StoreError as e:
            st.warning(f"{r.label(s.fields)}: its model cannot be read ({e}).")
    rows = [r for r in rows if r.model_id in records][:MAX_RESULTS]
    if s.fields:
        field = s.fields[0]
        others = s.fields[1:]
        points = [
            (
                r.config.to_dict()[field],
                records[r.model_id].test_metrics,
                " ".join(f"{field_label(o)}={r.config.to_dict()[o]}" for o in others),
            )
            for r in rows
        ]
        st.plotly_chart(loss_terms_figure(points, field), key=f"sweep_terms_{s.id}")
    per_row = 4
    for start in range(0, len(rows), per_row):
        cols = st.columns(per_row)
        for col, r in zip(cols, rows[start : start + per_row]):
            rec = records[r.model_id]
            with col:
                m = rec.test_metrics
                st.markdown(f"**{r.label(s.fields)}**")
                st.caption(
                    " · ".join(
                        f"{name} {m[k]:.1f}"
                        for name, k in (("loss", "loss"), ("recon", "reconstruction_loss"), ("KL", "kl_loss"))
                        if isinstance(m.get(k), (int, float))
                    )
                )
                try:
                    xy, labels, png, titles, class_names = result_view(rec.id, model_stamp(rec), store)
                except (StoreError, DataError) as e:
                    st.warning(f"Cannot open this model: {e}")
                    continue
                fig = scatter.latent_scatter(xy, labels, class_names, axis_titles=titles, height=220)
                fig.update_layout(showlegend=False, margin=dict(l=0, r=0, t=0, b=0))
                st.plotly_chart(fig, key=f"sweep_scatter_{rec.id}", config={"displayModeBar": False})
                st.image(
                    png, width="stretch", caption=f"manifold, z in [-{MANIFOLD_SPAN:g}, {MANIFOLD_SPAN:g}]²"
                )
                st.button(
                    "Explore",
                    key=f"sweep_explore_{rec.id}",
                    on_click=_explore,
                    args=(rec.id,),
                    icon=":material/visibility:",
                    help="Open this model in this tab.",
                )
