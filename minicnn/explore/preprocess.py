"""Drawings and uploads -> the 28x28 digit MNIST's makers would have made of them.

MNIST's digits were made from scanned NIST digits in three steps (LeCun et al.):
the digit's bounding box is scaled to fit a 20x20 box, keeping its aspect ratio
(anti-aliased, so the edges come out gray), and the result is placed in a 28x28
field so that its centre of mass lies at the field's centre. On MNIST's test
set the centre of mass is at row 14.0, column 14.0 on average (pixel indices,
measured), so ``CENTRE = 14``. A digit drawn any size anywhere on a canvas is
put through the same steps, so the network sees what it was trained on.

The result is uint8 ``(28, 28)`` with 0 = background, exactly as MNIST stores
its images; ``minicnn.data.prepare_images`` then normalizes it like training.

An image with no digit in it (all black, all white, uniform gray, blank paper
photographed with its noise, a single speck) gives all zeros, which the page
shows as "no digit found" rather than a prediction. Precisely, ``ink`` finds no
digit when either

- nothing stands out from the paper: the darkest ink is less than
  ``MIN_CONTRAST`` (5% of the gray range, 13 of 255 levels) above the paper's
  shade plus its noise (``NOISE_SIGMAS`` robust standard deviations of the
  pixels around the paper's shade; 0 for a clean drawing); or
- the ink does not spread: the pixels of at least half the strongest ink fit in
  a box whose longer side is under ``MIN_EXTENT`` (8%) of the image's longer
  side (a dot of the 14-pixel brush on the 280-pixel canvas is 5%).

A faint digit is found: 15 gray levels of contrast on clean paper are enough.
"""
import numpy as np
from PIL import Image

from ..data import prepare_images

SIZE, BOX, CENTRE = 28, 20, 14
MIN_CONTRAST, MIN_EXTENT = 0.05, 0.08
NOISE_SIGMAS = 6          # Gaussian noise passes 6 sigmas once in 10^9 pixels


def ink(image):
    """How much ink each pixel holds, float ``(H, W)`` in [0, 1] (0 = background).

    ``image``: ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, uint8 or
    float in [0, 1]; a Gradio ``Sketchpad`` value (a dict) gives its ``composite``.
    Transparent pixels count as white paper. Dark ink on light paper (a drawing,
    a photo of a written digit) and light ink on dark (an MNIST image) are both
    read right: the paper's shade is the median pixel, which becomes 0. All
    zeros when the image holds no digit (the module's docstring says when).
    """
    if isinstance(image, dict):
        image = image.get("composite")
    if image is None:
        raise ValueError("no image: draw a digit or choose an image")
    a = np.asarray(image, dtype=np.float64)
    if np.asarray(image).dtype == np.uint8:
        a = a / 255.0
    if a.ndim == 3:
        rgb, alpha = a[..., :3], a[..., 3:4] if a.shape[2] == 4 else 1.0
        rgb = rgb * alpha + (1.0 - alpha)                 # on white paper
        a = rgb @ np.array([0.299, 0.587, 0.114]) if rgb.shape[2] == 3 else rgb[..., 0]
    if a.ndim != 2:
        raise ValueError(f"an image is (H, W), (H, W, 3) or (H, W, 4); got shape {a.shape}")
    paper = np.median(a)
    if paper > 0.5:                                       # dark ink on light paper
        a, paper = 1.0 - a, 1.0 - paper
    # the paper's own spread (sensor noise, JPEG artefacts) is not ink: 1.4826 x the
    # median absolute deviation is the standard deviation of Gaussian noise
    floor = paper + NOISE_SIGMAS * 1.4826 * np.median(np.abs(a - paper))
    top = a.max()
    if top - floor < MIN_CONTRAST:
        return np.zeros_like(a)
    a = np.clip((a - floor) / (top - floor), 0.0, 1.0)
    rows, cols = np.nonzero(a >= 0.5)
    if max(np.ptp(rows), np.ptp(cols)) + 1 < MIN_EXTENT * max(a.shape):
        return np.zeros_like(a)
    return a


def mnist_style(image, box=BOX):
    """``image`` (anything ``ink`` reads) -> uint8 ``(28, 28)``, the digit MNIST-style.

    The inked pixels' bounding box is resized (bilinear, anti-aliased when
    shrinking) so that its longer side is ``box`` pixels, then shifted by whole
    pixels so that its centre of mass lands on ``(CENTRE, CENTRE)``; what would
    fall outside the 28x28 field is cut. A blank image gives all zeros.
    """
    a = ink(image)
    rows, cols = np.nonzero(a > 0)
    out = np.zeros((SIZE, SIZE))
    if rows.size == 0:
        return out.astype(np.uint8)
    crop = a[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))   # PIL: (width, height)
    fitted = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F")
                        .resize(size, Image.Resampling.BILINEAR), dtype=np.float64)
    fitted = np.clip(fitted, 0.0, 1.0)
    total = fitted.sum()
    cy = (fitted.sum(axis=1) * np.arange(fitted.shape[0])).sum() / total
    cx = (fitted.sum(axis=0) * np.arange(fitted.shape[1])).sum() / total
    top, left = int(round(CENTRE - cy)), int(round(CENTRE - cx))
    # paste fitted at (top, left), keeping only the part inside the field
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + fitted.shape[0], SIZE), min(left + fitted.shape[1], SIZE)
    out[y0:y1, x0:x1] = fitted[y0 - top:y1 - top, x0 - left:x1 - left]
    return np.round(out * 255).astype(np.uint8)


def model_input(digit):
    """uint8 ``(28, 28)`` -> float32 ``(1, 1, 28, 28)``, normalized as in training."""
    return prepare_images(np.asarray(digit, dtype=np.uint8)[None])


__all__ = ["ink", "mnist_style", "model_input", "SIZE", "BOX", "CENTRE", "MIN_CONTRAST",
           "MIN_EXTENT", "NOISE_SIGMAS"]
