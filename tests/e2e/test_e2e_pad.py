"""The latent pad in a real Chromium: the digit follows the pointer with no server round trip until release.

The page's decoder (TensorFlow.js in the component's frame) is checked against the server's model decoding
in this process; every websocket frame the page sends is counted, so a drag that talks to the server fails.
"""

from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest
from browser_harness import (
    StreamlitServer,
    console_log,
    dump_debug,
    is_auto_rerun,
    isolated_point,
    new_page,
    open_app,
    runs_done,
    scatter_points,
    server_z,
    wait_idle,
    wait_runs,
    watch_console,
)

from model.latent import LatentModel

PAD_FRAME = "latent_pad/index.html"
EXACT = 1e-3  # max abs pixel difference between the browser's decoder and LatentModel.decode


def load_latent(home):
    from model.store import ModelStore

    store = ModelStore(home / "models")
    return LatentModel.from_record(store.record(store.current().id))


@pytest.fixture(scope="module")
def latent2(server):
    return load_latent(server.home)


@pytest.fixture(scope="module")
def server8(e2e_home_template, tmp_path_factory):
    """A server exploring a tiny 8-D model (1 epoch on 500 images)."""
    from model import paths
    from model.store import ModelStore
    from model.train import train
    from model.vae import VAEConfig

    home = tmp_path_factory.mktemp("e2e_pad8") / "home"
    shutil.copytree(e2e_home_template, home)
    with paths.using_home(home):
        store = ModelStore()
        _, record, _ = train(VAEConfig(latent_dim=8, epochs=1, limit=500), store=store, verbose=0)
        store.set_current(record.id)  # its loss is far above the 2-D default's: it is only offered
    srv = StreamlitServer(home, log_path=home.parent / "pad8.streamlit.log").start(timeout=120)
    yield srv
    srv.stop()


class Page:
    """A fresh session with its outgoing websocket frames counted (`sent`: all but the timer reruns of the
    retrain panel's polling fragment, which the page sends whatever the user does)."""

    def __init__(self, browser, srv, init_scripts=(), page=None):
        self.page = page or new_page(browser, init_scripts=init_scripts)
        self.sent = []
        self.page.on(
            "websocket",
            lambda ws: ws.on(
                "framesent", lambda payload: None if is_auto_rerun(payload) else self.sent.append(payload)
            ),
        )
        self.srv = srv

    def settle_ws(self):
        """Let playwright deliver pending websocket events (they arrive only while it waits)."""
        self.page.wait_for_timeout(300)

    def open(self):
        open_app(self.page, self.srv.url)
        return self

    def frame(self):
        for f in self.page.frames:
            if PAD_FRAME in f.url:
                return f
        return None

    def wait_pad(self):
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('iframe')].some(f => { try {"
            " return f.contentWindow.latentPad && f.contentWindow.latentPad.ready;"
            " } catch (e) { return false; } })"
        )
        wait_idle(self.page)
        return self.frame()

    def digit(self):
        return self.frame().evaluate("() => document.getElementById('digit').toDataURL()")

    def pad_z(self):
        return np.array(self.frame().evaluate("() => window.latentPad.z"), np.float32)

    def box(self, selector):
        return self.page.frame_locator(f'iframe[src*="{PAD_FRAME}"]').locator(selector).bounding_box()

    def settle(self):
        """Wait two animation frames in the pad (anything the last input asked for is painted)."""
        self.frame().evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def wait_digit_change(self, before):
        self.frame().wait_for_function(
            "(b) => document.getElementById('digit').toDataURL() !== b", arg=before
        )
        return self.digit()


@pytest.fixture
def pad_page(request, browser, server):
    p = Page(browser, server).open()
    yield p
    if any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call")):
        dump_debug(p.page, request.node.name, server)
    p.page.context.close()


def decoded_z(page) -> np.ndarray:
    """The z of the server's last run (the address bar follows every run)."""
    return server_z(page)


def no_exceptions(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, f"the page shows a traceback: {errors.first.inner_text()[:500]}"


def clean_console(page, what: str) -> None:
    """No console error, uncaught exception, failed request or HTTP error since the page was opened."""
    console_log(page).assert_clean(page, what=what)


def check_exact(frame, latent, seed):
    d = latent.latent_dim
    z = np.random.default_rng(seed).normal(size=(6, d)).astype(np.float32) * 2
    got = np.array(frame.evaluate("(zs) => window.latentPad.decode(zs)", z.tolist()), np.float32)
    want = latent.decode(z)
    assert got.shape == (6 * 784,), got.shape
    err = np.abs(got.reshape(6, 28, 28) - want).max()
    assert err <= EXACT, f"the browser's decoder differs from LatentModel.decode by {err:.2e}"
    assert want.std() > 1e-3  # the check compared real digits, not constants


# ----------------------------------------------------------------------------- exactness


def test_the_browser_decodes_like_the_server_2d(pad_page, latent2):
    frame = pad_page.wait_pad()
    assert frame.evaluate("() => window.latentPad.backend") == "wasm"
    check_exact(frame, latent2, seed=0)
    # the pad starts where the server's sliders are, and paints decoder(z) for it
    assert np.allclose(pad_page.pad_z(), decoded_z(pad_page.page), atol=5e-4 + 1e-6)
    assert frame.locator("#pad").is_visible() and frame.locator('input[type="range"]').count() == 2
    no_exceptions(pad_page.page)
    clean_console(pad_page.page, "the load of a 2-D model's pad")


def test_the_browser_decodes_like_the_server_8d(browser, server8):
    p = Page(browser, server8).open()
    try:
        frame = p.wait_pad()
        check_exact(frame, load_latent(server8.home), seed=1)
        assert frame.locator('input[type="range"]').count() == 8
        assert not frame.locator("#pad").is_visible(), "the 2-D pad is shown for an 8-D model"
        # a slider move decodes in the page, and its release reaches the server
        before, sent = p.digit(), len(p.sent)
        thumb = frame.locator('input[aria-label="z[3]"]')
        thumb.focus()
        runs = runs_done(p.page)
        p.page.keyboard.press("ArrowRight")
        p.wait_digit_change(before)
        wait_runs(p.page, runs)
        assert len(p.sent) > sent
        assert np.allclose(decoded_z(p.page), p.pad_z(), atol=5e-4 + 1e-6)
        no_exceptions(p.page)
        clean_console(p.page, "the load of an 8-D model's pad and a slider step")
    finally:
        p.page.context.close()


def test_the_pad_reports_its_warm_decode_time(pad_page):
    """The status line's "ms per digit" after load is the warm figure, not the first (cold) decode."""
    frame = pad_page.wait_pad()
    frame.wait_for_function("() => /ms per digit/.test(document.getElementById('status').textContent)")
    status = frame.locator("#status").inner_text()
    reported = float(re.search(r"([\d.]+) ms per digit", status).group(1))
    settled = frame.evaluate(
        """() => { const z = window.latentPad.z, t = [];
        for (let i = 0; i < 31; i++) { const s = performance.now(); window.latentPad.decode(z);
                                        t.push(performance.now() - s); }
        t.sort((a, b) => a - b); return t[15]; }"""
    )
    assert reported <= 3 * settled + 10, (
        f"reported {reported} ms per digit after load, settled {settled:.1f} ms"
    )
    warm = frame.evaluate("() => window.latentPad.stats.warmUpMs")
    assert warm is not None and warm > 0  # the cold decodes ran, uncounted, before the first reported one


def test_the_pad_has_labelled_axes_with_ticks_where_their_values_are(pad_page):
    p = pad_page
    frame = p.wait_pad()
    assert frame.locator(".xtitle").inner_text() == "z[0]" and frame.locator(".ytitle").inner_text() == "z[1]"
    x0, x1, y0, y1 = frame.evaluate("() => window.latentPad.state.extent")
    pad = p.box("#pad")
    inside = p.page.frame_locator(f'iframe[src*="{PAD_FRAME}"]')
    title = inside.locator(".ytitle").bounding_box()
    for axis, (lo, hi) in (("x", (x0, x1)), ("y", (y0, y1))):
        ticks = inside.locator(f"#{axis}Ticks .tick")
        values = [float(v) for v in ticks.evaluate_all("els => els.map(e => e.dataset.value)")]
        texts = ticks.all_inner_texts()
        assert 3 <= len(values) <= 8, (axis, values)
        assert [float(t.replace("−", "-")) for t in texts] == pytest.approx(values, abs=0.006), texts
        assert all(lo - 1e-6 <= v <= hi + 1e-6 for v in values) and values == sorted(values), values
        boxes = [ticks.nth(i).bounding_box() for i in range(len(values))]
        for v, b in zip(values, boxes):
            if axis == "x":  # centred under its value's pixel, below the pad
                want = pad["x"] + (v - lo) / (hi - lo) * pad["width"]
                got = b["x"] + b["width"] / 2
                assert b["y"] >= pad["y"] + pad["height"] - 1, (v, b, pad)
            else:  # centred beside it, left of the pad, clear of the axis title
                want = pad["y"] + (hi - v) / (hi - lo) * pad["height"]
                got = b["y"] + b["height"] / 2
                assert b["x"] + b["width"] <= pad["x"] + 1, (v, b, pad)
                assert b["x"] >= title["x"] + title["width"] - 1, (v, b, title)
            assert abs(got - want) <= 3, (axis, v, got, want)  # (the pad's 1 px border, text metrics)
        key = "x" if axis == "x" else "y"
        size = "width" if axis == "x" else "height"
        ordered = sorted(boxes, key=lambda b: b[key])
        assert all(a[key] + a[size] <= b[key] for a, b in zip(ordered, ordered[1:])), f"{axis} labels overlap"


# ----------------------------------------------------------------------------- dragging


def test_dragging_the_pad_decodes_every_move_and_talks_to_the_server_once(pad_page):
    p, page = pad_page, pad_page.page
    p.wait_pad()
    box = p.box("#pad")
    x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.25
    page.mouse.move(x0, y0)  # hover: the preview is the digit the press will show
    p.settle()
    sent = len(p.sent)
    page.mouse.down()
    p.settle()
    digits = {p.digit()}
    for k in range(1, 9):
        x, y = x0 + box["width"] * 0.07 * k, y0 + box["height"] * 0.06 * k
        before = p.digit()
        page.mouse.move(x, y, steps=2)
        digits.add(p.wait_digit_change(before))
        assert len(p.sent) == sent, f"move {k}: the page sent {len(p.sent) - sent} websocket frames mid-drag"
    assert len(digits) >= 6, f"only {len(digits)} distinct digits while dragging"
    p.settle_ws()
    assert len(p.sent) == sent, "the page talked to the server during the drag"
    z_pad = p.pad_z()
    runs = runs_done(page)
    page.mouse.up()
    wait_runs(page, runs)
    p.settle_ws()
    assert len(p.sent) - sent == 1, f"release sent {len(p.sent) - sent} websocket frames, expected 1"
    assert np.allclose(decoded_z(page), z_pad, atol=5e-4 + 1e-6), (decoded_z(page), z_pad)
    assert np.allclose(p.pad_z(), z_pad), "the pad jumped after the server's run"
    no_exceptions(page)
    clean_console(page, "a drag on the pad")


def test_dragging_a_slider_decodes_every_move(pad_page):
    p, page = pad_page, pad_page.page
    p.wait_pad()
    box = p.box('input[aria-label="z[1]"]')
    y = box["y"] + box["height"] / 2
    x0 = box["x"] + box["width"] * 0.15
    page.mouse.move(x0, y)
    sent = len(p.sent)
    before = p.digit()
    page.mouse.down()  # the thumb jumps to the pointer
    digits = {before, p.wait_digit_change(before)}
    for k in range(1, 8):
        before = p.digit()
        page.mouse.move(x0 + box["width"] * 0.1 * k, y, steps=2)
        digits.add(p.wait_digit_change(before))
    p.settle_ws()
    assert len(p.sent) == sent, "the slider drag talked to the server"
    assert len(digits) >= 6, f"only {len(digits)} distinct digits while dragging the slider"
    runs = runs_done(page)
    page.mouse.up()
    wait_runs(page, runs)
    p.settle_ws()
    assert len(p.sent) - sent == 1
    assert np.allclose(decoded_z(page), p.pad_z(), atol=5e-4 + 1e-6)
    clean_console(page, "a slider drag")


def test_hover_previews_and_leaving_restores(pad_page):
    p, page = pad_page, pad_page.page
    p.wait_pad()
    box = p.box("#pad")
    page.mouse.move(box["x"] - 40, box["y"] - 40)
    home_digit, sent, z = p.digit(), len(p.sent), p.pad_z()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.8, steps=3)
    preview = p.wait_digit_change(home_digit)
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7, steps=3)
    p.wait_digit_change(preview)
    page.mouse.move(box["x"] - 40, box["y"] + box["height"] / 2, steps=3)  # leave the pad
    p.frame().wait_for_function("(b) => document.getElementById('digit').toDataURL() === b", arg=home_digit)
    p.settle_ws()
    assert np.array_equal(p.pad_z(), z) and len(p.sent) == sent, (
        "hovering moved the cross or talked to the server"
    )
    clean_console(page, "hovering over the pad")


def test_arrow_keys_move_the_cross_and_commit_on_key_up(pad_page):
    p, page = pad_page, pad_page.page
    frame = p.wait_pad()
    frame.locator("#pad").focus()
    z, before, sent = p.pad_z(), p.digit(), len(p.sent)
    runs = runs_done(page)
    page.keyboard.down("ArrowUp")
    p.wait_digit_change(before)
    assert np.allclose(p.pad_z(), z + [0, 0.05], atol=1e-3), (p.pad_z(), z)
    p.settle_ws()
    assert len(p.sent) == sent, "a key press (before key up) talked to the server"
    page.keyboard.up("ArrowUp")
    wait_runs(page, runs)
    # another run may end first (the pick preview fetching its sprites once after load): wait for the
    # run that carries the committed z, then compare
    deadline = time.monotonic() + 30
    while not np.allclose(decoded_z(page), p.pad_z(), atol=5e-4 + 1e-6) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert np.allclose(decoded_z(page), p.pad_z(), atol=5e-4 + 1e-6), (decoded_z(page), p.pad_z())
    clean_console(page, "an arrow key held and released")


def test_ten_arrow_presses_commit_one_z_and_leave_the_console_clean(pad_page):
    """A user tapping an arrow key ten times sees ten digits in the page, and the server hears the last z
    once the keys stop: one rerun, so no image of a dropped run is fetched (a 404 per image before)."""
    p, page = pad_page, pad_page.page
    frame = p.wait_pad()
    frame.locator("#pad").focus()
    p.settle_ws()
    z, sent, mark, runs, before = p.pad_z(), len(p.sent), console_log(page).mark(), runs_done(page), p.digit()
    for _ in range(10):  # as fast as a user taps (no wait per press: a loaded machine would slow it)
        page.keyboard.press("ArrowRight")
    assert np.allclose(p.pad_z(), z + [0.5, 0], atol=1e-3), (p.pad_z(), z)
    p.wait_digit_change(before)
    wait_runs(page, runs)
    p.settle_ws()
    assert len(p.sent) - sent == 1, f"ten presses sent {len(p.sent) - sent} websocket frames, expected 1"
    assert np.allclose(decoded_z(page), p.pad_z(), atol=5e-4 + 1e-6), (decoded_z(page), p.pad_z())
    console_log(page).assert_clean(page, since=mark, what="ten arrow presses")
    no_exceptions(page)


def test_a_tap_moves_the_cross_on_a_touch_screen(browser, server):
    from browser_harness import INIT_SCRIPT

    context = browser.new_context(viewport={"width": 800, "height": 1000}, has_touch=True, is_mobile=True)
    context.add_init_script(INIT_SCRIPT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch_console(page)
    try:
        p = Page(browser, server, page=page).open()
        p.wait_pad()
        page.frame_locator(f'iframe[src*="{PAD_FRAME}"]').locator("#pad").scroll_into_view_if_needed()
        box = p.box("#pad")
        z, before = p.pad_z(), p.digit()
        runs = runs_done(page)
        page.touchscreen.tap(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.3)
        p.wait_digit_change(before)
        wait_runs(page, runs)
        assert not np.allclose(p.pad_z(), z) and np.allclose(decoded_z(page), p.pad_z(), atol=5e-4 + 1e-6)
        clean_console(page, "a tap on the pad")
    finally:
        context.close()


def test_a_reloaded_pad_asks_for_the_weights_again(pad_page, latent2):
    """The weights go once per session; a pad frame that lost them (rebuilt) asks, and gets them once more."""
    p, page = pad_page, pad_page.page
    frame = p.wait_pad()
    frame.locator("#pad").focus()
    runs = runs_done(page)
    page.keyboard.press("ArrowRight")  # a commit: the run after it sends the pad no weights
    wait_runs(page, runs)
    z = p.pad_z()
    p.settle_ws()
    sent = len(p.sent)
    p.frame().evaluate("() => { window.__before_reload = true; location.reload(); }")
    page.wait_for_function(
        "() => [...document.querySelectorAll('iframe')].some(f => { try { const w = f.contentWindow;"
        " return w.latentPad && w.latentPad.ready && !w.__before_reload; } catch (e) { return false; } })"
    )
    frame = p.wait_pad()
    p.settle_ws()
    assert len(p.sent) - sent == 1, "expected one 'need' message from the reloaded pad"
    assert np.allclose(p.pad_z(), z)
    check_exact(frame, latent2, seed=2)


def test_clicking_a_scatter_point_moves_the_pad(pad_page, latent2):
    from model.data import load_dataset

    p, page = pad_page, pad_page.page
    p.wait_pad()
    chart = page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".gl-container")).first
    chart.scroll_into_view_if_needed()
    points, box, _ = scatter_points(chart)
    target, _ = isolated_point(points, box)
    row = int(np.ravel(target[4])[0])
    runs = runs_done(page)
    page.mouse.click(target[2], target[3])
    wait_runs(page, runs)
    data = load_dataset("mnist", npz=p.srv.home / "data" / "mnist.npz")
    z_mean = latent2.encode(data.x_test[row : row + 1])[0][0]
    p.frame().wait_for_function(
        "(z) => window.latentPad.z.every((v, i) => Math.abs(v - z[i]) < 1e-4)", arg=z_mean.tolist()
    )
    sliders = np.array(
        p.frame().evaluate(
            "() => [...document.querySelectorAll('input[type=range]')].map(e => parseFloat(e.value))"
        )
    )
    assert np.abs(sliders - z_mean).max() <= 0.005 + 1e-6, (sliders, z_mean)  # the range inputs' 0.01 grid
    clean_console(page, "a scatter pick with the pad")


# ----------------------------------------------------------------------------- fallback


def test_without_wasm_the_pad_uses_the_cpu_backend(browser, server, latent2):
    p = Page(browser, server)
    p.page.route(re.compile(r".*/vendor/tfjs-backend-wasm-simd\.wasm$"), lambda route: route.abort())
    try:
        frame = p.open().wait_pad()
        assert frame.evaluate("() => window.latentPad.backend") == "cpu"
        check_exact(frame, latent2, seed=3)
        assert "cpu backend" in frame.locator("#status").inner_text()
    finally:
        p.page.context.close()


def test_a_broken_decoder_falls_back_to_server_sliders(browser, server):
    p = Page(browser, server)
    p.page.route(re.compile(r".*/vendor/tf-core\.es2017\.min\.js$"), lambda route: route.abort())
    try:
        p.open()
        note = p.page.get_by_text(re.compile(r"could not start the in-browser decoder"))
        note.first.wait_for()
        wait_idle(p.page)
        assert "TensorFlow.js did not load" in note.first.inner_text()
        sliders = p.page.locator('[data-testid="stSlider"] input[type="range"][aria-label="z[0]"]')
        assert sliders.count() == 1, "no server-side sliders after the pad failed"
        assert p.frame() is None, "the failed pad is still on the page"
        img = p.page.locator('[data-testid="stImage"]').filter(has_text="decoder(z) for the slider values")
        assert img.locator("img").evaluate("e => e.getBoundingClientRect().width") > 200
        no_exceptions(p.page)
    finally:
        p.page.context.close()
