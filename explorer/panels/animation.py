"""Animated export: the interpolation row as an animated GIF (the traversal's GIF is in traversal.py).

Session keys: anim_gif (download).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from model import analysis


def animation_panel(ex, path) -> None:
    """A download button under the interpolation: its path decoded (on click) and played as a GIF."""
    if path is None or len(path) < 2:
        return
    path = np.asarray(path, np.float32)
    st.download_button(
        "Interpolation as animated GIF",
        lambda: analysis.gif_bytes(ex.model.decode(path), scale=4),
        file_name=f"interpolation_{len(path)}_steps.gif",
        mime="image/gif",
        on_click="ignore",
        key="anim_gif",
        help="The interpolation row, forwards then back, looping (112×112 px, Pillow).",
    )
