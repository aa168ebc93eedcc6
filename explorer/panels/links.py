"""Links that restore a view: the URL's query string holds the model id, z and the pick.

    ?model=<id>&z=0.123,-1.5&pick=42

Hooks (one line each in the page):
  link_model(store)        when a tab chooses its model (its first run, explorer.panels.sidebar): the
                           link's model, for this tab only; one that is not here or cannot be read is named
                           (with why) and the tab explores the default model instead
  restore_view(store, ex)  main script, after the sliders are synced: on a session's first run, apply the
                           link's pick and z
  update_url(ex)           end of the explore fragment: write the current view into the URL
  link_panel(ex)           "Link to this view" (copy button), a lazy expander

Widget key: link_open. The link's own flags are this panel's state (`_own()`); the
pick and the latent values it applies go through explorer.session (a pick with keep_z, so the sliders keep the
link's z instead of jumping to the pick's posterior mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlparse

import numpy as np
import streamlit as st

from explorer import session
from explorer.panels.common import current_z, lazy_expander, plain
from model.errors import ModelNotFoundError, StoreError
from model.store import check_model_id

DIGITS = 3  # z in the URL: 3 decimals (a slider step is 0.05)
MAX_DIM = 512


@dataclass
class View:
    model: str | None = None
    z: np.ndarray | None = None
    pick: int | None = None
    problems: list[str] = field(default_factory=list)


def encode_view(model_id: str, z=None, pick=None) -> dict[str, str]:
    """The query parameters of a view (pure)."""
    out = {"model": str(model_id)}
    if z is not None:
        out["z"] = ",".join(_num(v) for v in np.asarray(z, np.float64).ravel())
    if pick is not None:
        out["pick"] = str(int(pick))
    return out


def _num(v: float) -> str:
    """3 decimals, trailing zeros dropped: 0.5 -> "0.5", -1.25 -> "-1.25", -0.0001 -> "0"."""
    s = f"{round(float(v), DIGITS) + 0.0:.{DIGITS}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _one(params, key):
    v = params.get(key)
    if isinstance(v, (list, tuple)):
        v = v[-1] if v else None
    return None if v is None else str(v).strip()


def decode_view(params, latent_dim: int | None = None, n_images: int | None = None) -> View:
    """Parse query parameters into a View; bad values are dropped with a message naming them (pure)."""
    view = View()
    model = _one(params, "model")
    if model:
        try:
            view.model = check_model_id(model)
        except StoreError as e:
            view.problems.append(f"Expected a model id in the link. {e}")
    z = _one(params, "z")
    if z:
        try:
            parts = z.split(",")
            if len(parts) > MAX_DIM:
                raise ValueError(
                    f"Expected at most {MAX_DIM} latent values in the link. Received: {len(parts)}"
                )
            wide = [float(p) for p in parts]
            if not all(math.isfinite(v) for v in wide):
                raise ValueError  # nan, inf: not numbers a latent value can be
            with np.errstate(over="ignore"):
                vals = np.array(wide, np.float32)
            if not np.all(np.isfinite(vals)):
                raise ValueError(
                    f"Expected latent values within ±{float(np.finfo(np.float32).max):.3g} (32-bit floats) "
                    f"in the link. Received: z={z[:60]!r}"
                )
            if latent_dim is not None and len(vals) != latent_dim:
                view.problems.append(
                    f"Expected {latent_dim} latent values in the link (this model's size). "
                    f"Received: {len(vals)}; the sliders keep their place."
                )
            else:
                view.z = vals
        except ValueError as e:
            said = str(e) if str(e).startswith("Expected") else ""
            view.problems.append(
                said or f"Expected z as comma-separated numbers in the link. Received: z={z[:60]!r}"
            )
    pick = _one(params, "pick")
    if pick:
        try:
            p = int(pick)
            if p < 0 or (n_images is not None and p >= n_images):
                raise ValueError
            view.pick = p
        except ValueError:
            hi = f"{n_images - 1}" if n_images else "N-1"
            view.problems.append(
                f"Expected a test image index in [0, {hi}] in the link. Received: pick={pick[:20]!r}"
            )
    return view


def _own() -> dict:
    """This panel's state: done (a link's view was applied, once per tab), msg (a note to show once)."""
    return session.own("links")


def _set_msg(kind: str, text: str) -> None:
    _own()["msg"] = (kind, text)


def link_model(store) -> str | None:
    """The model a link names (`?model=`), if this store can read it; read when a tab chooses its model
    on its first run (explorer.panels.sidebar). A model that is not here, or cannot be read, is named (with
    why) in a message `restore_view` shows, and None is returned: the tab explores the default model."""
    if _own().get("done"):
        return None
    model_id = decode_view(st.query_params.to_dict()).model  # a bad id: restore_view names it
    if not model_id:
        return None
    instead = "Showing the default model instead; the link's pick and z are applied if they fit."
    try:
        store.record(model_id)
    except ModelNotFoundError:
        _set_msg(
            "warning",
            f"The link's model {plain(model_id)} is not in this server's store (deleted, or the link "
            f"comes from another machine). {instead}",
        )
    except StoreError as e:
        _set_msg("warning", f"The link's model {plain(model_id)} cannot be read: {plain(e)} {instead}")
    else:
        return model_id
    return None


def restore_view(store, ex) -> None:
    """On a session's first run: apply the link's pick and z (its model was chosen by `link_model`)."""
    if msg := _own().pop("msg", None):
        (st.warning if msg[0] == "warning" else st.info)(msg[1])
    if _own().get("done"):
        return
    _own()["done"] = True
    params = st.query_params.to_dict()
    if not any(k in params for k in ("model", "z", "pick")):
        return
    view = decode_view(params, ex.latent_dim, len(ex.images))
    for p in view.problems:
        st.warning(plain(p))
    if view.pick is not None:
        session.set_pick(view.pick, keep_z=view.z is not None)  # keep the link's z, not the pick's mean
    if view.z is not None:
        session.set_z(view.z, ex.latents.bounds)


def current_params(ex) -> dict[str, str]:
    return encode_view(ex.record.id, current_z(ex), session.pick())


def update_url(ex) -> None:
    if not _own().get("done"):
        return  # the link has not been read yet: do not overwrite it
    params = current_params(ex)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def link_panel(ex) -> None:
    box, is_open = lazy_expander("Link to this view", "link_open", ":material/link:")
    if not is_open:
        return
    with box:
        base = st.context.url or ""
        if base and not urlparse(base).path:
            base += "/"
        st.code(f"{base}?{urlencode(current_params(ex))}", language=None, wrap_lines=True)
        st.caption(
            "Copy it with the button at the right of the box. Opening it shows this model, pick and "
            "slider position (the address bar follows you as you explore, too)."
        )
