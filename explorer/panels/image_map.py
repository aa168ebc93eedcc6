"""The image map: the scatter's plane cut into an N×N grid, the test image nearest to each cell's centre
drawn at its place (cells without points left dark), as one PNG; beside it the decoder's view of the
same grid. A lazy expander: closed, it costs nothing.

The grid covers the scatter's axes (scatter.axis_ranges) in the view it shows: the latent plane, PCA,
t-SNE or UMAP. The decoder's view: in a linear plane (latent plane, PCA) each cell's centre lifted to a
latent vector (the PCA inverse: the other principal directions at the test set's mean) and decoded, the
manifold of that plane; a t-SNE or UMAP point has no latent vector, so there each occupied cell shows
the decoding of its image's posterior mean (its reconstruction) instead, said under it.

Widget keys: imap_open, imap_n, imap_png, imap_decoded_png.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import context, scatter, views
from explorer.panels.common import lazy_expander
from model import imagemap

N_DEFAULT = 20
N_RANGE = (4, 60)
SHOWN_PX = 560  # the pictures' width on the page (the downloads are full size)


def grid_extent(xy) -> tuple[float, float, float, float]:
    """The scatter's axes (scatter.axis_ranges) as an extent (x0, x1, y0, y1)."""
    (x0, x1), (y0, y1) = scatter.axis_ranges(xy)
    return x0, x1, y0, y1


@st.cache_data(max_entries=16, show_spinner="Drawing the image map…")
def pictures(
    stamp: str, xy: np.ndarray, n: int, linear: bool, _ex: context.Explorer
) -> tuple[bytes, bytes, int]:
    """(image map PNG, decoder's view PNG, occupied cells), per model, view positions `xy` and N."""
    rows = imagemap.nearest_per_cell(xy, grid_extent(xy), n)
    picture = views.to_png(imagemap.compose(_ex.images, rows))
    return picture, views.to_png(_decoder_view(_ex, rows, n, linear)), int((rows >= 0).sum())


def _decoder_view(ex: context.Explorer, rows: np.ndarray, n: int, linear: bool) -> np.ndarray:
    """The decoder's (n·28, n·28) picture of the grid (see the module docstring)."""
    lat = ex.latents
    if linear:
        centres = imagemap.cell_centres(grid_extent(lat.xy), n).reshape(-1, 2)
        decoded = ex.model.decode(imagemap.lift(centres, lat.proj_mean, lat.proj_components))  # (n², 28, 28)
        return imagemap.compose(decoded, np.arange(n * n).reshape(n, n))
    used = np.unique(rows[rows >= 0])
    decoded = np.zeros((len(lat.z_mean), 28, 28), np.float32)
    decoded[used] = ex.model.decode(lat.z_mean[used])  # one batched call for the occupied cells
    return imagemap.compose(decoded, rows)


def image_map_panel(ex: context.Explorer) -> None:
    box, is_open = lazy_expander("Image map", key="imap_open", icon=":material/grid_view:")
    if not is_open:
        return
    with box:
        lo, hi = N_RANGE
        n = int(st.slider("Grid size N (N×N cells)", lo, hi, N_DEFAULT, key="imap_n"))
        linear = ex.latent_dim <= 2 or ex.view_name == "PCA"
        picture, decoded, occupied = pictures(ex.stamp, ex.latents.xy, n, linear, ex)
        where = "the latent plane" if ex.latent_dim == 2 else f"the {ex.view_name} view"
        st.caption(
            f"{where[0].upper() + where[1:]} (the scatter's axes) cut into {n}×{n} cells: each cell shows "
            f"the test image nearest to its centre; {occupied} of {n * n} cells hold test "
            "points (the others are dark)."
        )
        left, right = st.columns(2)
        width = min(SHOWN_PX, n * 28)
        left.image(
            picture,
            width=width,
            output_format="PNG",
            caption="the test image nearest each cell's centre",
            alt=f"{n}×{n} image map of the test set in {where}",
        )
        left.download_button(
            "PNG of the image map", picture, "image-map.png", "image/png", key="imap_png", on_click="ignore"
        )
        right.image(
            decoded,
            width=width,
            output_format="PNG",
            caption="the decoder's view of the same cells"
            + ("" if linear else ": the reconstructions of those images"),
            alt=f"{n}×{n} decoded grid over the same cells",
        )
        right.download_button(
            "PNG of the decoder's view",
            decoded,
            "decoder-map.png",
            "image/png",
            key="imap_decoded_png",
            on_click="ignore",
        )
        if linear:
            st.caption(
                "Right: each cell's centre decoded"
                + (
                    " (lifted by the PCA inverse: the other directions at the test mean)"
                    if ex.latent_dim > 2
                    else ""
                )
                + ", the manifold of this plane: where the pictures differ, decoder and data disagree."
            )
        else:
            st.caption(
                f"Right: a point of the {ex.view_name} plane has no latent vector, so each cell shows the "
                "decoding of its image's posterior mean (its reconstruction), not a decoded cell centre."
            )
