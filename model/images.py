"""Grey images as bytes: float -> uint8, PNG and animated GIF encoders (one home for each; pure numpy + PIL,
no Keras, so the UI can call them freely)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

MAX_SCALE = 64


def to_uint8(img) -> np.ndarray:
    """A float image in [0, 1] (or a uint8 image) -> uint8, clipped and rounded (NaN -> 0). Shape is kept.

    Rounds in float64, so k/255 (float32 or float64) gives k exactly.
    """
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a
    a = np.nan_to_num(a.astype(np.float64), nan=0.0)
    return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def upscale(img, scale: int = 10) -> np.ndarray:
    """Nearest-neighbour upscaling: each pixel becomes a `scale` x `scale` block (crisp, no blur).

    Args:
        img: (H, W) float in [0, 1] or uint8, or (H, W, 3) uint8 RGB.
        scale: integer factor >= 1.

    Returns (H*scale, W*scale) uint8 (with the RGB axis, if any).
    """
    a = to_uint8(img)
    if a.ndim != 2 and a.shape[2:] != (3,):
        raise ValueError(f"Expected a 2-D grayscale image. Received: img.shape={a.shape}")
    if not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"Expected an integer scale >= 1. Received: scale={scale!r}")
    return np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)


def png_bytes(image, scale: int = 1) -> bytes:
    """A grey (or RGB uint8) image as PNG bytes (fast compression: the page makes many).

    Args:
        image: (H, W) floats in [0, 1] (a decoded digit) or uint8; NaN or inf is a ValueError (the
            page passes `to_uint8(image)`, which shows NaN black). Or (H, W, 3) uint8 RGB.
        scale: integer nearest-neighbour upscaling (e.g. 10 turns 28x28 into a crisp 280x280).
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    rgb = a.ndim == 3 and a.shape[-1] == 3 and a.dtype == np.uint8
    if not (a.ndim == 2 or rgb) or a.size == 0:
        raise ValueError(f"Expected a 2-D image (H, W). Received: shape={a.shape}")
    if not isinstance(scale, (int, np.integer)) or not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"Expected an integer scale in [1, {MAX_SCALE}]. Received: scale={scale!r}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError("Expected finite pixel values. Received: NaN or inf")
    buf = io.BytesIO()
    Image.fromarray(upscale(a, scale)).save(buf, format="PNG", compress_level=1)  # mode "L" or "RGB"
    return buf.getvalue()


def gif_bytes(frames, scale: int = 4, duration_ms: int = 120, bounce: bool = True) -> bytes:
    """An endlessly looping animated GIF of grey frames.

    Args:
        frames: (T, H, W) floats in [0, 1] or uint8, T >= 1.
        scale: integer nearest-neighbour upscaling (1..16).
        duration_ms: time per frame.
        bounce: play forwards then backwards (the ends are not repeated), so the loop has no jump.
    """
    a = np.asarray(frames)
    if a.ndim != 3 or len(a) == 0:
        raise ValueError(f"Expected frames of shape (T, H, W) with T >= 1. Received: shape={a.shape}")
    if not isinstance(scale, (int, np.integer)) or not 1 <= scale <= 16:
        raise ValueError(f"Expected an integer scale in [1, 16]. Received: scale={scale!r}")
    if a.dtype != np.uint8:
        a = to_uint8(np.nan_to_num(a.astype(np.float32)))
    if bounce and len(a) > 2:
        a = np.concatenate([a, a[-2:0:-1]])
    a = np.repeat(np.repeat(a, scale, axis=1), scale, axis=2)
    ims = [Image.fromarray(f, mode="L") for f in a]
    buf = io.BytesIO()
    ims[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=ims[1:],
        duration=int(duration_ms),
        loop=0,
        optimize=False,
        disposal=1,
    )
    return buf.getvalue()
