"""Compare two models' latent spaces: the current model's test-set scatter beside a second stored model's
(same dataset), linked: a click or a box/lasso selection in either rings the same test images in both.

The second model and its encodings are cached per model stamp (explorer.cache caches), so the comparison
costs one load and one encode per model. Widget keys: cmp_open, cmp_other, cmp_a, cmp_b (the two
charts), cmp_clear; the ringed rows are this panel's own state
(`session.own("compare")["rows"]`).
"""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from explorer import cache, context, events, scatter, session
from explorer.panels.common import lazy_expander, model_labels, plain
from model import analysis
from model.errors import DataError, StoreError

MAX_AGREE = 200  # highlighted rows used for the neighbour agreement
K_AGREE = 10


def neighbour_agreement(z_a, z_b, rows, k: int = K_AGREE) -> float:
    """Mean fraction of each row's k nearest test means that are the same in both spaces (pure)."""
    rows = list(rows)[:MAX_AGREE]
    if not rows:
        return float("nan")
    shared = [
        len(
            set(analysis.nearest(z_a, z_a[r], k, exclude=r)[0])
            & set(analysis.nearest(z_b, z_b[r], k, exclude=r)[0])
        )
        / k
        for r in rows
    ]
    return float(np.mean(shared))


def _on_chart(key: str) -> None:
    event = session.widget_value(key)
    rows = events.selected_rows(event)
    if rows is None:
        row = events.picked_row(events.selection_points(event))
        rows = None if row is None else [row]
    if rows is not None:
        session.own("compare")["rows"] = list(rows)


def _clear() -> None:
    session.own("compare")["rows"] = []


def compare_panel(store, ex) -> None:
    box, is_open = lazy_expander(
        "Compare two models' latent spaces (linked scatters)", "cmp_open", ":material/compare:"
    )
    if not is_open:
        return
    with box:
        others = [r for r in store.list(dataset=ex.record.config.dataset) if r.id != ex.record.id]
        if not others:
            st.info(
                f"No other stored {plain(ex.record.config.dataset)} model to compare with: retrain one "
                "(sidebar → Retrain), e.g. with another latent size or loss."
            )
            return
        labels = model_labels(others)  # unique: the browser sends back the label, not the id
        other_id = st.selectbox("Second model", list(labels), key="cmp_other", format_func=labels.get)
        record = next(r for r in others if r.id == other_id)
        try:
            stamp = cache.model_stamp(record)
            model = cache.load_model(store, record)
            other = cache.latents(stamp, model, ex.images, ex.latents.labels)
        except (StoreError, DataError) as e:
            st.error(f"Cannot open the second model: {plain(e)}")
            return
        _linked(ex, record, other)


@st.fragment
def _linked(ex, record, other: context.Latents) -> None:
    if session.own("compare").get("rows") is None:
        pick = session.pick()
        session.own("compare")["rows"] = [] if pick is None else [int(pick)]
    rows = [r for r in session.own("compare")["rows"] if 0 <= r < len(ex.images)]
    sides = (
        (ex.record, ex.latents, ex.axis_titles, "cmp_a"),
        (record, other, context.axis_titles(other), "cmp_b"),
    )
    cols = st.columns(2, gap="medium")
    for col, (rec, arr, titles, key) in zip(cols, sides):
        with col:
            st.markdown(f"**{plain(rec.label)}**")
            fig = scatter.latent_scatter(arr.xy, arr.labels, ex.class_names, axis_titles=titles, height=420)
            fig = scatter.highlight_rows(
                fig, arr.xy, rows, name=f"highlighted ({len(rows)})", color="#000000"
            )
            st.plotly_chart(
                fig,
                key=key,
                on_select=functools.partial(_on_chart, key),
                selection_mode=("points", "box", "lasso"),
                config={"displaylogo": False, "scrollZoom": False},
                alt=f"Scatter plot of the test images in the latent space of {rec.label}, one colour per "
                "label; click a point or drag a box or lasso to ring the same test images in both plots.",
            )
    if rows:
        agree = neighbour_agreement(ex.latents.z_mean, other.z_mean, rows)
        st.caption(
            f"{len(rows):,} test image(s) ringed in both. Of their {K_AGREE} nearest test images "
            f"(full latent space), {100 * agree:.0f}% are the same in both models"
            + (f" (first {MAX_AGREE} rows)" if len(rows) > MAX_AGREE else "")
            + "."
        )
        st.button("Clear the highlight", on_click=_clear, key="cmp_clear")
    else:
        st.caption(
            "Click a point, or drag a box or lasso (toolbar), in either scatter: the same test images "
            "are ringed in both."
        )
