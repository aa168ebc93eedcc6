"""The latent explorer page.

Layout: a sidebar (model picker, config, quality, Retrain) and a main area with
  1. the explore panel, one `st.fragment`: latent sliders + live decoded digit, the clickable test-set
     scatter, the picked image and the interpolation row. A slider move or a click reruns only this
     fragment, never the manifold or the sidebar;
  2. the 30x30 manifold (cached per model and span);
  3. "Sample from prior".

Session state (created once in `_init_state`):
  pick        test-set row the user picked (int or None); set it to pick from code or tests
  pick_prev   the pick before it (the interpolation's default start)
  z0..z{d-1}  the latent values (the latent pad writes them on release; without it, the sliders')
  prior_seed  the seed of the prior samples
  _timings    server-side milliseconds of the last explore-panel run (decode_ms, panel_ms)
"""
from __future__ import annotations

import time

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from explorer import extras, retrain, state, views
from explorer.components import latent_pad
from explorer.panels import compare, links, projection, selection as sel_panel, tools  # analysis tools (issue 14)
from model import serving
from model.data import DataError
from model.store import StoreError

MANIFOLD_N = 30
PRIOR_N = 10
DIGIT_SCALE = 10  # 28 px -> 280 px, nearest neighbour
SMALL_DIGIT_SCALE = 5  # the server's copy beside the live map when the latent pad shows the big one
MAP_SIZE = 200  # the live map beside the digit (below it when the column is narrow)
THUMB_SCALE = 3


def main() -> None:
    st.set_page_config(page_title="Latent explorer", page_icon="🔢", layout="wide")
    t0 = time.perf_counter()
    _init_state()
    try:
        store = state.get_store()
    except OSError as e:
        st.error(f"Cannot use the latent explorer's home directory: {e}. "
                 "Fix: set LATENT_EXPLORER_HOME to a writable directory and restart.")
        return
    record = _sidebar(store)
    st.title("Latent explorer")
    if record is None:
        for msg in state.broken_models(store):
            st.error(f"Unreadable model: {msg}")
        retrain.first_run(store)
        return
    try:
        ex = state.explorer(store, record)
    except (StoreError, DataError) as e:
        _load_error(store, record, e)
        return
    st.caption(f"Exploring **{record.label}** — {len(ex.images):,} test images, "
               f"{ex.latent_dim}-D latent space.")
    if record.extra.get("bundled"):
        c = record.config
        st.caption(f"A bundled model trained with the seed's settings ({c.epochs} epochs, batch {c.batch_size}, "
                   f"{c.loss.upper()}, RMSprop, seed {c.seed}), shipped with the app so the first start needs "
                   "no training; retrain from the sidebar.")
    _sync_sliders(ex)
    links.restore_view(store, ex)  # analysis helper: a link's model, pick and z (first run only)
    ex = projection.projection_panel(ex)  # analysis helper: PCA or t-SNE scatter above 2-D
    extras.export_sidebar(ex)  # features helper: CSV / .keras downloads
    extras.user_digit_panel(ex)  # features helper: draw or upload your own digit
    explore_panel(ex)
    st.divider()
    _manifold_section(ex)
    st.divider()
    _prior_section(ex)
    st.divider()
    extras.quality_section(store, ex)  # features helper: IWAE, k-NN, model comparison
    compare.compare_panel(store, ex)  # analysis helper: two models' scatters side by side, linked
    st.session_state["_timings"]["page_ms"] = 1000 * (time.perf_counter() - t0)
    serving.freeze_gc(ex.stamp)  # after the first full render: see its docstring


def _init_state() -> None:
    ss = st.session_state
    for key, value in (("pick", None), ("pick_prev", None), ("_applied_pick", None),
                       ("prior_seed", 0), ("_timings", {}), ("_stamp", None)):
        if key not in ss:
            ss[key] = value


# ----------------------------------------------------------------------------- sidebar

def _sidebar(store):
    """Model picker, config, quality and the Retrain panel. Returns the current record (or None).

    Every model the store cannot read is named here with the reason and a Delete button (a current
    model that became unreadable first: the page then explores the newest readable one)."""
    with st.sidebar:
        st.header("Model")
        if note := st.session_state.pop("_delete_note", None):
            (st.error if note[0] == "error" else st.success)(note[1])
        records = store.list()
        current = store.current()
        broken = store.broken()
        current_id = store.current_id()
        if current_id in broken:
            instead = f" Exploring **{current.id}** instead." if current is not None else ""
            st.error(f"The current model **{current_id}** cannot be read.{instead}\n\n{broken[current_id]}")
            _delete_button(store, current_id, broken=True)
        for model_id, why in broken.items():
            if model_id != current_id:
                st.warning(f"Unreadable model **{model_id}**: {why}")
                _delete_button(store, model_id, broken=True)
        if records:
            ids = [r.id for r in records]
            labels = {r.id: r.label for r in records}
            current_id = current.id if current is not None and current.id in labels else None
            # One stable widget whose value follows switches made elsewhere (another session, a finished
            # retrain). Only a user's pick calls _switch_model; a widget keyed by the current model was
            # remounted on every switch and the browser could send its stale pick back, reverting a retrain.
            key = "model_pick"
            if st.session_state.get("_seen_current") != current_id or st.session_state.get(key) not in ids:
                st.session_state["_seen_current"] = current_id
                st.session_state[key] = current_id
            st.selectbox("Model to explore", ids, index=None, key=key, format_func=labels.get,
                         placeholder="Pick a model", on_change=_switch_model, args=(store, key),
                         help="Every saved model, newest first; the one picked here becomes the current "
                              "model for every open session.")
        if current is not None:
            _model_card(current)
            _delete_button(store, current.id, broken=False)
        else:
            st.caption("No model yet.")
        _store_size(store, len(records), len(broken))
        st.divider()
        st.header("Retrain")
        retrain.retrain_panel(store)
    return current


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def _store_size(store, n_models: int, n_broken: int) -> None:
    """The store's size on disk (models, plus the job directories kept for their logs)."""
    from model.store import dir_size

    size = store.size_bytes()
    jobs_size = dir_size(store.root.parent / "jobs")
    unreadable = f" + {n_broken} unreadable" if n_broken else ""
    st.caption(f"Store: {n_models} model{'' if n_models == 1 else 's'}{unreadable}, "
               f"{_fmt_bytes(size)} on disk (training job logs: {_fmt_bytes(jobs_size)}) in `{store.root}`.")


def _delete_button(store, model_id: str, *, broken: bool) -> None:
    """"Delete…", then a confirmation ("Yes, delete" / "Keep it") before the model goes."""
    ss = st.session_state
    if ss.get("_confirm_delete") == model_id:
        st.warning(f"Delete **{model_id}** for good? Other models are untouched.")
        c1, c2 = st.columns(2)
        c1.button("Yes, delete", key=f"delete_yes_{model_id}", type="primary", on_click=_delete_model,
                  args=(store, model_id))
        c2.button("Keep it", key=f"delete_no_{model_id}", on_click=ss.pop, args=("_confirm_delete", None))
    else:
        st.button("Delete this unreadable model…" if broken else "Delete this model…",
                  key=f"delete_{model_id}", icon=":material/delete:",
                  on_click=ss.__setitem__, args=("_confirm_delete", model_id),
                  help=f"Removes {store.root / model_id} (asks first).")


def _delete_model(store, model_id: str) -> None:
    st.session_state.pop("_confirm_delete", None)
    was_current = store.current_id() == model_id
    try:
        store.delete(model_id)
    except StoreError as e:
        st.session_state["_delete_note"] = ("error", str(e))
        return
    if was_current:  # make the fallback explicit: the newest remaining model becomes current
        remaining = store.list()
        if remaining:
            try:
                store.set_current(remaining[0].id)
            except StoreError:
                pass  # current() falls back to the newest readable model anyway
    st.session_state["_delete_note"] = ("success", f"Deleted the model {model_id}.")


def _switch_model(store, key: str) -> None:
    model_id = st.session_state.get(key)
    if model_id:
        try:
            store.set_current(model_id)
        except StoreError as e:
            st.session_state["_switch_error"] = str(e)


def _model_card(record) -> None:
    if err := st.session_state.pop("_switch_error", None):
        st.error(err)
    c = record.config
    m = record.test_metrics
    st.subheader("Quality (test set)")
    if m:
        cells = [f"{m[k]:.2f}" if isinstance(m.get(k), (int, float)) else "–"
                 for k in ("loss", "reconstruction_loss", "kl_loss")]
        st.markdown("| test loss | reconstruction | KL |\n|---:|---:|---:|\n| " + " | ".join(cells) + " |")
        st.caption("Per image: reconstruction = 784 × mean pixel "
                   f"{c.loss.upper()}, KL = KL(q(z|x) ‖ N(0, I)); loss = recon + KL.")
    else:
        st.caption("No test metrics saved with this model.")
    st.subheader("Config")
    rows = {"dataset": c.dataset, "latent size": c.latent_dim, "loss": c.loss, "epochs": c.epochs,
            "batch size": c.batch_size, "learning rate": c.learning_rate,
            "training images": c.limit or "all", "precision": c.precision, "seed": c.seed}
    if record.train_seconds:
        rows["training time"] = f"{record.train_seconds:.0f} s"
    st.markdown("\n".join(f"- {k}: `{v}`" for k, v in rows.items()))
    st.caption(f"id `{record.id}`")


def _load_error(store, record, e: Exception) -> None:
    what = "model" if isinstance(e, StoreError) else "dataset"
    st.error(f"Cannot open the {what} of **{record.id}**.\n\n{e}")
    others = [r for r in store.list() if r.id != record.id]
    if others:
        st.info("Pick another model in the sidebar, or retrain one (sidebar → Retrain).")
    else:
        st.info("No other model to switch to: retrain one (sidebar → Retrain).")
    if isinstance(e, StoreError):
        st.button(f"Delete the broken model {record.id}", on_click=store.delete, args=(record.id,),
                  help=f"Removes {record.path}; other models are untouched.")


# ----------------------------------------------------------------------------- explore panel

def _sync_sliders(ex: state.Explorer) -> None:
    """Create, clip or move the slider values in session state before the sliders are drawn."""
    ss = st.session_state
    d, bounds = ex.latent_dim, ex.arrays["bounds"]
    if ss["_stamp"] != ex.stamp:  # a new model: start at the centre of its test set (or at the pick)
        ss["_stamp"] = ex.stamp
        ss["_applied_pick"] = None
        for i in range(d):
            ss[f"z{i}"] = float(ex.arrays["center"][i])
    for i in range(d):
        ss[f"z{i}"] = float(np.clip(ss.get(f"z{i}", 0.0), -bounds[i], bounds[i]))
    pick = ss.get("pick")
    if pick is not None and not (isinstance(pick, (int, np.integer)) and 0 <= pick < len(ex.images)):
        ss["_pick_error"] = (f"Expected a test image index in [0, {len(ex.images) - 1}]. "
                             f"Received: pick={pick!r}")
        ss["pick"] = pick = None
    if pick != ss["_applied_pick"]:
        if ss["_applied_pick"] is not None and pick is not None:
            ss["pick_prev"] = ss["_applied_pick"]
        ss["_applied_pick"] = pick
        if pick is not None:  # move the sliders to the pick's posterior mean
            z = ex.arrays["z_mean"][pick]
            for i in range(d):
                ss[f"z{i}"] = float(np.clip(z[i], -bounds[i], bounds[i]))


def _on_select() -> None:
    """Plotly selection callback: copy the clicked row into `pick` (the chart forgets it on redraw)."""
    event = st.session_state.get("scatter")
    if sel_panel.on_scatter_event(event):  # analysis helper: a box/lasso selection, not a click
        return
    row = views.picked_row(event["selection"]["points"]) if event else None
    if row is not None:
        st.session_state["pick"] = row


def _goto() -> None:
    value = st.session_state.get("goto")
    if value is not None:
        st.session_state["pick"] = int(value)


def _random_pick(n: int) -> None:
    st.session_state["pick"] = int(np.random.default_rng().integers(n))


@st.fragment
def explore_panel(ex: state.Explorer) -> None:
    """Sliders, live digit, scatter, pick and interpolation: reruns alone on any of its widgets."""
    t0 = time.perf_counter()
    _sync_sliders(ex)  # a click reruns only this fragment: apply the new pick here too
    ss = st.session_state
    d, bounds = ex.latent_dim, ex.arrays["bounds"]

    left, right = st.columns([1, 1], gap="medium")
    with left:
        st.subheader("Move through the latent space")
        # In-browser decoding while dragging; it writes z0..z{d-1} on release. Without it: server sliders.
        pad_note = latent_pad.latent_pad(
            [f"z{i}" for i in range(d)], bounds, model_key=ex.stamp, model=ex.model, extent=ex.map_extent,
            background=state.map_base(ex.stamp, ex.arrays["xy"], ex.arrays["labels"], ex.map_extent, 280)
            if d == 2 else None)
        if pad_note is not None:
            st.caption(f"{pad_note} Using the server's sliders: the digit updates when you release one.")
            box = st.container(height=360) if d > 6 else st.container()
            with box:
                for i in range(d):
                    st.slider(f"z[{i}]", -float(bounds[i]), float(bounds[i]), step=0.05, key=f"z{i}",
                              format="%.2f")
        z = np.array([ss[f"z{i}"] for i in range(d)], np.float32)
        t = time.perf_counter()
        digit = ex.model.decode(z)[0]  # (28, 28): one compiled forward pass, no predict()
        decode_ms = 1000 * (time.perf_counter() - t)
        row = st.container(horizontal=True, gap="small")  # wraps: the map goes below on narrow screens
        scale = DIGIT_SCALE if pad_note else SMALL_DIGIT_SCALE  # the pad shows the big live digit
        row.image(views.to_png(digit, scale), width=28 * scale, output_format="PNG",
                  caption="decoder(z) for the slider values")
        map_box = row.empty()  # drawn below, once the interpolation path is known
        st.caption(f"decoded in {decode_ms:.1f} ms on the server · z = `{_fmt(z, 3)}`")
        extras.digit_download(digit, z)  # features helper: PNG download
    with right:
        st.subheader("Test set in latent space")
        scatter_box = st.container()
        st.caption("Hover a point for its index and label; click it to pick it (the sliders jump "
                   "to its posterior mean). Drag to zoom, double-click to reset."
                   + ("" if d == 2 else f" Axes: PCA of the {d}-D means."))

    pick_panel(ex)
    path = interpolation_panel(ex, z)
    tools.explore_tools(ex, z, path)  # analysis helper: GIF, selection, neighbours, traversals

    def overlay(row):
        if row is None or not 0 <= row < len(ex.images):
            return None, []
        xy, cov = ex.arrays["xy"][row], ex.projected_cov(row)
        return xy, [views.sigma_ellipse(xy, cov, k) for k in (1, 2)]

    pick = ss["pick"]
    picked, ellipses = overlay(pick)
    # A new pick changes the big scatter (its ring and ellipses), and the browser then spends a few
    # hundred ms redrawing 10k WebGL points. In a fragment run (a click, a pick button) draw the scatter
    # as it was, so the pick's images reach the browser and paint first, then rerun the fragment at
    # once to move the ring. Full-app runs draw everything in one go (a fragment rerun is not allowed).
    ctx = get_script_run_ctx()
    shown = ss.get("_scatter_pick", pick)  # the pick the browser's scatter shows now
    defer = bool(ctx and ctx.fragment_ids_this_run) and pick != shown
    ss["_scatter_pick"] = pick  # after this run (and its rerun, if deferred)
    scatter_xy, scatter_ellipses = overlay(shown if defer else pick)
    # The live map follows the sliders; the big scatter does not: Streamlit rebuilds a chart whose
    # figure changed, and rebuilding 10k WebGL points on every slider move costs the browser 0.1-3 s
    # (and the user's zoom). Its figure only changes with the model and the pick.
    extent = ex.map_extent
    base = state.map_base(ex.stamp, ex.arrays["xy"], ex.arrays["labels"], extent, MAP_SIZE)
    map_box.image(views.map_png(base, extent, current=ex.project(z), picked=picked, ellipses=ellipses[:1],
                                path=None if path is None else ex.project(path)),
                  width=MAP_SIZE, output_format="PNG",
                  caption="the sliders (red ×) on the test set" + ("" if d == 2 else " (PCA view)"))
    fig = views.latent_scatter(ex.arrays["xy"], ex.arrays["labels"], ex.class_names,
                               picked=scatter_xy, ellipses=scatter_ellipses, axis_titles=ex.axis_titles)
    fig = extras.mark_user_digit(fig, ex)  # features helper: your digit + its posterior ellipses
    fig = sel_panel.mark_selection(fig, ex)  # analysis helper: rings around a box/lasso selection
    with scatter_box:
        st.plotly_chart(fig, key="scatter", on_select=_on_select, selection_mode=("points", "box", "lasso"),
                        config={"displaylogo": False, "scrollZoom": False})
    ss["_timings"] = {**ss["_timings"], "decode_ms": decode_ms,
                      "panel_ms": 1000 * (time.perf_counter() - t0)}
    links.update_url(ex)  # analysis helper: the URL follows the view
    if defer:
        st.rerun(scope="fragment")


def pick_panel(ex: state.Explorer) -> None:
    ss = st.session_state
    st.subheader("Picked test image")
    if err := ss.pop("_pick_error", None):
        st.error(err)
    n = len(ex.images)
    c1, c2, _ = st.columns([1, 1, 3])
    c1.number_input("Go to test image #", min_value=0, max_value=n - 1, value=None, step=1,
                    key="goto", on_change=_goto, placeholder=f"0 … {n - 1}")
    c2.button("Random test image", on_click=_random_pick, args=(n,), width="stretch")
    pick = ss["pick"]
    if pick is None:
        st.info("Click a point in the scatter (or type a test image number) to see the image, its "
                "reconstruction and its posterior.")
        return
    original, recon = state.pick_pngs(ex.stamp, ex.model, ex.images, int(pick))
    label = int(ex.arrays["labels"][pick])
    z_mean = ex.arrays["z_mean"][pick]
    sigma = np.exp(0.5 * ex.arrays["z_log_var"][pick])
    cols = st.columns([1, 1, 3])
    cols[0].image(original, caption=f"test #{pick} (original)", width=28 * 6, output_format="PNG")
    cols[1].image(recon, caption="reconstruction", width=28 * 6, output_format="PNG")
    with cols[2]:
        st.markdown(f"**Label:** {ex.class_names[label] if label < len(ex.class_names) else label}  \n"
                    f"**Index:** {pick}")
        st.markdown(f"**z_mean:** `{_fmt(z_mean)}`  \n**σ (posterior std):** `{_fmt(sigma)}`")
        st.caption("The sliders were moved to z_mean; the ellipses on the scatter are the "
                   "posterior's 1σ and 2σ contours.")


def interpolation_panel(ex: state.Explorer, z_sliders: np.ndarray) -> np.ndarray | None:
    """A row of digits decoded along the straight line between two points. Returns the path (K, d)."""
    ss = st.session_state
    st.subheader("Interpolation")
    zm, labels = ex.arrays["z_mean"], ex.arrays["labels"]
    pick, prev = ss["pick"], ss["pick_prev"]

    def test_point(row):
        if row is None:
            return None, None
        label = int(labels[row])
        name = ex.class_names[label] if label < len(ex.class_names) else str(label)
        return f"test #{row} (label {name})", zm[row]

    # Option labels stay fixed (the browser keeps a keyed selectbox's old labels); the caption names
    # the actual endpoints.
    ends = {"prev": ("previous pick", *test_point(prev)), "pick": ("current pick", *test_point(pick)),
            "sliders": ("slider position", "the sliders", z_sliders),
            "origin": ("origin (z = 0)", "z = 0", np.zeros(ex.latent_dim, np.float32))}
    fallback = {"prev": "origin", "pick": "sliders", "sliders": "sliders", "origin": "origin"}
    c1, c2, c3 = st.columns([2, 2, 2])
    a = c1.selectbox("From", list(ends), index=0, key="interp_a", format_func=lambda k: ends[k][0])
    b = c2.selectbox("To", list(ends), index=1, key="interp_b", format_func=lambda k: ends[k][0])
    steps = c3.slider("Steps", 3, 16, 10, key="interp_steps")
    used = [k if ends[k][2] is not None else fallback[k] for k in (a, b)]
    path, images = ex.model.interpolate(ends[used[0]][2], ends[used[1]][2], steps)  # one batched decode
    st.image([views.to_png(im, THUMB_SCALE) for im in images], width=28 * THUMB_SCALE, output_format="PNG",
             caption=[f"t={t:.2f}" for t in np.linspace(0, 1, steps)])
    note = f"From {ends[used[0]][1]} to {ends[used[1]][1]} (the grey line on the map)."
    missing = [ends[k][0] for k in (a, b) if ends[k][2] is None]
    if missing:
        note += f" No {' or '.join(missing)} yet: click points in the scatter to interpolate between them."
    st.caption(note)
    return path


def _fmt(v, digits: int = 2) -> str:
    return "[" + ", ".join(f"{x:+.{digits}f}" for x in np.asarray(v).ravel()) + "]"


# ----------------------------------------------------------------------------- manifold and prior

def _manifold_section(ex: state.Explorer) -> None:
    d = ex.latent_dim
    st.subheader(f"Manifold: a {MANIFOLD_N}×{MANIFOLD_N} grid decoded over the latent plane")
    cols = st.columns([2, 1, 1] if d > 2 else [2, 2])
    default = float(min(ex.arrays["bounds"][:2]))
    span = cols[0].slider("Span (the grid covers −span … +span)", 0.5, 10.0, default, step=0.5,
                          key="manifold_span")
    dims = (0, 1)
    if d > 2:
        a = cols[1].selectbox("Horizontal axis", range(d), index=0, key="manifold_dx",
                              format_func=lambda i: f"z[{i}]")
        b = cols[2].selectbox("Vertical axis", range(d), index=1, key="manifold_dy",
                              format_func=lambda i: f"z[{i}]")
        if a == b:
            st.warning("Pick two different dimensions; showing z[0] × z[1].")
        else:
            dims = (a, b)
    st.caption(f"Left → right: z[{dims[0]}] from −{span:g} to +{span:g}. "
               f"Top → bottom: z[{dims[1]}] from +{span:g} to −{span:g}."
               + (" The other dimensions are held at 0." if d > 2 else "")
               + f" All {MANIFOLD_N * MANIFOLD_N} digits come from one batched decode, cached per model.")
    png = state.manifold_png(ex.stamp, ex.model, MANIFOLD_N, float(span), dims)
    st.image(png, width=MANIFOLD_N * 28, output_format="PNG")


def _next_prior_seed() -> None:
    st.session_state["prior_seed"] += 1


def _prior_section(ex: state.Explorer) -> None:
    st.subheader("Sample from prior")
    c1, c2 = st.columns([1, 4])
    c1.button("Sample from prior", on_click=_next_prior_seed, type="primary",
              help="Draw new z ~ N(0, I) and decode them.")
    seed = st.session_state["prior_seed"]
    c2.caption(f"{PRIOR_N} draws z ~ N(0, I), decoded (seed {seed}).")
    z, pngs = state.prior_samples(ex.stamp, ex.model, PRIOR_N, seed)
    captions = [_fmt(v) if ex.latent_dim <= 2 else f"sample {i + 1}" for i, v in enumerate(z)]
    st.image(pngs, width=28 * THUMB_SCALE, caption=captions, output_format="PNG")
