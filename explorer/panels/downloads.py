"""Downloads: the decoded digit as PNG (under the live digit), and in the sidebar the test set's latent
means as CSV and the model's .keras files (each generated on click). A click on a model file also reruns
the page, so a model deleted from another tab since is named on the page (the file cannot be built).

Widget keys: dl_digit_28, dl_digit_280, dl_csv, dl_zip, dl_encoder, dl_decoder.
"""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from model import export


def digit_download(digit, z) -> None:
    """Under the live digit: the decoded digit at the slider position as PNG (28 px and 280 px)."""
    tag = "_".join(f"{v:+.2f}" for v in np.asarray(z).ravel()[:4]) + ("_…" if np.size(z) > 4 else "")
    c1, c2 = st.columns(2)
    c1.download_button(
        "PNG 28×28",
        export.png_bytes(digit),
        file_name=f"decoded_z{tag}.png",
        mime="image/png",
        on_click="ignore",
        key="dl_digit_28",
        help="The decoded digit at its native size.",
    )
    c2.download_button(
        "PNG 280×280",
        export.png_bytes(digit, scale=10),
        file_name=f"decoded_z{tag}_x10.png",
        mime="image/png",
        on_click="ignore",
        key="dl_digit_280",
        help="Each pixel as a crisp 10×10 block.",
    )


def downloads_sidebar(ex) -> None:
    """Sidebar: the test set's latent means as CSV and the model's files (generated on click)."""
    rec = ex.record
    z_mean, labels = ex.latents.z_mean, ex.latents.labels
    with st.sidebar:
        st.divider()
        st.header("Export")
        st.download_button(
            f"Test latent means (CSV, {len(z_mean):,} rows)",
            lambda: export.latents_csv(z_mean, labels),
            file_name=f"{rec.id}-test-latents.csv",
            mime="text/csv",
            on_click="ignore",
            key="dl_csv",
            help=f"Columns index,label,z0..z{ex.latent_dim - 1}: each test image's posterior mean.",
            width="stretch",
        )
        st.download_button(
            "Model (zip: both .keras files)",
            lambda: export.model_zip(rec),
            file_name=f"{rec.id}.zip",
            mime="application/zip",
            on_click="rerun",  # the rerun tells this tab if its model was deleted meanwhile
            key="dl_zip",
            width="stretch",
            help="encoder.keras, decoder.keras, meta.json and a README on how to load them.",
        )
        for column, part in zip(st.columns(2), ("encoder", "decoder")):
            column.download_button(
                f"{part}.keras",
                functools.partial(export.model_file, rec, part),
                file_name=f"{rec.id}-{part}.keras",
                mime="application/octet-stream",
                on_click="rerun",
                key=f"dl_{part}",
            )
