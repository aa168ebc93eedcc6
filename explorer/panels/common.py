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

    A code span whose fence is longer than any run of backticks in the value (so none breaks out), padded
    with a space each side (which Markdown strips): nothing inside it is a link, image, emphasis, HTML,
    math or Streamlit directive. Line breaks become spaces."""
    text = re.sub(r"[\r\n]+", " ", str(value))
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def model_labels(records) -> dict[str, str]:
    """{model id: label} with every label unique, for pickers whose options are ids.

    Streamlit maps a picked option back through its displayed text, so two models with the same label
    (two identical trainings) would be one option: a duplicate label gets its model id appended."""
    counts = Counter(r.label for r in records)
    labels = {r.id: r.label if counts[r.label] == 1 else f"{r.label} · {r.id}" for r in records}
    if len(set(labels.values())) < len(labels):  # a label equal to another's "label · id": ids only
        labels = {r.id: r.id for r in records}
    return labels
