"""Links that restore a view: the URL's query string holds the model id, z and the pick.

    ?model=<id>&z=0.123,-1.5&pick=42

Hooks (one line each in the page):
  restore_view(store, ex)  main script, after the sliders are synced: on a session's first run, apply the
                           link's model (making it current, as the sidebar's picker does), pick and z;
                           a model that is gone is named and the current model shown instead
  update_url(ex)           end of the explore fragment: write the current view into the URL
  link_panel(ex)           "Link to this view" (copy button), a lazy expander

Widget key: link_open. The link's own flags (_link_done, _link_switch, _link_msg), the pick and the
latent values it applies go through explorer.session (a pick with keep_z, so the sliders keep the
link's z instead of jumping to the pick's posterior mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlparse

import numpy as np
import streamlit as st

from explorer import session
from explorer.panels.common import current_z, lazy_expander
from model.store import StoreError

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
        if "/" in model or "\\" in model or model.startswith(".") or len(model) > 200:
            view.problems.append(f"Expected a model id in the link. Received: model={model[:60]!r}")
        else:
            view.model = model
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


def restore_view(store, ex) -> None:
    if msg := session.pop_link_msg():
        (st.warning if msg[0] == "warning" else st.info)(msg[1])
    if session.link_done():
        return
    params = st.query_params.to_dict()
    if not any(k in params for k in ("model", "z", "pick")):
        session.set_link_done()
        return
    link_model = decode_view(params).model
    if link_model and link_model != ex.record.id and not session.link_switch_tried():
        session.set_link_switch_tried()  # once: never loop if someone else switches the model back
        try:
            store.set_current(link_model)
        except StoreError:  # gone or unreadable
            st.warning(
                f"The link's model `{link_model}` is gone from this machine's store (deleted, or the "
                f"link comes from another machine). Showing the current model **{ex.record.label}** "
                "instead; the link's pick and z are applied if they fit."
            )
        else:
            session.set_link_msg("info", f"Opened the link's model `{link_model}` (now the current model).")
            st.rerun()
    session.set_link_done()
    view = decode_view(params, ex.latent_dim, len(ex.images))
    for p in view.problems:
        st.warning(p)
    if view.pick is not None:
        session.set_pick(view.pick, keep_z=view.z is not None)  # keep the link's z, not the pick's mean
    if view.z is not None:
        session.set_z(view.z, ex.latents.bounds)


def current_params(ex) -> dict[str, str]:
    return encode_view(ex.record.id, current_z(ex), session.pick())


def update_url(ex) -> None:
    if not session.link_done():
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
