"""How the test-set scatter is drawn: colour by the label or a per-point measure, which labels stand out
(the others dimmed, not hidden), a search that picks a test image by index or label, and one-click
selections of the worst points by a measure.

Widget keys: scatter_colour, scatter_labels, scatter_find, scatter_next, scatter_worst, scatter_all (the
training images too: read by the page before it loads the explorer, `with_train()`).
Own state (session.own(STATE)): the search's last message.
"""

from __future__ import annotations

import re

import numpy as np
import streamlit as st

from explorer import cache, context, session
from explorer.scatter import Colouring
from model.measures import MEASURES, worst

STATE = "scatter_view"
LABEL = "label"  # the "Colour by" choice that colours by class
WORST_N = 100


def with_train() -> bool:
    """Whether this tab asked for the training images too. Only in the latent plane or PCA view: t-SNE
    and UMAP are fitted on the test set (minutes for 10,000 points already)."""
    return bool(st.session_state.get("scatter_all")) and st.session_state.get("proj_method", "PCA") == "PCA"


def _drop_training_pick(n_test: int) -> None:
    """Turning the training images off: a pick among them has no place in the test set any more."""
    pick = session.pick()
    if not session.widget_value("scatter_all") and pick is not None and pick >= n_test:
        session.set_pick(None)


def _all_points_toggle(ex: context.Explorer) -> None:
    st.toggle(
        "Training images too",
        key="scatter_all",
        on_change=_drop_training_pick,
        args=(ex.n_test,),
        help="Add the dataset's training images to the scatter (smaller, fainter; hovered as train #i), "
        "e.g. all 70,000 MNIST images. Every tool then works on them too.",
    )
    if with_train() != ex.with_train:  # the page loads another explorer: the whole page reruns
        st.rerun(scope="app")
    if st.session_state.get("scatter_all") and not with_train():
        st.caption("The training images are shown in the PCA view only: t-SNE and UMAP map the test set.")
    elif ex.with_train:
        st.caption(f"{len(ex.images):,} images: {ex.n_test:,} test, {len(ex.images) - ex.n_test:,} training.")


def _find(ex: context.Explorer, query: str, after: int | None) -> tuple[int | None, str]:
    """The test row a search means, and what to say. An integer (or #integer) is a row; anything else a
    label, by class name (case-insensitive; "label 7" works too): the next image of that label after
    `after`, wrapping around, so searching again walks through them."""
    q = query.strip()
    n = len(ex.images)
    if not q:
        return None, ""
    if re.fullmatch(r"#?\d+", q):
        row = int(q.lstrip("#"))
        if row < n:
            return row, ex.point_name(row)
        return None, f"There is no test image #{row}: the scatter has rows 0 … {n - 1:,}."
    name = re.sub(r"^label\s+", "", q, flags=re.IGNORECASE).lower()
    classes = [i for i, c in enumerate(ex.class_names) if str(c).lower() == name]
    classes = classes or [i for i, c in enumerate(ex.class_names) if str(c).lower().startswith(name)]
    if not classes:
        return None, (
            f"No label matches {q!r}. Type a test image number (0 … {n - 1:,}) or a label: "
            + ", ".join(map(str, ex.class_names))
            + " (a digit label as \u201clabel 7\u201d)."
        )
    rows = np.flatnonzero(np.isin(ex.latents.labels, classes))
    if len(rows) == 0:
        return None, f"The test set has no image labelled {ex.class_name(classes[0])}."
    start = -1 if after is None else after
    row = int(rows[np.searchsorted(rows, start, side="right") % len(rows)])
    k = int(np.searchsorted(rows, row)) + 1
    name = ex.class_name(ex.latents.labels[row])
    return row, f"{ex.point_name(row)}: {name}, {k:,} of {len(rows):,} with that label"


def _on_find(ex: context.Explorer) -> None:
    row, message = _find(ex, str(session.widget_value("scatter_find") or ""), session.pick())
    session.own(STATE)["find"] = message
    if row is not None:
        session.set_pick(row)


def _select_worst(values, worse_high: bool) -> None:
    session.set_selection(worst(values, WORST_N, worse_high))


def _measure_values(ex: context.Explorer) -> dict[str, np.ndarray]:
    lat = ex.latents
    return cache.measures(ex.stamp, ex.model, ex.images, lat.labels, lat.z_mean, lat.z_log_var)


def _label_filter(ex: context.Explorer) -> set[int] | None:
    present = [int(c) for c in np.unique(ex.latents.labels)]
    picked = st.multiselect(
        "Show labels",
        present,
        format_func=ex.class_name,
        key="scatter_labels",
        placeholder="all labels",
        help="Only these labels in colour; the others stay on the map, greyed out (and clickable).",
    )
    return set(picked) or None


def _finder(ex: context.Explorer) -> None:
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    row.text_input(
        "Find a test image",
        key="scatter_find",
        placeholder="a number, or a label",
        on_change=_on_find,
        args=(ex,),
        help="A test image number picks it; a label (a class name, or \u201clabel 7\u201d) picks the next "
        "image with that label after the current pick.",
    )
    row.button("Next match", key="scatter_next", on_click=_on_find, args=(ex,))
    if message := session.own(STATE).get("find"):
        st.caption(message)


def scatter_view(ex: context.Explorer) -> tuple[Colouring | None, set[int] | None]:
    """The "Colour, filter and find" controls. Returns how to draw the scatter: (colouring, shown labels)."""
    with st.expander("Colour, filter and find", icon=":material/palette:"):
        choices = [LABEL, *MEASURES]
        key = st.selectbox(
            "Colour by",
            choices,
            format_func=lambda k: "label" if k == LABEL else MEASURES[k].label,
            key="scatter_colour",
            help="Any per-image measure, with a colour bar; hover a point for its value.",
        )
        shown = _label_filter(ex)
        by = "recon" if key == LABEL else key
        m = MEASURES[by]
        values = _measure_values(ex) if key != LABEL else None
        if values is not None:
            st.caption(f"{m.label}: {m.help}.")
        st.button(
            f"Select the {WORST_N} worst by {m.label}",
            key="scatter_worst",
            on_click=lambda: _select_worst(_measure_values(ex)[by], m.worse_high),
            help="A box selection of them: the selection section below shows the images, counts, CSV.",
        )
        _finder(ex)
        _all_points_toggle(ex)
    if values is None:
        return None, shown
    return Colouring(values[key], m.label, m.worse_high), shown
