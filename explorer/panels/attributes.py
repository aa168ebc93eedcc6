"""Attribute vectors: the difference of two groups' mean z (two classes, or two saved selections), and
the current z moved along it with a strength slider ("turn this 4 into a 9"), path shown on a map.
The strength s is in units of the distance between the two means (s = 1 moves z by |v|). The default
pair shows a change: from the class nearest the current z to the nearest class whose mean is clearly
apart from it (two classes whose means almost coincide, like 4 and 9 in a 2-D space, would decode
seven identical digits).

Widget keys: attr_open, attr_from, attr_to, attr_s, attr_save_a, attr_save_b, attr_apply. The saved
selections are this panel's own state (`_own()`); the selection it reads and the sliders it moves ("Move
the sliders here") are shared state (explorer.session).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import cache, session, views
from explorer.panels.common import fmt, lazy_expander, thumbnail_row
from model import analysis

PATH_STEPS = 7
MAP_SIZE = 220
MIN_APART = 0.5  # the default target class's mean is at least this fraction of the median distance apart


def _own() -> dict:
    """This panel's state: the saved selections "a" and "b" (lists of test rows, or None)."""
    return session.own("attributes")


def _save_selection(which: str) -> None:
    """Button callback: keep the current selection as group `which` ("a" or "b")."""
    _own()[which] = session.selection_rows() or None


def default_classes(z, z_means, labels) -> tuple[int, int]:
    """The default (from, to) classes: the class whose mean z is nearest to `z`, and the nearest class
    whose mean is at least MIN_APART x the median distance between class means away from it (pure)."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if len(classes) < 2:
        return int(classes[0]), int(classes[0])
    means = np.stack([np.asarray(z_means)[labels == c].mean(axis=0) for c in classes])  # (C, d)
    a = int(np.argmin(np.linalg.norm(means - np.asarray(z, np.float64), axis=1)))
    dist = np.linalg.norm(means - means[a], axis=1)  # (C,)
    pair = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(len(classes), 1)]
    far = np.flatnonzero(dist >= MIN_APART * np.median(pair))
    b = int(far[np.argmin(dist[far])]) if len(far) else int(np.argmax(dist))
    return int(classes[a]), int(classes[b])


def group_rows(ex, key: str) -> np.ndarray:
    """Test rows of a group key: "class:<label>" or "sel:a" / "sel:b" (a saved selection)."""
    if key.startswith("class:"):
        return np.flatnonzero(ex.latents.labels == int(key.split(":")[1]))
    rows = list(_own().get(key.split(":")[1]) or [])
    return np.array([r for r in rows if 0 <= r < len(ex.images)], np.int64)


def attributes_panel(ex, z_sliders) -> None:
    box, is_open = lazy_expander(
        "Attribute vectors: move this digit towards another class", "attr_open", ":material/trending_flat:"
    )
    if not is_open:
        return
    with box:
        classes = [int(c) for c in np.unique(ex.latents.labels)]
        options = [f"class:{c}" for c in classes] + [f"sel:{w}" for w in ("a", "b") if _own().get(w)]

        sizes = {w: len(_own().get(w) or []) for w in ("a", "b")}

        def label(key):  # pure: AppTest calls it outside the session
            if key.startswith("class:"):
                return f"class {ex.class_name(int(key.split(':')[1]))}"
            return f"saved selection {key[-1].upper()} ({sizes[key[-1]]:,} images)"

        ca, cb = default_classes(z_sliders, ex.latents.z_mean, ex.latents.labels)
        c1, c2, c3 = st.columns([2, 2, 3])
        a = c1.selectbox(
            "From the mean of",
            options,
            index=options.index(f"class:{ca}"),
            key="attr_from",
            format_func=label,
        )
        b = c2.selectbox(
            "To the mean of", options, index=options.index(f"class:{cb}"), key="attr_to", format_func=label
        )
        s = c3.slider(
            "Strength s (z + s·v)",
            -1.0,
            2.0,
            1.0,
            step=0.05,
            key="attr_s",
            help="In units of the distance between the two means: s = 1 moves z by |v|, as far as "
            "from one mean to the other.",
        )
        sel = session.selection_rows()
        s1, s2, _ = st.columns([1, 1, 2])
        s1.button(
            "Save the selection as A",
            on_click=_save_selection,
            args=("a",),
            key="attr_save_a",
            disabled=not sel,
            help="Box- or lasso-select test images on the scatter first.",
        )
        s2.button(
            "Save the selection as B",
            on_click=_save_selection,
            args=("b",),
            key="attr_save_b",
            disabled=not sel,
        )
        if a == b:
            st.warning("Pick two different groups: the vector between a group and itself is zero.")
            return
        try:
            v = analysis.attribute_vector(ex.latents.z_mean, group_rows(ex, a), group_rows(ex, b))
        except ValueError as e:
            st.warning(str(e))
            return
        z = np.asarray(z_sliders, np.float32)
        strengths = np.linspace(0.0, s, PATH_STEPS) if s != 0 else np.zeros(1)
        path = analysis.attribute_path(z, v, strengths)  # (K, d)
        images = ex.model.decode(path)  # one batched decode; the last one is z + s·v
        left, right = st.columns([3, 1])
        with left:
            thumbnail_row("attr").image(
                [views.to_png(im, 3) for im in images],
                width=84,
                output_format="PNG",
                caption=[f"s={t:+.2f}" for t in strengths],
                alt=[
                    f"decoded digit at z + {t:.2f}·v (from {label(a)} towards {label(b)}), z = {fmt(p)}"
                    for t, p in zip(strengths, path)
                ],
            )
            st.caption(
                f"v = mean z of {label(b)} − mean z of {label(a)} = `{fmt(v)}` (|v| = "
                f"{np.linalg.norm(v):.2f}, the distance between the two means: s = 1 moves that far), "
                f"added to the sliders' z = `{fmt(z)}`. The map shows the "
                "path (grey) and where z + s·v lands (red ×)"
                + ("" if ex.latent_dim == 2 else f", in the {ex.view_name} view")
                + "."
            )
            st.button(
                "Move the sliders here (z + s·v)",
                on_click=session.set_z,
                args=(path[-1], ex.latents.bounds),
                key="attr_apply",
            )
        with right:
            extent = ex.map_extent
            base = cache.map_base(ex.stamp, ex.latents.xy, ex.latents.labels, extent, MAP_SIZE)
            st.image(
                views.map_png(base, extent, current=ex.project(path[-1]), path=ex.project(path)),
                width=MAP_SIZE,
                output_format="PNG",
                caption="the attribute path on the test set",
                alt=f"map of the test set with the attribute path from z = {fmt(z)} to z + {s:.2f}·v "
                f"= {fmt(path[-1])} (red cross)",
            )
