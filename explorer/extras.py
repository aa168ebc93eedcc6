"""Beyond the seed: your own digit on the latent map, model quality side by side, downloads.

Hooks the page (explorer/app.py) calls, each one line there:
  user_digit_panel(ex)        main area, before the explore panel: draw (canvas) or upload a picture,
                              see what the model sees, its reconstruction, posterior and neighbours
  mark_user_digit(fig, ex)    explore panel, before the scatter is drawn: the user's digit as a star
                              with its 1σ/2σ posterior ellipses (projected like the scatter for d > 2)
  digit_download(digit, z)    explore panel, under the live digit: the decoded digit as PNG
  export_sidebar(ex)          sidebar: test latent means as CSV, the model's .keras files
  quality_section(store, ex)  main area, at the end: IWAE log-likelihood and k-NN accuracy, a table
                              of every stored model and their reconstructions side by side

Session state (user_image, user_digit, ...): through explorer/session.py.

The page reruns top to bottom on a drawing or an upload, and this panel runs before the explore panel,
so the scatter marks the new digit in the same run.
"""
from __future__ import annotations

import hashlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer import session, views
from model import analysis, export, quality
from model.data import DataError, model_dataset
from model.preprocess import MAX_BYTES, MAX_PIXELS, ImageError, prepare
from model.store import StoreError

USER_COLOR = "#e6007e"  # magenta: unlike any class colour and the pick's black
CANVAS_PX = 280  # 10x MNIST: a digit drawn large, then scaled to 20 px like MNIST's
PEN_PX = 22  # about 2 px after scaling, MNIST's stroke width
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]
NEIGHBOURS = 10
IWAE_N, IWAE_K = 1000, 64  # test images and samples per image for the log-likelihood estimate
KNN_K = 5
COMPARE_MAX = 4  # models shown side by side


NOUNS = {"mnist": "digit", "fashion_mnist": "clothing item"}


def _noun(ex) -> str:
    return NOUNS.get(ex.record.config.dataset, "image")


# ----------------------------------------------------------------------------- your digit: input

def canvas_component():
    """`st_canvas` from streamlit-drawable-canvas, or (None, why) when it cannot be used here."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except ImportError:
        return None, ("Drawing needs the package streamlit-drawable-canvas "
                      "(`pip install streamlit-drawable-canvas==0.13.0`); upload a picture instead.")
    except Exception as e:  # e.g. a version whose component cannot register with this Streamlit
        return None, (f"The drawing canvas cannot start here ({type(e).__name__}: {str(e)[:200]}); "
                      "upload a picture instead.")
    return st_canvas, None


def _ingest(source, origin: str, dataset: str) -> None:
    """Preprocess a picture into session state (or record why it cannot be used)."""
    try:
        image = prepare(source, dataset)
    except ImageError as e:
        session.set_user_error(f"{origin}: {e}")
        return
    session.set_user_digit(image, origin)


def _draw_tab(ex) -> None:
    st_canvas, why = canvas_component()
    if st_canvas is None:
        st.info(why)
        return
    result = st_canvas(stroke_width=PEN_PX, stroke_color="#FFFFFF", background_color="#000000",
                       height=CANVAS_PX, width=CANVAS_PX, drawing_mode="freedraw",
                       return_image_data=True, key="user_canvas")
    st.caption(f"Draw one {_noun(ex)}, large and centred. The bin in the toolbar clears the canvas; "
               "undo/redo are there too.")
    png = result.image_bytes if result is not None else None
    if png is None:
        return
    sig = hashlib.sha1(png).hexdigest()
    if sig == session.canvas_sig():
        return
    session.set_canvas_sig(sig)
    rgba = result.image_data
    if rgba is None or rgba[..., :3].max() < 32:  # an empty canvas (first draw or after the bin)
        current = session.user_digit()
        if current and current["source"] == "drawing":
            session.clear_user_digit()
        return
    _ingest(rgba, "drawing", ex.record.config.dataset)


def _upload_tab(ex) -> None:
    up = st.file_uploader(f"A picture of a {_noun(ex)} (PNG, JPEG, GIF, BMP or WebP)", type=UPLOAD_TYPES,
                          key="user_upload", max_upload_size=MAX_BYTES // 2**20,
                          help=f"Up to {MAX_BYTES // 2**20} MiB and {MAX_PIXELS // 10**6} megapixels. "
                               "Dark on light or light on dark; "
                               "it is cropped, scaled and centred like the training images.")
    if up is None:
        if session.upload_id() is not None:  # the user removed the file
            session.set_upload_id(None)
            current = session.user_digit()
            if current and current["source"].startswith("upload"):
                session.clear_user_digit()
        return
    if up.file_id != session.upload_id():
        session.set_upload_id(up.file_id)
        _ingest(up.getvalue(), f"upload {up.name}", ex.record.config.dataset)


# ----------------------------------------------------------------------------- your digit: model side

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


def projected_cov(components, z_log_var) -> np.ndarray:
    """Diagonal posterior covariance diag(exp(z_log_var)) seen in the scatter's plane: W Σ Wᵀ (2, 2)."""
    w = np.asarray(components, np.float64)  # (2, d)
    return (w * np.exp(np.asarray(z_log_var, np.float64))) @ w.T


def neighbours(z_means, z, k: int = NEIGHBOURS) -> np.ndarray:
    """Rows of the k test latent means nearest to z, nearest first (`model.analysis.nearest`)."""
    return analysis.nearest(z_means, z, k)[0]


def user_digit_panel(ex) -> None:
    """The "Your digit" expander: input (draw / upload), then the digit seen through the model."""
    session.init_user_digit()
    noun = _noun(ex)
    # Open once the panel has been used, then leave it to the user: `expanded` never goes back to
    # False, since a flip (e.g. during the run that swaps one upload for another) collapses it.
    if session.user_digit() or session.user_error() or session.has_user_image():
        session.mark_user_panel_used()
    with st.expander(f"✏️ Your own {noun}: draw or upload one and see where it lands", key="user_panel",
                     expanded=session.user_panel_used()):
        left, right = st.columns([2, 3], gap="large")
        with left:
            draw, upload = st.tabs(["Draw", "Upload"])
            with draw:
                _draw_tab(ex)
            with upload:
                _upload_tab(ex)
            raw = session.pop_user_image()  # set from code or tests
            if raw is not None:
                _ingest(raw, "picture", ex.record.config.dataset)
        with right:
            _user_result(ex, noun)


def _user_result(ex, noun: str) -> None:
    if err := session.user_error():
        st.error(err)
    u = user_latent(ex)
    if u is None:
        st.info(f"Draw a {noun} on the canvas or upload a picture: it is preprocessed like the "
                "training images (grey, cropped, scaled, centred), encoded, marked on the scatter with "
                "its posterior ellipses (magenta star), and reconstructed.")
        return
    c = st.columns(2)
    c[0].image(views.to_png(u["image"], 6), width=28 * 6, output_format="PNG",
               caption=f"what the model sees (28×28, from the {u['source']})")
    c[1].image(views.to_png(u["recon"], 6), width=28 * 6, output_format="PNG",
               caption="reconstruction: decoder(z_mean)")
    sigma = np.exp(0.5 * u["z_log_var"])
    rows = neighbours(ex.latents.z_mean, u["z_mean"])
    labels = ex.latents.labels[rows]
    names = ex.class_names
    votes = np.bincount(labels, minlength=len(names))
    best = int(votes.argmax())
    st.markdown(f"**z_mean:** `{_fmt(u['z_mean'])}`  \n**σ (posterior std):** `{_fmt(sigma)}`  \n"
                f"**Nearest test images in latent space:** mostly **{names[best]}** "
                f"({votes[best]} of {len(rows)})")
    st.image([views.to_png(ex.images[r], 2) for r in rows], width=56, output_format="PNG",
             caption=[f"#{r} {names[int(lab)]}" for r, lab in zip(rows, labels)])
    b1, b2, b3 = st.columns(3)
    b1.button("Move the sliders here", on_click=session.set_z, args=(u["z_mean"], ex.latents.bounds),
              key="user_to_sliders", help="Set the latent sliders to this picture's z_mean.")
    b2.button(f"Clear my {noun}", on_click=session.clear_user_digit, key="user_clear")
    b3.download_button("Preprocessed PNG", export.png_bytes(u["image"]),
                       file_name=f"my-{noun.replace(' ', '-')}-28x28.png", mime="image/png",
                       on_click="ignore", key="user_png",
                       help="The 28×28 picture the model sees.")


def _fmt(v) -> str:
    return "[" + ", ".join(f"{x:+.2f}" for x in np.asarray(v).ravel()) + "]"


# ----------------------------------------------------------------------------- scatter overlay

def overlay_user_digit(fig: go.Figure, xy, ellipses=()) -> go.Figure:
    """Add the user's digit to a latent scatter: its σ contours and a star at `xy` (pure, no st.*).

    The traces carry no customdata, so a click on them never becomes a pick. They are WebGL traces
    like the class clouds: Plotly draws its WebGL layer above SVG traces, so an SVG marker inside a
    dense cloud would be hidden under the points.
    """
    for k, e in enumerate(ellipses):
        e = np.asarray(e)
        fig.add_trace(go.Scattergl(
            x=e[:, 0], y=e[:, 1], mode="lines", name=f"your {k + 1}σ posterior", showlegend=False,
            line=dict(color=USER_COLOR, width=2, dash="solid" if k == 0 else "dot"), hoverinfo="skip"))
    fig.add_trace(go.Scattergl(
        x=[float(xy[0])], y=[float(xy[1])], mode="markers", name="your picture",
        marker=dict(size=16, symbol="star", color=USER_COLOR, line=dict(color="white", width=1.5)),
        hovertemplate="your picture<extra></extra>"))
    return fig


def mark_user_digit(fig: go.Figure, ex) -> go.Figure:
    """The explore panel's hook: mark the user's digit (if any) with its 1σ and 2σ ellipses."""
    u = user_latent(ex)
    if u is None:
        return fig
    ellipses = [views.sigma_ellipse(u["xy"], u["cov"], k) for k in (1, 2)]
    return overlay_user_digit(fig, u["xy"], ellipses)


# ----------------------------------------------------------------------------- downloads

def digit_download(digit, z) -> None:
    """Under the live digit: the decoded digit at the slider position as PNG (28 px and 280 px)."""
    tag = "_".join(f"{v:+.2f}" for v in np.asarray(z).ravel()[:4]) + ("_…" if np.size(z) > 4 else "")
    c1, c2 = st.columns(2)
    c1.download_button("PNG 28×28", export.png_bytes(digit), file_name=f"decoded_z{tag}.png",
                       mime="image/png", on_click="ignore", key="dl_digit_28",
                       help="The decoded digit at its native size.")
    c2.download_button("PNG 280×280", export.png_bytes(digit, scale=10), file_name=f"decoded_z{tag}_x10.png",
                       mime="image/png", on_click="ignore", key="dl_digit_280",
                       help="Each pixel as a crisp 10×10 block.")


def export_sidebar(ex) -> None:
    """Sidebar: the test set's latent means as CSV and the model's files (generated on click)."""
    rec = ex.record
    z_mean, labels = ex.latents.z_mean, ex.latents.labels
    with st.sidebar:
        st.divider()
        st.header("Export")
        st.download_button(
            f"Test latent means (CSV, {len(z_mean):,} rows)", lambda: export.latents_csv(z_mean, labels),
            file_name=f"{rec.id}-test-latents.csv", mime="text/csv", on_click="ignore", key="dl_csv",
            help=f"Columns index,label,z0..z{ex.latent_dim - 1}: each test image's posterior mean.",
            width="stretch")
        st.download_button(
            "Model (zip: both .keras files)", lambda: export.model_zip(rec), file_name=f"{rec.id}.zip",
            mime="application/zip", on_click="ignore", key="dl_zip", width="stretch",
            help="encoder.keras, decoder.keras, meta.json and a README on how to load them.")
        c1, c2 = st.columns(2)
        c1.download_button("encoder.keras", lambda: export.model_file(rec, "encoder"),
                           file_name=f"{rec.id}-encoder.keras", mime="application/octet-stream",
                           on_click="ignore", key="dl_encoder")
        c2.download_button("decoder.keras", lambda: export.model_file(rec, "decoder"),
                           file_name=f"{rec.id}-decoder.keras", mime="application/octet-stream",
                           on_click="ignore", key="dl_decoder")


# ----------------------------------------------------------------------------- quality

def _estimate(store, model_id: str, current_model=None) -> dict:
    """IWAE + k-NN for one stored model (cached on disk by model.quality)."""
    model = current_model if current_model is not None else store.load(model_id)
    rec = store.record(model_id)
    data = model_dataset(rec.config.dataset, rec.path, rec.extra, need_train=True)  # k-NN needs train
    return quality.evaluate_quality(model, data, n_iwae=IWAE_N, k_iwae=IWAE_K, k_nn=KNN_K)


def _metric(col, label, value, fmt, help=None):
    col.metric(label, fmt.format(value) if isinstance(value, (int, float)) else "–", help=help)


@st.cache_data(max_entries=16, show_spinner=False)
def _recon_pngs(stamp: str, root: str, model_id: str, rows: tuple[int, ...], _images) -> list[bytes]:
    """Reconstructions of test rows by one stored model, as PNGs (the model is loaded, used, dropped)."""
    from model.store import ModelStore

    model = ModelStore(root).load(model_id)
    return [views.to_png(im, 3) for im in model.reconstruct(_images[list(rows)])]


def quality_section(store, ex) -> None:
    """Quality of the current model, a table of every stored model and their reconstructions."""
    from explorer.state import model_stamp

    rec = ex.record
    st.subheader("Model quality")
    # an estimate that could not be cached on disk (read-only home) is kept for this session
    q = quality.cached(rec.id) or session.quality_uncached(rec.id)
    if not q.get("iwae_nll"):
        if st.button("Estimate log-likelihood and k-NN accuracy (20–60 s on a CPU)", key="quality_go",
                     help=f"IWAE bound with K={IWAE_K} on {IWAE_N} test images; {KNN_K}-NN on all latent "
                          "means. Saved, so it runs once per model."):
            with st.spinner("Estimating… (IWAE: one batched decode per 64 images)"):
                try:
                    q = _estimate(store, rec.id, ex.model)
                except (DataError, StoreError, ValueError) as e:
                    st.error(f"Could not estimate the quality: {e}")
                else:
                    if q.get("cache_error"):
                        session.keep_quality_uncached(rec.id, q)
    if q.get("cache_error"):
        st.caption(f"⚠️ {q['cache_error']}")
    m = rec.test_metrics
    cols = st.columns(5)
    _metric(cols[0], "test loss", m.get("loss"), "{:.1f}", "negative ELBO per image = reconstruction + KL")
    _metric(cols[1], "reconstruction", m.get("reconstruction_loss"), "{:.1f}")
    _metric(cols[2], "KL", m.get("kl_loss"), "{:.2f}")
    _metric(cols[3], f"−log p(x) (IWAE, K={q.get('iwae_k', IWAE_K)})", q.get("iwae_nll"), "{:.1f}",
            "Importance-weighted estimate of the negative log-likelihood in nats per image (lower "
            "is better); never above the test loss on average.")
    _metric(cols[4], f"{KNN_K}-NN accuracy", None if q.get("knn_accuracy") is None else 100 * q["knn_accuracy"],
            "{:.1f}%", "Labels of test images predicted from their 5 nearest training images in latent "
            "space (latent means). Chance is about 10%.")
    if q.get("iwae_nll"):
        st.caption(f"log-likelihood under the model's likelihood: {q['likelihood']}; on the first "
                   f"{q['iwae_n']} test images. k-NN fit on {q['knn_n_train']:,} training means, scored on "
                   f"{q['knn_n_test']:,} test means (chance {100 * q['knn_chance']:.0f}%).")
    _compare_models(store, ex, model_stamp)


def _compare_models(store, ex, model_stamp) -> None:
    records = store.list()
    st.markdown(f"**All stored models** ({len(records)})")
    st.markdown(comparison_table(quality.compare(records), ex.record.id))
    st.caption("recon + KL = test loss (the negative ELBO); −log p(x) is the IWAE estimate (≤ test loss); "
               "k-NN acc: test labels from the 5 nearest training means. – = not estimated yet.")
    missing = [r for r in records if quality.cached(r.id).get("iwae_nll") is None]
    if missing and st.button(f"Estimate the missing numbers for {len(missing)} model(s)", key="quality_all"):
        bar, failed = st.progress(0.0), []
        for i, r in enumerate(missing):
            bar.progress(i / len(missing), text=f"{r.label}…")
            try:
                _estimate(store, r.id, ex.model if r.id == ex.record.id else None)
            except (DataError, StoreError, ValueError) as e:
                failed.append(f"{r.id}: {e}")
        bar.progress(1.0, text="done")
        for msg in failed:
            st.error(f"Could not estimate the quality of {msg}")
        if not failed:
            st.rerun()  # redraw the table with the new numbers

    same = [r for r in records if r.config.dataset == ex.record.config.dataset]
    if not same:
        return
    ids = [r.id for r in same]
    labels = {r.id: r.label for r in same}
    default = [ex.record.id] + [i for i in ids if i != ex.record.id][:COMPARE_MAX - 1]
    picked = st.multiselect("Reconstructions side by side (same test images)", ids, default=default,
                            format_func=labels.get, max_selections=COMPARE_MAX,
                            # a new or deleted model gives a new widget, so its default applies again
                            key="compare_models_" + hashlib.sha1("|".join(ids).encode()).hexdigest()[:8])
    class_rows = _one_per_class(ex.latents.labels)
    cols = st.columns([1, 5])
    cols[0].caption("original")
    cols[1].image([views.to_png(ex.images[r], 3) for r in class_rows], width=84, output_format="PNG")
    by_id = {r.id: r for r in same}
    for model_id in picked:
        r = by_id[model_id]
        cols = st.columns([1, 5])
        cols[0].caption(f"z{r.config.latent_dim} · {r.config.loss} · {r.config.epochs} ep"
                        + (f" · {r.config.limit} img" if r.config.limit else ""))
        try:
            pngs = _recon_pngs(model_stamp(r), str(store.root), r.id, tuple(int(i) for i in class_rows),
                               ex.images)
        except StoreError as e:
            cols[1].error(str(e))
            continue
        cols[1].image(pngs, width=84, output_format="PNG")


TABLE = (("", "current"), ("dataset", "dataset"), ("latent", "latent_dim"), ("loss", "loss"),
         ("epochs", "epochs"), ("train images", "train_images"), ("test loss", "test_loss"),
         ("recon", "reconstruction"), ("KL", "kl"), ("−log p(x) IWAE", "iwae_nll"),
         ("k-NN acc", "knn_accuracy"), ("train time", "train_seconds"), ("id", "id"))


def comparison_table(rows: list[dict], current_id: str | None = None) -> str:
    """`quality.compare` rows as a Markdown table, the current model marked with ▶ (pure, no st.*).

    (A Markdown table, not st.dataframe: this environment's pyarrow needs NumPy 2, TensorFlow's
    NumPy here is 1.26, and st.dataframe needs pyarrow.)
    """
    def cell(key, v, row):
        if key == "current":
            return "▶" if row["id"] == current_id else ""
        if v is None:
            return "all" if key == "train_images" else "–"
        if key == "knn_accuracy":
            return f"{100 * v:.1f}%"
        if key == "train_seconds":
            return f"{v:.0f} s"
        if key in ("test_loss", "reconstruction", "iwae_nll"):
            return f"{v:.1f}"
        if key == "kl":
            return f"{v:.2f}"
        if key == "id":
            return f"`{v}`"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(h for h, _ in TABLE) + " |", "|" + "---|" * len(TABLE)]
    for row in rows:
        lines.append("| " + " | ".join(cell(k, row.get(k), row) for _, k in TABLE) + " |")
    return "\n".join(lines)


def _one_per_class(labels) -> list[int]:
    """The first test row of each class present, in class order."""
    labels = np.asarray(labels)
    return [int(np.argmax(labels == c)) for c in np.unique(labels)]
