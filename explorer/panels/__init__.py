"""Page panels. Each module exposes one `*_panel(ex, ...)` function and owns its session-state keys.

The analysis tools of issue 14 (selection, neighbours, traversals, animation, attribute vectors, links,
comparing two models) live here; `tools.explore_tools` composes the ones that follow the pick and the
sliders, called from the explore panel (a fragment) so a click or slider move updates them too. Each is
a lazy expander (`on_change="rerun"`): closed, it costs the slider/click path nothing.
"""
