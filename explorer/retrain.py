"""Retrain panel (sidebar) and first-run screen: background training jobs with live progress.

Stub: the full panel is being written (issue 4). Signatures are stable.
"""
from __future__ import annotations

import streamlit as st


def retrain_panel(store) -> None:
    """Sidebar panel: retrain options, Start/Cancel, and live progress of the running job."""
    st.caption("Retraining: coming soon.")


def first_run(store) -> None:
    """Main-area screen when the store has no model: explain and offer to train the default model."""
    st.info("No trained model yet. Run `python -m model.train` to train one.")
