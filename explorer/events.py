"""Reading the test-set scatter's Plotly events as rows: a click's row, a box or lasso's rows. Pure: the
event dict in (whatever the browser sent), test-set rows out; anything that is not a row is ignored.
"""

from __future__ import annotations

import math

import numpy as np

MAX_EVENT_POINTS = 100_000  # points read from one selection event (a test set has 10,000)


def selection_points(event) -> list:
    """The `selection.points` list of a Plotly selection event as the browser sent it ([] if the event,
    its selection or its points are missing or of another type)."""
    sel = event.get("selection") if isinstance(event, dict) else None
    points = sel.get("points") if isinstance(sel, dict) else None
    return points[:MAX_EVENT_POINTS] if isinstance(points, list) else []


def as_row(cd) -> int | None:
    """A customdata value as a test-set row: a finite, whole, non-negative number, else None."""
    if isinstance(cd, dict):
        cd = cd.get("0", next(iter(cd.values()), None))
    if isinstance(cd, (list, tuple)):
        cd = cd[0] if cd else None
    if isinstance(cd, bool) or not isinstance(cd, (int, float)):
        return None
    if isinstance(cd, float) and not (math.isfinite(cd) and cd.is_integer()):
        return None
    return int(cd) if 0 <= cd < 2**31 else None


def picked_row(points) -> int | None:
    """The test-set row of the last selected point in a Plotly selection, or None.

    Points without customdata (overlays) are ignored, and so is any value the browser sent that is not
    a row (NaN, inf, fractions, negative or huge numbers, strings, a `points` that is not a list).
    customdata may arrive as `[row]`, `row`, or `{"0": row}`: numpy customdata reaches the browser as a
    typed array, which JSON writes as an object.
    """
    if not isinstance(points, (list, tuple)):
        return None
    for p in reversed(points[-MAX_EVENT_POINTS:]):
        row = as_row(p.get("customdata")) if isinstance(p, dict) else None
        if row is not None:
            return row
    return None


def selected_rows(event) -> list[int] | None:
    """The test-set rows of a box or lasso selection in a Plotly selection event, or None for a plain
    click (no box/lasso drawn). Points without customdata (overlays) are ignored; order is kept."""
    sel = event.get("selection") if isinstance(event, dict) else None
    if not isinstance(sel, dict) or not (sel.get("box") or sel.get("lasso")):
        return None
    out, seen = [], set()
    for p in selection_points(event):
        row = picked_row([p])
        if row is not None and row not in seen:
            seen.add(row)
            out.append(row)
    return out


def rows_in_selection(event, xy) -> list[int] | None:
    """The rows of all `xy` (N, 2) inside an event's box or lasso (its geometry, not the points the browser
    listed: an overview draws only some points), in row order; None for a click or no geometry."""
    sel = event.get("selection") if isinstance(event, dict) else None
    if not isinstance(sel, dict):
        return None
    xy = np.asarray(xy, np.float64)
    inside, found = np.zeros(len(xy), bool), False
    for box in sel.get("box") or []:
        try:
            (x0, x1), (y0, y1) = sorted(map(float, box["x"][:2])), sorted(map(float, box["y"][:2]))
        except (KeyError, TypeError, ValueError):
            continue
        found = True
        inside |= (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    for lasso in sel.get("lasso") or []:
        try:
            poly = np.column_stack([np.asarray(lasso["x"], float), np.asarray(lasso["y"], float)])
        except (KeyError, TypeError, ValueError):
            continue
        if len(poly) >= 3 and np.isfinite(poly).all():
            from matplotlib.path import Path

            found = True
            inside |= Path(poly).contains_points(xy)
    return [int(r) for r in np.flatnonzero(inside)] if found else None
