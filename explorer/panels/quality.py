"""Model quality: the current model's IWAE log-likelihood and k-NN accuracy, a table of every stored
model, and their reconstructions of the same test images side by side.

Widget keys: quality_go, quality_all, compare_models_<hash>; estimates that could not be cached on disk
are kept in this panel's state (`session.own("quality")`).
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from explorer import background, cache, session, views
from explorer.panels.common import model_labels, plain
from model import quality
from model.data import model_dataset
from model.errors import DataError, StoreError

IWAE_N, IWAE_K = 1000, 64  # test images and samples per image for the log-likelihood estimate
KNN_K = 5
COMPARE_MAX = 4  # models shown side by side


def _estimate(store, model_id: str, current_model=None, progress=None) -> dict:
    """IWAE + k-NN for one stored model (cached on disk by model.quality)."""
    from model.latent import LatentModel  # lazy: loading needs Keras

    model = current_model if current_model is not None else LatentModel.from_record(store.record(model_id))
    rec = store.record(model_id)
    data = model_dataset(rec.config.dataset, rec.path, rec.extra, need_train=True)  # k-NN needs train
    return quality.evaluate_quality(model, data, n_iwae=IWAE_N, k_iwae=IWAE_K, k_nn=KNN_K, progress=progress)


def _quality_key(model_id: str) -> tuple:
    return ("quality", model_id)


def _start_estimate(store, model_id: str, model, label: str) -> None:
    """Button callback: queue the estimate on the server's analysis runner (explorer.background)."""
    key = _quality_key(model_id)
    background.RUNNER.forget(key)  # a failed one is tried again
    background.RUNNER.submit(
        key,
        lambda progress: _estimate(store, model_id, model, progress),
        background.session_id(),
        f"quality of {label}",
    )


def _cancel_estimate(model_id: str) -> None:
    background.RUNNER.cancel(_quality_key(model_id), background.session_id())


@st.fragment(run_every=1.0)
def _estimate_progress(model_id: str) -> None:
    """Ticks every second while the estimate waits or runs (this page still wants it); reruns the
    page once it ended."""
    key = _quality_key(model_id)
    background.RUNNER.want(key, background.session_id())
    status = background.RUNNER.status(key)
    if status["state"] not in ("queued", "running"):
        st.rerun()
    if status["state"] == "queued" and status["ahead"]:
        text = (
            f"The estimate waits for the server's analysis runner (one task at a time): "
            f"{len(status['ahead'])} task(s) first ({', '.join(status['ahead'])[:200]})."
        )
    else:
        text = (
            f"Estimating the log-likelihood (IWAE, K={IWAE_K}, {IWAE_N} test images), then the "
            f"{KNN_K}-NN accuracy, in the background… {100 * status['progress']:.0f}%, "
            f"{status['elapsed']:.0f} s elapsed. The page stays usable."
        )
    st.progress(status["progress"], text=text)
    st.button("Cancel the estimate", key="quality_cancel", on_click=_cancel_estimate, args=(model_id,))


def _metric(col, label, value, fmt, help=None):
    col.metric(label, fmt.format(value) if isinstance(value, (int, float)) else "–", help=help)


@st.cache_data(max_entries=16, show_spinner=False)
def _recon_pngs(stamp: str, rows: tuple[int, ...], _images, _store, _record) -> list[bytes]:
    """Reconstructions of test rows by one stored model, as PNGs (the model from `cache.load_model`)."""
    model = cache.load_model(_store, _record)
    return [views.to_png(im, 3) for im in model.reconstruct(_images[list(rows)])]


def quality_panel(store, ex) -> None:
    """Quality of the current model, a table of every stored model and their reconstructions."""
    rec = ex.record
    st.subheader("Model quality")
    # an estimate that could not be cached on disk (read-only home) is kept for this session
    q = quality.cached(rec.id) or session.own("quality").get(rec.id, {})
    if not q.get("iwae_nll"):
        status = background.RUNNER.status(_quality_key(rec.id))
        if status["state"] == "done" and status["result"]:
            q = status["result"]  # not in the disk cache: it could not be saved (cache_error says why)
            session.own("quality")[rec.id] = q  # could not be cached on disk
        elif status["state"] in ("queued", "running"):
            _estimate_progress(rec.id)
        else:
            if status["state"] == "failed":
                st.error(f"Could not estimate the quality: {plain(status['error'])}")
            st.button(
                "Estimate log-likelihood and k-NN accuracy (20–60 s on a CPU, in the background)",
                key="quality_go",
                on_click=_start_estimate,
                args=(store, rec.id, ex.model, rec.label),
                help=f"IWAE bound with K={IWAE_K} on {IWAE_N} test images; {KNN_K}-NN on all latent "
                "means. Saved, so it runs once per model.",
            )
    if q.get("cache_error"):
        st.caption(f"⚠️ {q['cache_error']}")
    m = rec.test_metrics
    cols = st.columns(5)
    _metric(cols[0], "test loss", m.get("loss"), "{:.1f}", "negative ELBO per image = reconstruction + KL")
    _metric(cols[1], "reconstruction", m.get("reconstruction_loss"), "{:.1f}")
    _metric(cols[2], "KL", m.get("kl_loss"), "{:.2f}")
    _metric(
        cols[3],
        f"−log p(x) (IWAE, K={q.get('iwae_k', IWAE_K)})",
        q.get("iwae_nll"),
        "{:.1f}",
        "Importance-weighted estimate of the negative log-likelihood in nats per image (lower "
        "is better); never above the test loss on average.",
    )
    _metric(
        cols[4],
        f"{KNN_K}-NN accuracy",
        None if q.get("knn_accuracy") is None else 100 * q["knn_accuracy"],
        "{:.1f}%",
        "Labels of test images predicted from their 5 nearest training images in latent "
        "space (latent means). Chance is about 10%.",
    )
    if q.get("iwae_nll"):
        st.caption(
            f"log-likelihood under the model's likelihood: {q['likelihood']}; on the first "
            f"{q['iwae_n']} test images. k-NN fit on {q['knn_n_train']:,} training means, scored on "
            f"{q['knn_n_test']:,} test means (chance {100 * q['knn_chance']:.0f}%)."
        )
    _compare_models(store, ex, cache.model_stamp)


def _compare_models(store, ex, model_stamp) -> None:
    records = store.list()
    st.markdown(f"**All stored models** ({len(records)})")
    st.markdown(comparison_table(quality.compare(records), ex.record.id))
    st.caption(
        "recon + KL = test loss (the negative ELBO); −log p(x) is the IWAE estimate (≤ test loss); "
        "k-NN acc: test labels from the 5 nearest training means. – = not estimated yet."
    )
    missing = [r for r in records if quality.cached(r.id).get("iwae_nll") is None]
    if missing and st.button(f"Estimate the missing numbers for {len(missing)} model(s)", key="quality_all"):
        bar, failed = st.progress(0.0), []
        for i, r in enumerate(missing):
            bar.progress(i / len(missing), text=f"{plain(r.label)}…")
            try:
                _estimate(store, r.id, ex.model if r.id == ex.record.id else None)
            except (DataError, StoreError, ValueError) as e:
                failed.append(f"{r.id}: {e}")
        bar.progress(1.0, text="done")
        for msg in failed:
            st.error(f"Could not estimate the quality of {plain(msg)}")
        if not failed:
            st.rerun()  # redraw the table with the new numbers

    same = [r for r in records if r.config.dataset == ex.record.config.dataset]
    if not same:
        return
    ids = [r.id for r in same]
    labels = model_labels(same)  # unique: the browser sends back the labels, not the ids
    default = [ex.record.id] + [i for i in ids if i != ex.record.id][: COMPARE_MAX - 1]
    picked = st.multiselect(
        "Reconstructions side by side (same test images)",
        ids,
        default=default,
        format_func=labels.get,
        max_selections=COMPARE_MAX,
        # a new or deleted model gives a new widget, so its default applies again
        key="compare_models_" + hashlib.sha1("|".join(ids).encode()).hexdigest()[:8],
    )
    class_rows = _one_per_class(ex.latents.labels)
    cols = st.columns([1, 5])
    cols[0].caption("original")
    cols[1].container(key="thumbs_quality_original").image(
        [views.to_png(ex.images[r], 3) for r in class_rows],
        width=84,
        output_format="PNG",
        alt=[f"test image #{r}, label {ex.class_name(ex.latents.labels[r])}" for r in class_rows],
    )
    by_id = {r.id: r for r in same}
    for model_id in picked:
        r = by_id[model_id]
        cols = st.columns([1, 5])
        cols[0].caption(
            f"z{r.config.latent_dim} · {r.config.loss} · {r.config.epochs} ep"
            + (f" · {r.config.limit} img" if r.config.limit else "")
            + (f" · β {r.config.kl_weight:g}" if r.config.kl_weight != 1 else "")
        )
        try:
            pngs = _recon_pngs(model_stamp(r), tuple(int(i) for i in class_rows), ex.images, store, r)
        except StoreError as e:
            cols[1].error(plain(e))
            continue
        cols[1].container(key=f"thumbs_quality_{model_id}").image(
            pngs,
            width=84,
            output_format="PNG",
            alt=[f"reconstruction of test image #{i} by {r.label}" for i in class_rows],
        )


TABLE = (
    ("", "current"),
    ("dataset", "dataset"),
    ("latent", "latent_dim"),
    ("loss", "loss"),
    ("β", "kl_weight"),
    ("epochs", "epochs"),
    ("train images", "train_images"),
    ("test loss", "test_loss"),
    ("recon", "reconstruction"),
    ("KL", "kl"),
    ("−log p(x) IWAE", "iwae_nll"),
    ("k-NN acc", "knn_accuracy"),
    ("train time", "train_seconds"),
    ("id", "id"),
)


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
        if key == "kl_weight":
            return f"{v:g}"
        if isinstance(v, str):  # from files; a pipe inside a code span still ends a table cell
            return plain(v).replace("|", "\\|")
        return str(v)

    lines = ["| " + " | ".join(h for h, _ in TABLE) + " |", "|" + "---|" * len(TABLE)]
    for row in rows:
        lines.append("| " + " | ".join(cell(k, row.get(k), row) for _, k in TABLE) + " |")
    return "\n".join(lines)


def _one_per_class(labels) -> list[int]:
    """The first test row of each class present, in class order."""
    labels = np.asarray(labels)
    return [int(np.argmax(labels == c)) for c in np.unique(labels)]
