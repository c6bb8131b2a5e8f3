"""Tiles: many small images drawn as one mosaic, shared by the figures of ``minicnn.viz``.

A grid of tiles is one image with a blank (NaN) line between tiles, which stays
fast for thousands of tiles, e.g. lenet's 64 x 32 second-layer filters. Images with
3 channels are shown in colour, with 1 in grey, with any other number as their
channel mean.
"""
import math

import matplotlib
import numpy as np

from ..files.atomic import save_figure

GAP = 1   # blank pixels between tiles


def display_image(img):
    """``(C, H, W)`` -> ``(H, W)`` (grey) or ``(H, W, 3)`` (colour)."""
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 2:
        return img
    if img.shape[0] == 3:
        return np.moveaxis(img, 0, -1)
    return img.mean(axis=0)


def tile_mosaic(tiles):
    """``tiles (R, C, h, w[, 3])`` -> one array with NaN (blank) gaps between tiles."""
    rows, cols, h, w = tiles.shape[:4]
    out = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP) + tiles.shape[4:], np.nan)
    for r in range(rows):
        for c in range(cols):
            out[r * (h + GAP):r * (h + GAP) + h, c * (w + GAP):c * (w + GAP) + w] = tiles[r, c]
    return out


def tile_grid(tiles, ncols=None):
    """A flat list of ``n`` tiles ``(n, h, w[, 3])`` arranged ``ceil(n / ncols)`` by ``ncols``."""
    n = len(tiles)
    ncols = ncols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncols)
    padded = np.full((rows * ncols,) + tiles.shape[1:], np.nan)
    padded[:n] = tiles
    return padded.reshape((rows, ncols) + tiles.shape[1:])


def unit_range(x):
    """Scale to [0, 1] by the array's own min and max (NaN stays NaN)."""
    lo, hi = np.nanmin(x), np.nanmax(x)
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x) + 0.5


def show_image(ax, image, cmap="gray", vmin=None, vmax=None):
    """Draw ``image`` on ``ax``, pixels sharp, no ticks, NaN gaps blank; returns the ``AxesImage``."""
    cmap = matplotlib.colormaps[cmap].with_extremes(bad="white")     # NaN gaps: blank
    im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def save_tight(fig, path):
    """Write ``fig`` to ``path`` (if given) at 150 dpi, cropped to what is drawn; returns it."""
    return save_figure(fig, path, dpi=150, bbox_inches="tight")
