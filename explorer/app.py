"""The latent explorer page: composes the sidebar, then the panels in order (explorer/panels/).

Main area, top to bottom: a link's view restored (first run), the projection choice (above 2-D), your own
digit, the explore panel (one `st.fragment`: latent pad or sliders, live digit, scatter, pick,
interpolation, analysis tools), the manifold, the image map and density against the prior (closed
sections), samples from the prior, model quality, two models compared.
Session state: explorer/session.py holds the state panels share; each panel keeps its own beside it.
"""

from __future__ import annotations

import time

import streamlit as st

from explorer import cache, context, serving, session
from explorer.panels import (
    common,
    compare,
    density,
    downloads,
    explore,
    image_map,
    links,
    manifold,
    prior,
    projection,
    quality,
    retrain,
    scatter_view,
    sidebar,
    sweep,
    user_digit,
)
from explorer.panels.common import plain
from model.errors import DataError, StoreError
from model.paths import shown


def main() -> None:
    st.set_page_config(page_title="Latent explorer", page_icon="🔢", layout="wide")
    common.page_style()  # images and tables never stick out of their column
    t0 = time.perf_counter()
    serving.limit_heap_growth()  # once per process, before TensorFlow loads: see its docstring
    session.init()
    try:
        store = cache.get_store()
    except OSError as e:
        st.error(
            f"Cannot use the latent explorer's home directory: {plain(e.strerror or e)}. "
            "Fix: set LATENT_EXPLORER_HOME to a writable directory and restart."
        )
        return
    record = sidebar.sidebar(store)  # this tab's model: see sidebar.tab_record
    st.title("Latent explorer")
    sidebar.model_note()
    if record is None:
        for msg in cache.broken_models(store):
            st.error(f"Unreadable model: {plain(msg)}")
        retrain.first_run(store)
        return
    try:
        ex = cache.load_explorer(store, record, with_train=scatter_view.with_train())
    except (StoreError, DataError) as e:
        _load_error(store, record, e)
        return
    _intro(record, ex)
    explore.sync_sliders(ex)
    links.restore_view(store, ex)  # a link's model, pick and z (first run only)
    ex = projection.projection_panel(ex)  # PCA or t-SNE scatter above 2-D
    downloads.downloads_sidebar(ex)
    user_digit.user_digit_panel(ex)
    explore.explore_panel(ex)
    st.divider()
    manifold.manifold_panel(ex)
    image_map.image_map_panel(ex)  # lazy expanders: closed, they cost nothing
    density.density_panel(ex)
    st.divider()
    prior.prior_panel(ex)
    st.divider()
    quality.quality_panel(store, ex)
    compare.compare_panel(store, ex)
    sweep.sweep_results_panel(store)
    session.record_timings(page_ms=1000 * (time.perf_counter() - t0))
    serving.freeze_gc(ex.stamp)  # after the first full render: see its docstring


def _intro(record, ex: context.Explorer) -> None:
    st.caption(
        f"Exploring **{plain(record.label)}** — {ex.n_test:,} test images"
        + (f" and {len(ex.images) - ex.n_test:,} training images" if ex.with_train else "")
        + ", "
        f"{ex.latent_dim}-D latent space."
    )
    if record.extra.get("bundled"):
        c = record.config
        st.caption(
            f"A bundled model trained with the seed's settings ({c.epochs} epochs, batch {c.batch_size}, "
            f"{c.loss.upper()}, RMSprop, seed {c.seed}), shipped with the app so the first start needs "
            "no training; retrain from the sidebar."
        )


def _load_error(store, record, e: Exception) -> None:
    what = "model" if isinstance(e, StoreError) else "dataset"
    st.error(f"Cannot open the {what} of **{plain(record.id)}**.\n\n{plain(e)}")
    others = [r for r in store.list() if r.id != record.id]
    if others:
        st.info("Pick another model in the sidebar, or retrain one (sidebar → Retrain).")
    else:
        st.info("No other model to switch to: retrain one (sidebar → Retrain).")
    if isinstance(e, StoreError):
        st.button(
            f"Delete the broken model {record.id}",
            on_click=sidebar.delete_model,
            args=(store, record.id),
            help=f"Removes {plain(shown(record.path))}; other models are untouched.",
        )
