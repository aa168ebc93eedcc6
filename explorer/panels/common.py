"""Small helpers shared by the panels (no session keys of their own)."""

from __future__ import annotations

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
