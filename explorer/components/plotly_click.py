"""Clicks on a Plotly chart forwarded to the server, for charts whose clicks `st.plotly_chart` drops (a
3-D scatter: its `on_select` reports only 2-D selections). A JavaScript-only `st.components.v2`
component (no iframe: it finds the chart in the page by the start of its `alt` text and listens to
Plotly's `plotly_click`); the clicked point's `customdata[0]` reaches `on_click(row)` once per click.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explorer import events, session

_JS = (Path(__file__).resolve().parent / "plotly_click.js").read_text(encoding="utf-8")
_component = st.components.v2.component("latent_explorer.plotly_click", js=_JS, isolate_styles=False)


def clicked_row(key: str) -> int | None:
    """The row of the last click reported under `key` (read in the callback), or None."""
    value = session.widget_value(key)
    clicked = value.get("clicked") if hasattr(value, "get") else None
    return events.as_row(clicked.get("row")) if isinstance(clicked, dict) else None


def plotly_click(alt_prefix: str, key: str, on_click) -> None:
    """Report clicks on the chart whose `alt` starts with `alt_prefix` to `on_click(row)`."""
    _component(
        key=key,
        data={"label": alt_prefix},
        on_clicked_change=lambda: (row := clicked_row(key)) is not None and on_click(row),
    )
