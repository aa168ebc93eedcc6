"""Small helpers shared by the panels (no session keys of their own)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import streamlit as st

from explorer import session


def lazy_expander(label: str, key: str, icon: str | None = None, expanded: bool = False):
    """An expander whose body runs only while it is open: returns (container, is_open).

    Icons are Material names (":material/link:"): they ship with Streamlit, unlike emoji fonts."""
    box = st.expander(label, expanded=expanded, key=key, icon=icon, on_change="rerun")
    return box, bool(box.open)


def fmt(v, digits: int = 2) -> str:
    return "[" + ", ".join(f"{x:+.{digits}f}" for x in np.asarray(v).ravel()) + "]"


def current_z(ex) -> np.ndarray:
    """The latent sliders' values z0..z{d-1}, as (d,) float32."""
    return session.z_values(ex.latent_dim)


def plain(value) -> str:
    """Markdown that shows `value` as the text it is: for anything from a URL, a file or the browser.

    Every ASCII punctuation character is backslash-escaped (CommonMark allows it for each), so no link,
    image, emphasis, code span, HTML, math or table cell can start inside the value."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", str(value))


def model_labels(records) -> dict[str, str]:
    """{model id: label} with every label unique, for pickers whose options are ids.

    Streamlit maps a picked option back through its displayed text, so two models with the same label
    (two identical trainings) would be one option: a duplicate label gets its model id appended."""
    counts = Counter(r.label for r in records)
    labels = {r.id: r.label if counts[r.label] == 1 else f"{r.label} · {r.id}" for r in records}
    if len(set(labels.values())) < len(labels):  # a label equal to another's "label · id": ids only
        labels = {r.id: r.id for r in records}
    return labels
