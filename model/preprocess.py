"""Turn a user's image (an upload or a drawing canvas) into an MNIST-like 28x28 digit.

The steps are those of the MNIST paper (LeCun et al., 1998): the ink is cropped to its bounding box,
scaled with anti-aliasing so its longest side is 20 px (aspect ratio kept), and pasted into a 28x28
field so that its centre of mass lies at the field's centre. Measured on MNIST's training set, the
centre of mass sits at pixel index (14.0, 14.0) +- 0.3, so that is where we put it (integer shift).

Before that, the picture is made to look like MNIST ink: light strokes on a black background. A
transparent background is composited behind the strokes; a light background (dark pen on paper) is
inverted; the background level (the median of the border) is subtracted and the contrast stretched.

    from model.preprocess import to_mnist, ImageError
    digit = to_mnist(open("seven.png", "rb").read())   # (28, 28) uint8, ink = 255
    digit = to_mnist(canvas_rgba)                       # (H, W, 4) uint8 from a drawing canvas
    item = prepare(photo_bytes, "fashion_mnist")        # Fashion-MNIST's framing: longest side 28 px,
                                                        # box centred (Xiao et al., 2017)
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from model.data import DATASETS
from model.errors import ImageError

MAX_BYTES = 10 * 1024 * 1024  # largest accepted upload: 10 MiB
MAX_PIXELS = 16_000_000  # largest accepted picture: 16 megapixels (a 12 MP phone photo fits); checked
# from the header, before decoding: a PNG of this size decodes to up to 64 MB (RGBA), the bulk of the
# ~100 MB an upload may cost (tests/test_preprocess.py measures it)
WORK_SIDE = 800  # pictures are shrunk to this longest side right after decoding (JPEGs while decoding,
# via draft), before any float conversion; the digit ends up 20 px tall, so nothing is lost
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # decoders we trust with user bytes (no EPS etc.)
SIZE = 28  # MNIST: the field
CENTRE = 14.0  # MNIST's mean centre of mass (row, column), pixel indices
MIN_CONTRAST = 40  # ink must stand this many grey levels (of 255) above the background
INK_LEVEL = 0.25  # a pixel is ink if it reaches this fraction of the strongest stroke
NOISE_LEVEL = 0.10  # below this fraction of the strongest stroke, a pixel is background


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def open_image(data: bytes) -> Image.Image:
    """Decode uploaded bytes into a Pillow image, refusing non-images and oversized ones.

    Args:
        data: the file's bytes (PNG, JPEG, GIF, BMP or WebP).

    Returns a loaded image, turned upright according to its EXIF orientation (phone photos).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"Expected the image file's bytes. Received: {type(data).__name__}.")
    size = len(data)
    if size == 0:
        raise ImageError("The file is empty (0 bytes). Fix: choose a PNG or JPEG picture of a digit.")
    if size > MAX_BYTES:
        raise ImageError(
            f"The file is too large ({_mb(size)}; the limit is {_mb(MAX_BYTES)}). "
            "Fix: crop the picture to the digit or save it smaller."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(bytes(data)), formats=FORMATS)
            w, h = img.size  # read from the header; nothing decoded yet
            _check_pixels(w, h)
            if img.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale right away (DCT scaling)
                img.draft(img.mode, (WORK_SIDE, WORK_SIDE))
            img.load()
            img = shrink(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"The picture is too large (over {MAX_PIXELS / 1e6:.0f} megapixels). "
            "Fix: crop it to the digit or scale it down."
        ) from None
    except Image.UnidentifiedImageError:
        raise ImageError(
            f"This file is not a picture Pillow can read as {', '.join(FORMATS)} "
            f"({size} bytes starting {bytes(data[:8])!r}). "
            "Fix: upload a PNG or JPEG image of a digit."
        ) from None
    except MemoryError:
        raise ImageError(
            "The picture is too large to decode here. Fix: crop it to the digit or scale it down."
        ) from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt image data
        raise ImageError(
            f"The picture is damaged and cannot be decoded ({type(e).__name__}: {e}). "
            "Fix: re-save it as PNG or JPEG and upload it again."
        ) from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block is no reason to refuse the picture
        pass
    return img


def _check_pixels(w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"The picture is too large ({w}x{h} = {w * h / 1e6:.1f} megapixels; "
            f"the limit is {MAX_PIXELS / 1e6:.0f}). Fix: crop it to the digit "
            "or scale it down."
        )
    if w < 1 or h < 1:
        raise ImageError(f"The picture has no pixels ({w}x{h}). Fix: upload a picture of a digit.")


def shrink(img: Image.Image, side: int = WORK_SIDE) -> Image.Image:
    """A decoded picture with its longest side at most `side` px (box-filtered, aspect kept), in a mode
    that keeps its strokes: palette and 1-bit pictures become L / LA / RGBA first (Pillow would resize
    them by nearest neighbour, dropping thin strokes), 16-bit greys become 32-bit "I"."""
    if max(img.size) <= side:
        return img
    if img.mode in ("1", "P", "PA"):
        has_alpha = img.mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else ("L" if img.mode == "1" else "RGB"))
    elif img.mode.startswith("I;16"):
        img = img.convert("I")
    w, h = img.size
    scale = side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.BOX, reducing_gap=2.0)  # reduce() by an integer factor first


def _from_array(a: np.ndarray) -> np.ndarray:
    """An (H, W), (H, W, 1/3/4) array (uint8, or floats in [0, 1]) -> float (H, W[, C]) in [0, 255]."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ImageError(
            f"Expected an image array of shape (H, W), (H, W, 3) or (H, W, 4). Received: shape={a.shape}."
        )
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise ImageError(
            f"The picture is too large ({a.shape[1]}x{a.shape[0]}; the limit is "
            f"{MAX_PIXELS / 1e6:.0f} megapixels). Fix: scale it down."
        )
    if a.size == 0:
        raise ImageError(f"The picture has no pixels (shape {a.shape}). Fix: draw or upload a digit.")
    if a.dtype == bool:
        a = a.astype(np.float64) * 255.0
    elif not np.issubdtype(a.dtype, np.number):
        raise ImageError(f"Expected numeric pixel values. Received: dtype={a.dtype}.")
    floats = np.issubdtype(a.dtype, np.floating)
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ImageError("The picture contains NaN or infinite pixel values.")
    if floats and a.min() >= 0.0 and a.max() <= 1.0:  # floats in [0, 1], as matplotlib/keras use
        a = a * 255.0
    return np.clip(a, 0.0, 255.0)


def _from_pil(img: Image.Image) -> np.ndarray:
    """A Pillow image -> float (H, W) grey or (H, W, 4) RGBA in [0, 255]."""
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        return np.asarray(img.convert("RGBA"), np.float64)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float greys: rescale, not clip
        a = np.asarray(img, np.float64)
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.asarray(img.convert("L"), np.float64)


def _grey(a: np.ndarray) -> np.ndarray:
    """float (H, W[, 3|4]) in [0, 255] -> float (H, W) grey, transparency composited behind the ink.

    A drawing canvas or a cut-out PNG marks its strokes by opacity: the strokes are composited over
    the background that contrasts with them (black behind light strokes, white behind dark ones).
    """
    if a.ndim == 2:
        return a
    luma = a[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, as Pillow's "L"
    if a.shape[-1] == 3:
        return luma
    alpha = a[..., 3] / 255.0
    if alpha.min() >= 1.0:
        return luma
    weight = alpha.sum()
    ink_luma = float((luma * alpha).sum() / weight) if weight > 0 else 255.0
    backdrop = 0.0 if ink_luma >= 128 else 255.0
    return luma * alpha + backdrop * (1.0 - alpha)


def _border_median(g: np.ndarray) -> float:
    return float(np.median(np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])))


def to_mnist(source) -> np.ndarray:
    """Preprocess a picture of one digit like MNIST: `prepare(source, "mnist")`.

    Returns (28, 28) uint8, white ink (up to 255) on black (0), the longest side of the digit
    20 px, its centre of mass at (14, 14).
    """
    return prepare(source, "mnist")


def prepare(source, dataset: str = "mnist") -> np.ndarray:
    """Preprocess a picture of one object the way `dataset` framed its images.

    Args:
        source: the file's bytes (PNG/JPEG/...), a Pillow image, or a numpy array (H, W) grey,
            (H, W, 3) RGB or (H, W, 4) RGBA such as a drawing canvas' `image_data` (uint8, or
            floats in [0, 1]). Light-on-dark and dark-on-light pictures both work.
        dataset: a built-in dataset's name (its framing in model.data.DATASETS: "mnist" longest side
            20 px, centred by mass, also used for unknown datasets; "fashion_mnist" 28 px, by its box).

    Returns:
        (28, 28) uint8, light object (up to 255) on black (0).

    Raises:
        ImageError: not an image, too large (bytes or pixels), or nothing drawn.
    """
    recipe = DATASETS.get(dataset, DATASETS["mnist"])  # how the dataset framed its objects (box, by_mass)
    if isinstance(source, (bytes, bytearray, memoryview)):
        a = _from_pil(open_image(source))
    elif isinstance(source, Image.Image):
        _check_pixels(*source.size)
        a = _from_pil(shrink(source))  # a new image: the caller's is left as it is
    elif isinstance(source, np.ndarray):
        a = _from_array(source)
    else:
        raise ImageError(
            f"Expected image bytes, a PIL image or a numpy array. Received: {type(source).__name__}."
        )
    g = _grey(a)  # (H, W) in [0, 255]

    # Ink is light on dark: invert a light background (a dark pen on paper), then remove the
    # background level so the paper becomes 0 whatever its grey.
    background = _border_median(g)
    if background > 127.5:
        g = 255.0 - g
        background = 255.0 - background
    g = np.clip(g - background, 0.0, None)
    peak = float(g.max())
    if peak < MIN_CONTRAST:
        raise ImageError(
            "No digit found: the picture is blank or has too little contrast "
            f"(the strongest stroke is {peak:.0f} grey levels from the background; at "
            f"least {MIN_CONTRAST} needed). Fix: draw a digit, or upload a clear dark-on-"
            "light or light-on-dark picture."
        )
    g[g < NOISE_LEVEL * peak] = 0.0
    rows, cols = np.nonzero(g >= INK_LEVEL * peak)
    g = g[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # crop to the ink's bounding box

    # Longest side to 20 px (MNIST; 28 for Fashion-MNIST), aspect kept, anti-aliased
    # (a box filter when shrinking, Lanczos when growing).
    h, w = g.shape
    scale = recipe.box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.LANCZOS
    small = Image.fromarray((g / peak * 255.0).astype(np.float32)).resize((nw, nh), resample)
    d = np.clip(np.asarray(small, np.float64), 0.0, None)
    if d.max() <= 0:
        raise ImageError("No digit found after scaling (the strokes vanished). Fix: draw thicker strokes.")
    d = d / d.max() * 255.0  # thin strokes shrunk from a big picture still reach full ink

    # Paste so the centre of mass lands at MNIST's (14, 14), keeping the whole digit inside
    # (or, for Fashion-MNIST, the box in the middle).
    if recipe.by_mass:
        mass = d.sum()
        cy = float((d.sum(1) * np.arange(nh)).sum() / mass)
        cx = float((d.sum(0) * np.arange(nw)).sum() / mass)
        top = int(np.clip(round(CENTRE - cy), 0, SIZE - nh))
        left = int(np.clip(round(CENTRE - cx), 0, SIZE - nw))
    else:
        top, left = (SIZE - nh) // 2, (SIZE - nw) // 2
    out = np.zeros((SIZE, SIZE), np.float64)
    out[top : top + nh, left : left + nw] = d
    return np.rint(out).astype(np.uint8)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) centre of mass of a (H, W) image's intensities."""
    x = np.asarray(image, np.float64)
    m = x.sum()
    if m <= 0:
        raise ValueError("Expected an image with some ink. Received: an all-zero image.")
    return (
        float((x.sum(1) * np.arange(x.shape[0])).sum() / m),
        float((x.sum(0) * np.arange(x.shape[1])).sum() / m),
    )
