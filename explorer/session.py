"""Every session-state key of the page, behind typed accessors.

Panels read and write the page's state only through this module, so a panel never writes another
panel's keys by name. Widget keys live where the widget is (Streamlit writes them); they are listed
here so a name is never used twice, and the few that other code sets (the latent values z0..z{d-1},
written by the latent pad, a pick, a link, the user's digit and the attribute vectors) have accessors.

Non-widget state (accessors below):
  pick            test-set row the user picked (int or None); set it to pick from code or tests
  pick_prev       the pick before it (the interpolation's default start)
  _applied_pick   the pick the latent values were last moved to (so a pick moves them once)
  _stamp          the model stamp the latent values belong to (a new model recentres them)
  _pick_error     a bad `pick` from code or a link, shown once by the pick panel
  _scatter_pick   the pick the browser's scatter shows now (the explore panel defers its redraw)
  prior_seed      the seed of the prior samples
  _timings        server-side milliseconds of the last run: decode_ms, panel_ms, page_ms
  selection       test rows of the scatter's box/lasso selection (list or None)
  user_image      a raw picture to process on the next run (bytes or array); code and tests set it
  user_digit      {"image": (28, 28) uint8, "source": str} the user's preprocessed picture, or None
  _user_error     the last picture's error message
  _canvas_sig, _upload_id   what the canvas / uploader last gave, so each input is processed once
  _user_panel_used          the user-digit expander has been used: keep it open
  _quality_uncached         {model id: quality estimate} that could not be cached on disk
  _model          the id of the model this tab explores (None: not chosen yet; the store's current
                  model is only the default a new tab starts on)
  _model_note     (kind, text) about this tab's model, shown once (deleted or damaged since, a training
                  not made the default)
  _model_offer    the id of a model trained from another tab, offered with "Explore it"
  _started_jobs   ids of the training jobs this tab started (it switches to their model when done)
  _delete_note, _confirm_delete, _switch_error, _seen_model   the sidebar's model picker and Delete
  _link_done, _link_msg   a link's view applied once per session
  cmp_rows        test rows ringed in both scatters of the model comparison
  attr_sel_a, attr_sel_b    saved selections for the attribute vectors
  _retrain_notice_<where>, _retrain_active_<key>, _retrain_ended, _retrain_duplicate   the Retrain panel
  _latent_pad     owned by the latent pad component (explorer/components/latent_pad)

Widget keys (owned by the panel that draws the widget):
  explore        z0..z{d-1} (sliders), scatter
  pick           goto
  interpolation  interp_a, interp_b, interp_steps
  manifold       manifold_span, manifold_dx, manifold_dy
  sidebar        model_pick, model_default, model_offer_go, model_offer_no, delete_<id>, delete_yes_<id>,
                 delete_no_<id>
  user digit     user_panel, user_canvas, user_upload, user_to_sliders, user_clear, user_png
  downloads      dl_digit_28, dl_digit_280, dl_csv, dl_zip, dl_encoder, dl_decoder
  quality        quality_go, quality_all, compare_models_<hash>
  projection     proj_method, proj_retry
  analysis tools sel_clear, sel_csv, nn_open, nn_k, nn_pick_<i>, trav_*, attr_*, anim_gif, link_open,
                 cmp_open, cmp_other, cmp_a, cmp_b, cmp_clear
  retrain        retrain_* (see panels/retrain.py)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st


def _ss():
    return st.session_state


def init() -> None:
    """Create the page's keys once per session."""
    ss = _ss()
    for key, value in (
        ("pick", None),
        ("pick_prev", None),
        ("_applied_pick", None),
        ("prior_seed", 0),
        ("_timings", {}),
        ("_stamp", None),
    ):
        if key not in ss:
            ss[key] = value


# ----------------------------------------------------------------------------- latent values z0..z{d-1}


def z_key(i: int) -> str:
    return f"z{i}"


def z_keys(d: int) -> list[str]:
    return [z_key(i) for i in range(d)]


def clip_z(z, bounds) -> np.ndarray:
    """Latent values clipped to the sliders' symmetric range [-bounds[i], bounds[i]]: (d,) float64."""
    b = np.asarray(bounds, np.float64)
    return np.clip(np.asarray(z, np.float64), -b, b)


def z_values(d: int) -> np.ndarray:
    """The current latent values z0..z{d-1} as (d,) float32 (0 where not set yet)."""
    ss = _ss()
    return np.array([float(ss.get(z_key(i), 0.0)) for i in range(d)], np.float32)


def set_z(z, bounds) -> None:
    """Move the latent values (the sliders) to z, clipped to their range. Also a button callback."""
    ss = _ss()
    for i, v in enumerate(clip_z(z, bounds)):
        ss[z_key(i)] = float(v)


def sync_latents(stamp: str, center, bounds, z_means, n_images: int) -> None:
    """Before the sliders are drawn: start a new model at `center`, clip the values, validate `pick` and
    move the values to a new pick's posterior mean (`z_means[pick]`)."""
    ss = _ss()
    d = len(bounds)
    if ss["_stamp"] != stamp:  # a new model: start at the centre of its test set (or at the pick)
        ss["_stamp"] = stamp
        ss["_applied_pick"] = None
        set_z(center, bounds)
    set_z(z_values(d), bounds)
    pick_ = ss.get("pick")
    if pick_ is not None and not (isinstance(pick_, (int, np.integer)) and 0 <= pick_ < n_images):
        ss["_pick_error"] = f"Expected a test image index in [0, {n_images - 1}]. Received: pick={pick_!r}"
        ss["pick"] = pick_ = None
    if pick_ != ss["_applied_pick"]:
        if ss["_applied_pick"] is not None and pick_ is not None:
            ss["pick_prev"] = ss["_applied_pick"]
        ss["_applied_pick"] = pick_
        if pick_ is not None:  # move the sliders to the pick's posterior mean
            set_z(z_means[pick_], bounds)


# ----------------------------------------------------------------------------- the pick


def pick() -> int | None:
    return _ss().get("pick")


def pick_prev() -> int | None:
    return _ss().get("pick_prev")


def set_pick(row: int | None, *, keep_z: bool = False) -> None:
    """Make test row `row` the pick (also a button callback). keep_z: the latent values stay where they
    are instead of jumping to the pick's posterior mean (a link that carries both)."""
    ss = _ss()
    ss["pick"] = None if row is None else int(row)
    if keep_z:
        ss["_applied_pick"] = ss["pick"]


def pop_pick_error() -> str | None:
    return _ss().pop("_pick_error", None)


def scatter_pick(default: int | None) -> int | None:
    return _ss().get("_scatter_pick", default)


def set_scatter_pick(row: int | None) -> None:
    _ss()["_scatter_pick"] = row


# ----------------------------------------------------------------------------- prior, timings


def prior_seed() -> int:
    return int(_ss()["prior_seed"])


def next_prior_seed() -> None:
    _ss()["prior_seed"] += 1


def timings() -> dict[str, float]:
    return dict(_ss().get("_timings", {}))


def record_timings(**ms: float) -> None:
    ss = _ss()
    ss["_timings"] = {**ss.get("_timings", {}), **ms}


# ----------------------------------------------------------------------------- selection


def selection_rows() -> list[int]:
    return list(_ss().get("selection") or [])


def set_selection(rows) -> None:
    """Store a box/lasso selection (an empty one, or None, clears it). Also a button callback."""
    _ss()["selection"] = list(rows) if rows else None


def clear_selection() -> None:
    set_selection(None)


def saved_selection(which: str) -> list[int]:
    return list(_ss().get(f"attr_sel_{which}") or [])


def has_saved_selection(which: str) -> bool:
    return bool(_ss().get(f"attr_sel_{which}"))


def save_selection(which: str) -> None:
    """Button callback: keep the current selection as group `which` ("a" or "b")."""
    _ss()[f"attr_sel_{which}"] = selection_rows() or None


# ----------------------------------------------------------------------------- the user's digit


def user_digit() -> dict | None:
    return _ss().get("user_digit")


def init_user_digit() -> None:
    _ss().setdefault("user_digit", None)


def set_user_digit(image: np.ndarray, source: str) -> None:
    ss = _ss()
    ss["user_digit"] = {"image": image, "source": source}
    ss.pop("_user_error", None)


def clear_user_digit() -> None:
    ss = _ss()
    ss["user_digit"] = None
    ss.pop("_user_error", None)


def user_error() -> str | None:
    return _ss().get("_user_error")


def set_user_error(message: str) -> None:
    _ss()["_user_error"] = message


def pop_user_image() -> Any:
    """The raw picture set from code or tests (consumed once), or None."""
    return _ss().pop("user_image", None)


def has_user_image() -> bool:
    return _ss().get("user_image") is not None


def user_panel_used() -> bool:
    return bool(_ss().get("_user_panel_used", False))


def mark_user_panel_used() -> None:
    _ss()["_user_panel_used"] = True


def canvas_sig() -> str | None:
    return _ss().get("_canvas_sig")


def set_canvas_sig(sig: str) -> None:
    _ss()["_canvas_sig"] = sig


def upload_id() -> str | None:
    return _ss().get("_upload_id")


def set_upload_id(file_id: str | None) -> None:
    _ss()["_upload_id"] = file_id


# ----------------------------------------------------------------------------- quality


def quality_uncached(model_id: str) -> dict:
    return _ss().get("_quality_uncached", {}).get(model_id, {})


def keep_quality_uncached(model_id: str, q: dict) -> None:
    _ss().setdefault("_quality_uncached", {})[model_id] = q


# ----------------------------------------------------------------------------- sidebar


def pop_delete_note() -> tuple[str, str] | None:
    return _ss().pop("_delete_note", None)


def set_delete_note(kind: str, text: str) -> None:
    _ss()["_delete_note"] = (kind, text)


def confirm_delete() -> str | None:
    return _ss().get("_confirm_delete")


def ask_delete(model_id: str | None) -> None:
    """Button callback: ask to confirm deleting `model_id` (None: forget the question)."""
    if model_id is None:
        _ss().pop("_confirm_delete", None)
    else:
        _ss()["_confirm_delete"] = model_id


def pop_switch_error() -> str | None:
    return _ss().pop("_switch_error", None)


def set_switch_error(message: str) -> None:
    _ss()["_switch_error"] = message


def follow_tab_model(widget_key: str, model_id: str | None, ids: list[str]) -> None:
    """Make the model picker's widget value follow this tab's model when code changed it (a link, a
    finished training this tab started, "Explore it", a delete)."""
    ss = _ss()
    if ss.get("_seen_model") != model_id or ss.get(widget_key) not in ids:
        ss["_seen_model"] = model_id
        ss[widget_key] = model_id


# ----------------------------------------------------------------------------- this tab's model


def tab_model() -> str | None:
    """The id of the model this tab explores (None until the first run chose one)."""
    return _ss().get("_model")


def set_tab_model(model_id: str | None) -> None:
    """Explore `model_id` in this tab only (also a button callback)."""
    ss = _ss()
    ss["_model"] = model_id
    if ss.get("_model_offer") == model_id:
        ss.pop("_model_offer", None)


def set_model_note(kind: str, text: str) -> None:
    _ss()["_model_note"] = (kind, text)


def pop_model_note() -> tuple[str, str] | None:
    return _ss().pop("_model_note", None)


def model_offer() -> str | None:
    return _ss().get("_model_offer")


def set_model_offer(model_id: str | None) -> None:
    """Offer a model trained elsewhere ("Explore it"); None dismisses the offer (a button callback)."""
    _ss()["_model_offer"] = model_id


def add_started_job(job_id: str) -> None:
    ss = _ss()
    ss["_started_jobs"] = [*ss.get("_started_jobs", []), job_id]


def started_job(job_id: str) -> bool:
    """Whether this tab started the training job `job_id`."""
    return job_id in _ss().get("_started_jobs", [])


def widget_value(key: str) -> Any:
    """The value (or event) of the widget with this key, read in its callback."""
    return _ss().get(key)


# ----------------------------------------------------------------------------- links


def link_done() -> bool:
    return bool(_ss().get("_link_done"))


def set_link_done() -> None:
    _ss()["_link_done"] = True


def pop_link_msg() -> tuple[str, str] | None:
    return _ss().pop("_link_msg", None)


def set_link_msg(kind: str, text: str) -> None:
    _ss()["_link_msg"] = (kind, text)


# ----------------------------------------------------------------------------- model comparison


def cmp_rows() -> list[int] | None:
    return _ss().get("cmp_rows")


def set_cmp_rows(rows) -> None:
    _ss()["cmp_rows"] = list(rows)


# ----------------------------------------------------------------------------- retrain


def set_retrain_notice(where: str, notice: tuple[str, str]) -> None:
    _ss()[f"_retrain_notice_{where}"] = notice


def pop_retrain_notice(where: str) -> tuple[str, str] | None:
    return _ss().pop(f"_retrain_notice_{where}", None)


def retrain_active(key: str) -> bool | None:
    return _ss().get(f"_retrain_active_{key}")


def set_retrain_active(key: str, active: bool) -> None:
    _ss()[f"_retrain_active_{key}"] = active


def set_retrain_ended(job_id: str) -> None:
    _ss()["_retrain_ended"] = job_id


def pop_retrain_ended() -> str | None:
    return _ss().pop("_retrain_ended", None)


def retrain_duplicate():
    return _ss().get("_retrain_duplicate")


def set_retrain_duplicate(value) -> None:
    _ss()["_retrain_duplicate"] = value


def clear_retrain_duplicate() -> None:
    _ss().pop("_retrain_duplicate", None)
