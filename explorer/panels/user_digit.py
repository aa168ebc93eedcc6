"""Your own digit: draw (canvas) or upload a picture, see what the model sees, its reconstruction,
posterior and nearest test images, and mark it on the test-set scatter.

Hooks the page calls:
  user_digit_panel(ex)        main area, before the explore panel: the "Your own digit" expander
  mark_user_digit(fig, ex)    explore panel, before the scatter is drawn: the user's digit as a star
                              with its 1σ/2σ posterior ellipses, placed by the scatter's projection

The page reruns top to bottom on a drawing or an upload, and this panel runs before the explore panel,
so the scatter marks the new digit in the same run. Its session state (user_image, user_digit, ...)
goes through explorer.session; widget keys: user_panel, user_canvas, user_upload, user_to_sliders,
user_clear, user_png.
"""

from __future__ import annotations

import hashlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer import session, views
from explorer.panels.common import fmt, thumbnail_row
from model import analysis, export
from model.data import dataset_noun
from model.errors import ImageError
from model.preprocess import MAX_BYTES, MAX_PIXELS, prepare

USER_COLOR = "#e6007e"  # magenta: unlike any class colour and the pick's black
CANVAS_PX = 280  # 10x MNIST: a digit drawn large, then scaled to 20 px like MNIST's
PEN_PX = 22  # about 2 px after scaling, MNIST's stroke width
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]
NEIGHBOURS = 10


def _noun(ex) -> str:
    return dataset_noun(ex.record.config.dataset)


# ----------------------------------------------------------------------------- input


def canvas_component():
    """`st_canvas` from streamlit-drawable-canvas, or (None, why) when it cannot be used here."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except ImportError:
        return None, (
            "Drawing needs the package streamlit-drawable-canvas "
            "(`pip install streamlit-drawable-canvas==0.13.0`); upload a picture instead."
        )
    except Exception as e:  # e.g. a version whose component cannot register with this Streamlit
        return None, (
            f"The drawing canvas cannot start here ({type(e).__name__}: {str(e)[:200]}); "
            "upload a picture instead."
        )
    return st_canvas, None


def _own() -> dict:
    """This panel's state: canvas_sig/upload_id (what the canvas/uploader last gave, so each input is
    processed once), error (the last picture's message), used (the expander was used: keep it open)."""
    return session.own("user_digit")


def _set_digit(image, source: str = "") -> None:
    """Set (or, with None, clear) the user's digit and forget the last error. Also a button callback."""
    session.set_user_digit(image, source)
    _own().pop("error", None)


def _ingest(source, origin: str, dataset: str) -> None:
    """Preprocess a picture into session state (or record why it cannot be used)."""
    try:
        image = prepare(source, dataset)
    except ImageError as e:
        _own()["error"] = f"{origin}: {e}"
        return
    _set_digit(image, origin)


def _draw_tab(ex) -> None:
    st_canvas, why = canvas_component()
    if st_canvas is None:
        st.info(why)
        return
    result = st_canvas(
        stroke_width=PEN_PX,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS_PX,
        width=CANVAS_PX,
        drawing_mode="freedraw",
        return_image_data=True,
        key="user_canvas",
    )
    st.caption(
        f"Draw one {_noun(ex)}, large and centred. The bin in the toolbar clears the canvas; "
        "undo/redo are there too."
    )
    png = result.image_bytes if result is not None else None
    if png is None:
        return
    sig = hashlib.sha1(png).hexdigest()
    if sig == _own().get("canvas_sig"):
        return
    _own()["canvas_sig"] = sig
    rgba = result.image_data
    if rgba is None or rgba[..., :3].max() < 32:  # an empty canvas (first draw or after the bin)
        current = session.user_digit()
        if current and current["source"] == "drawing":
            _set_digit(None)
        return
    _ingest(rgba, "drawing", ex.record.config.dataset)


def _upload_tab(ex) -> None:
    up = st.file_uploader(
        f"A picture of a {_noun(ex)} (PNG, JPEG, GIF, BMP or WebP)",
        type=UPLOAD_TYPES,
        key="user_upload",
        max_upload_size=MAX_BYTES // 2**20,
        help=f"Up to {MAX_BYTES // 2**20} MiB and {MAX_PIXELS // 10**6} megapixels. "
        "Dark on light or light on dark; "
        "it is cropped, scaled and centred like the training images.",
    )
    if up is None:
        if _own().get("upload_id") is not None:  # the user removed the file
            _own()["upload_id"] = None
            current = session.user_digit()
            if current and current["source"].startswith("upload"):
                _set_digit(None)
        return
    if up.file_id != _own().get("upload_id"):
        _own()["upload_id"] = up.file_id
        _ingest(up.getvalue(), f"upload {up.name}", ex.record.config.dataset)


# ----------------------------------------------------------------------------- model side


@st.cache_data(max_entries=64, show_spinner=False)
def _user_latent(stamp: str, image: bytes, _model) -> dict:
    """Posterior and reconstruction of one preprocessed 28x28 picture (cached per model and picture)."""
    x = np.frombuffer(image, np.uint8).reshape(1, 28, 28)
    z_mean, z_log_var = _model.encode(x)  # (1, d) each
    return {"z_mean": z_mean[0], "z_log_var": z_log_var[0], "recon": _model.decode(z_mean)[0]}


def user_latent(ex) -> dict | None:
    """The user's digit through the current model: image, z_mean, z_log_var, recon, xy, cov (2, 2)."""
    ud = session.user_digit()
    if not ud:
        return None
    out = dict(_user_latent(ex.stamp, ud["image"].tobytes(), ex.model))
    out["image"], out["source"] = ud["image"], ud["source"]
    out["xy"] = ex.project(out["z_mean"])
    out["cov"] = ex.posterior_cov(out["z_mean"], out["z_log_var"])
    return out


def neighbours(z_means, z, k: int = NEIGHBOURS) -> np.ndarray:
    """Rows of the k test latent means nearest to z, nearest first (`model.analysis.nearest`)."""
    return analysis.nearest(z_means, z, k)[0]


def user_digit_panel(ex) -> None:
    """The "Your digit" expander: input (draw / upload), then the digit seen through the model."""
    st.session_state.setdefault("user_digit", None)
    noun = _noun(ex)
    # Open once the panel has been used, then leave it to the user: `expanded` never goes back to
    # False, since a flip (e.g. during the run that swaps one upload for another) collapses it.
    if session.user_digit() or _own().get("error") or st.session_state.get("user_image") is not None:
        _own()["used"] = True
    with st.expander(
        f"✏️ Your own {noun}: draw or upload one and see where it lands",
        key="user_panel",
        expanded=_own().get("used", False),
    ):
        left, right = st.columns([2, 3], gap="large")
        with left:
            draw, upload = st.tabs(["Draw", "Upload"])
            with draw:
                _draw_tab(ex)
            with upload:
                _upload_tab(ex)
            raw = st.session_state.pop("user_image", None)  # set from code or tests
            if raw is not None:
                _ingest(raw, "picture", ex.record.config.dataset)
        with right:
            _user_result(ex, noun)


def _user_result(ex, noun: str) -> None:
    if err := _own().get("error"):
        st.error(err)
    u = user_latent(ex)
    if u is None:
        st.info(
            f"Draw a {noun} on the canvas or upload a picture: it is preprocessed like the "
            "training images (grey, cropped, scaled, centred), encoded, marked on the scatter with "
            "its posterior ellipses (magenta star), and reconstructed."
        )
        return
    c = st.columns(2)
    c[0].image(
        views.to_png(u["image"], 6),
        width=28 * 6,
        output_format="PNG",
        caption=f"what the model sees (28×28, from the {u['source']})",
        alt=f"your {noun} as the model sees it: 28×28, preprocessed from the {u['source']}",
    )
    c[1].image(
        views.to_png(u["recon"], 6),
        width=28 * 6,
        output_format="PNG",
        caption="reconstruction: decoder(z_mean)",
        alt=f"reconstruction of your {noun}: decoded digit at z = {fmt(u['z_mean'])}",
    )
    sigma = np.exp(0.5 * u["z_log_var"])
    rows = neighbours(ex.latents.z_mean, u["z_mean"])
    labels = ex.latents.labels[rows]
    votes = np.bincount(labels, minlength=len(ex.class_names))
    best = int(votes.argmax())
    st.markdown(
        f"**z_mean:** `{fmt(u['z_mean'])}`  \n**σ (posterior std):** `{fmt(sigma)}`  \n"
        f"**Nearest test images in latent space:** mostly **{ex.class_name(best)}** "
        f"({votes[best]} of {len(rows)})"
    )
    thumbnail_row("user_nn").image(
        [views.to_png(ex.images[r], 2) for r in rows],
        width=56,
        output_format="PNG",
        caption=[f"#{r} {ex.class_name(lab)}" for r, lab in zip(rows, labels)],
        alt=[
            f"test image #{r}, label {ex.class_name(lab)}, near your {noun}" for r, lab in zip(rows, labels)
        ],
    )
    buttons = st.container(horizontal=True)  # wraps on a narrow screen; no label is cut off
    buttons.button(
        "Move the sliders here",
        on_click=session.set_z,
        args=(u["z_mean"], ex.latents.bounds),
        key="user_to_sliders",
        help="Set the latent sliders to this picture's z_mean.",
    )
    buttons.button(f"Clear my {noun}", on_click=session.set_user_digit, args=(None,), key="user_clear")
    buttons.download_button(
        "Preprocessed PNG",
        export.png_bytes(u["image"]),
        file_name=f"my-{noun.replace(' ', '-')}-28x28.png",
        mime="image/png",
        on_click="ignore",
        key="user_png",
        help="The 28×28 picture the model sees.",
    )


# ----------------------------------------------------------------------------- scatter overlay


def overlay_user_digit(fig: go.Figure, xy, ellipses=()) -> go.Figure:
    """Add the user's digit to a latent scatter: its σ contours and a star at `xy` (pure, no st.*).

    The traces carry no customdata, so a click on them never becomes a pick. They are WebGL traces
    like the class clouds: Plotly draws its WebGL layer above SVG traces, so an SVG marker inside a
    dense cloud would be hidden under the points.
    """
    for k, e in enumerate(ellipses):
        e = np.asarray(e)
        fig.add_trace(
            go.Scattergl(
                x=e[:, 0],
                y=e[:, 1],
                mode="lines",
                name=f"your {k + 1}σ posterior",
                showlegend=False,
                line=dict(color=USER_COLOR, width=2, dash="solid" if k == 0 else "dot"),
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scattergl(
            x=[float(xy[0])],
            y=[float(xy[1])],
            mode="markers",
            name="your picture",
            showlegend=False,  # the legend is the classes only: an overlay never changes it
            marker=dict(size=16, symbol="star", color=USER_COLOR, line=dict(color="white", width=1.5)),
            hovertemplate="your picture<extra></extra>",
        )
    )
    return fig


def mark_user_digit(fig: go.Figure, ex) -> go.Figure:
    """The explore panel's hook: mark the user's digit (if any) with its 1σ and 2σ ellipses."""
    u = user_latent(ex)
    if u is None:
        return fig
    ellipses = [] if u["cov"] is None else [views.sigma_ellipse(u["xy"], u["cov"], k) for k in (1, 2)]
    return overlay_user_digit(fig, u["xy"], ellipses)
