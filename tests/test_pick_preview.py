"""The pick preview (explorer/components/pick_preview): its sprites, what it sends the browser and when,
and the values the browser sends back. The browser side is tested in tests/e2e/test_e2e_pick_preview.py."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from explorer.components import pick_preview as pp
from model.images import to_uint8
from tests.apptest import assert_clean, page_text, run_app


def _png(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,"), url[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def _tile(sprite: np.ndarray, row: int, cols: int) -> np.ndarray:
    r, c = divmod(row, cols)
    return sprite[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28]


def test_a_sprite_holds_each_image_exactly_row_major():
    imgs = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    s = pp.sprite(imgs, cols=3)
    assert s.shape == (3 * 28, 3 * 28) and s.dtype == np.uint8
    for i in range(7):
        assert np.array_equal(_tile(s, i, 3), imgs[i]), i
    assert not s[2 * 28 :, 28:].any(), "the unused tiles are not black"
    assert np.array_equal(_png(pp.png_data_url(s)), s), "the PNG is not lossless"
    assert np.array_equal(pp.sprite(imgs / 255.0, cols=3), s)  # float images in [0, 1] give the same
    with pytest.raises(ValueError, match="Expected images of shape"):
        pp.sprite(np.zeros((0, 28, 28), np.uint8))


def test_rows_from_the_browser_are_validated():
    assert pp.browser_row(5, 10) == 5 and pp.browser_row(9.0, 10) == 9
    for bad in (10, -1, 2.5, float("nan"), float("inf"), True, "5", None, 1e300, [5], {"0": 1}):
        assert pp.browser_row(bad, 10) is None, bad


def _preview(at) -> dict | None:
    found = [e for e in at.get("bidi_component") if e.proto.id.endswith(pp.KEY)]
    return json.loads(found[0].proto.json) if found else None


def test_the_sprites_go_to_the_browser_once_when_it_asks(home, reference):
    latent, data = reference
    at = run_app(pick=3)
    assert_clean(at)
    first = _preview(at)
    assert first["pick"] == 3 and first["chart"] == "scatter" and first["n"] == len(data.x_test)
    assert first["n_test"] == len(data.x_test) and first["model"].endswith(f":{len(data.x_test)}")
    assert "orig" not in first and "recon" not in first, "the first run carried the sprites unasked"
    at.session_state["_pick_preview"] = {"need": first["model"], "error": None}  # the `need` trigger
    at.run()
    assert_clean(at)
    sent = _preview(at)
    orig, recon, cols = _png(sent["orig"]), _png(sent["recon"]), sent["cols"]
    assert orig.shape == recon.shape == (-(-len(data.x_test) // cols) * 28, cols * 28)
    rows = [0, 3, 1234, len(data.x_test) - 1]
    expected = to_uint8(latent.reconstruct(data.x_test[rows]))
    for row, want in zip(rows, expected):
        assert np.array_equal(_tile(orig, row, cols), data.x_test[row]), f"test image #{row} differs"
        # the sprite decodes all posterior means in one batch, the pick panel one image: the same
        # weights, float sums in another order, so an 8-bit rounding may flip by one
        assert np.abs(_tile(recon, row, cols).astype(int) - want).max() <= 1, f"reconstruction #{row}"
    assert sent["labels"][1234] == int(data.y_test[1234]) and len(sent["labels"]) == len(data.x_test)
    at.run()
    assert "orig" not in _preview(at), "the sprites were sent twice"


def test_a_browser_error_is_plain_text_and_the_scatter_picks_on_the_server(home):
    evil = "**bold** [x](http://127.0.0.1:1/beacon) `code"
    at = run_app(_pick_preview={"need": None, "error": evil})
    assert_clean(at)
    assert _preview(at) is None, "the preview is drawn although it failed"
    assert any(evil in t.value for t in at.text), [t.value for t in at.text]
    assert "beacon" not in page_text(at), "the browser's words went through markdown"


def test_the_preview_can_be_turned_off(home, monkeypatch):
    monkeypatch.setenv(pp.ENV, "0")
    at = run_app()
    assert_clean(at)
    assert _preview(at) is None
    assert pp.unavailable() == f"The instant pick preview is turned off ({pp.ENV}=0)."


def test_a_scatter_of_more_images_than_the_preview_holds_is_left_to_the_server(home, monkeypatch):
    monkeypatch.setattr(pp, "MAX_IMAGES", 100)  # the tiny home's test set has 10,000
    at = run_app()
    assert_clean(at)
    assert _preview(at) is None
