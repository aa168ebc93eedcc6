"""Small helpers shared by the panels (no session keys of their own)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import streamlit as st

from explorer import session

# Layout rules Streamlit has no parameter for, set once per page (a <style>-only st.html takes no space):
# - an image (or a row of them) never grows wider than its column: it shrinks instead of sticking out;
# - a row of thumbnails in a container keyed "thumbs_*" stays one row on a wide screen, each thumbnail
#   shrinking to fit, and wraps on a phone-width screen (Streamlit's own breakpoint for columns, 640 px);
# - a Markdown table wider than its column scrolls inside itself instead of widening the page.
PAGE_CSS = """
<style>
[data-testid="stMain"] [data-testid="stFullScreenFrame"] > div { max-width: 100%; }
[data-testid="stMain"] [data-testid="stImage"] { max-width: 100%; }
[data-testid="stMain"] [data-testid="stImageContainer"] { min-width: 0; max-width: 100%; }
[data-testid="stMain"] [data-testid="stImageCaption"] { overflow-wrap: normal; word-break: normal; }
@media (min-width: 640px) {
  [class*="st-key-thumbs_"] [data-testid="stImage"] { flex-wrap: nowrap; }
  [class*="st-key-thumbs_"] [data-testid="stImageContainer"] { flex: 0 1 auto; }
}
[data-testid="stMain"] [data-testid="stMarkdownContainer"] table {
  display: block; max-width: 100%; overflow-x: auto;
}
</style>
"""


def page_style() -> None:
    """The page's layout rules (PAGE_CSS); call once per run, before the panels."""
    st.html(PAGE_CSS)


def thumbnail_row(key: str):
    """A container for one `st.image` list that stays one row on a wide screen (PAGE_CSS)."""
    return st.container(key=f"thumbs_{key}")


def lazy_expander(label: str, key: str, icon: str | None = None, expanded: bool = False):
    """An expander whose body runs only while it is open: returns (container, is_open).

    Icons are Material names (":material/link:"): they ship with Streamlit, unlike emoji fonts."""
    box = st.expander(label, expanded=expanded, key=key, icon=icon, on_change="rerun")
    return box, bool(box.open)


def fmt(v, digits: int = 2) -> str:
    """A latent vector as the page writes every z: "[+0.15, -1.20]" (no "-0.00": a value that rounds to
    zero is written +0.00)."""
    r = np.round(np.asarray(v, np.float64).ravel(), digits) + 0.0  # -0.0 + 0.0 == +0.0
    return "[" + ", ".join(f"{x:+.{digits}f}" for x in r) + "]"


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
