"""model.images: the one float -> uint8 conversion and PNG encoder (the page's and the downloads')."""

import io

import numpy as np
import pytest
from PIL import Image

from explorer import views
from model import images


def _explorer_to_uint8_before(img) -> np.ndarray:
    """What the page's own copy did before it used model.images: round in float32."""
    a = np.nan_to_num(np.asarray(img).astype(np.float32), nan=0.0)
    return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_uint8_matches_the_pages_old_rounding(dtype):
    k = np.arange(256)
    exact = (k / 255.0).astype(dtype)  # every level, as a decoder's float would hold it
    assert images.to_uint8(exact).tolist() == k.tolist() == _explorer_to_uint8_before(exact).tolist()
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random(200_000), (k[:-1] + 0.5) / 255.0, [-0.5, 1.5, np.nan]]).astype(dtype)
    new, old = images.to_uint8(x), _explorer_to_uint8_before(x)
    assert np.abs(new.astype(int) - old).max() <= 1  # only a value a hair from .5 can round the other way
    assert np.mean(new != old) < 1e-3
    assert new[-3:].tolist() == [0, 255, 0]  # clipped, NaN black


def test_the_page_png_is_model_images_png_and_shows_nan_black():
    img = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    assert views.to_png(img, 3) == images.png_bytes(img, 3)
    shown = np.asarray(Image.open(io.BytesIO(views.to_png(np.full((2, 2), np.nan)))))
    assert shown.tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="finite"):  # a download refuses it
        images.png_bytes(np.full((2, 2), np.nan))


def test_rgb_uint8_images_are_encoded_by_the_same_png_encoder():
    rgb = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    back = np.asarray(Image.open(io.BytesIO(images.png_bytes(rgb, 2))))
    assert (
        back.shape == (10, 14, 3)
        and np.array_equal(back[::2, ::2], rgb)
        and np.array_equal(back[1::2, 1::2], rgb)
    )
    with pytest.raises(ValueError, match="Expected a 2-D image"):  # RGB as floats: not an image here
        images.png_bytes(rgb / 255.0)
