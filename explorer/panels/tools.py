"""The analysis tools that follow the pick and the sliders, composed in order.

Called once from the explore panel (a fragment), after the interpolation row, so a click or a slider
move updates them without rerunning the page. Closed expanders cost nothing (lazy).
"""

from __future__ import annotations

from explorer.panels.animation import animation_panel
from explorer.panels.attributes import attributes_panel
from explorer.panels.links import link_panel
from explorer.panels.neighbours import neighbours_panel
from explorer.panels.selection import selection_panel
from explorer.panels.traversal import traversal_panel


def explore_tools(ex, z, path) -> None:
    """z: the sliders' values (d,); path: the interpolation's latent path (K, d) or None."""
    animation_panel(ex, path)
    selection_panel(ex)
    neighbours_panel(ex)
    traversal_panel(ex, z)
    attributes_panel(ex, z)
    link_panel(ex)
