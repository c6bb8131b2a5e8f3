"""Pooling and local translation invariance.

Shift an image by a pixel or two. A convolution is translation *equivariant*:
its output map moves with the image, so the value at a fixed unit changes.
Max pooling over ``k x k`` windows keeps only each window's maximum, so when
the strongest response stays inside its window the pooled unit does not
change at all. For the map ``a`` entering the pooling layer and ``m`` leaving
it, before (``0``) and after (``1``) the shift::

    change(a)   = ||a1 - a0|| / ||a0||           at fixed positions
    moved(a)    = ||a1 - shift(a0)|| / ||a0||    after moving a0 with the image
                                                 (on the part of the map in both)
    unchanged(m)= fraction of units with |m1 - m0| <= tol * max|m0|
"""
from dataclasses import dataclass, field

import numpy as np

from ..backend import as_numpy
from ..files.atomic import save_figure
from ..layers import AvgPool2D, MaxPool2D
from ..viz.probe import as_model_input, probing
from .translation import shift_images


@dataclass
class PoolingInvariance:
    """Maps of the first image (``(C, H, W)``) and measures averaged over the images."""
    pool: int                   # index of the pooling layer in the model
    shift: tuple                # (dy, dx)
    conv_before: np.ndarray = field(repr=False)    # input of the pooling layer, original image
    conv_after: np.ndarray = field(repr=False)     # ... shifted image
    pooled_before: np.ndarray = field(repr=False)  # output of the pooling layer, original image
    pooled_after: np.ndarray
    conv_change: float          # mean relative change at fixed positions
    conv_moved: float           # mean relative change after moving the map with the image
    pooled_change: float
    conv_unchanged: float       # mean fraction of unchanged units
    pooled_unchanged: float


def _relative(a, b):
    """``||a - b|| / ||b||`` per example (first axis)."""
    n = len(a)
    num = np.linalg.norm((a - b).reshape(n, -1), axis=1)
    return num / np.maximum(np.linalg.norm(b.reshape(n, -1), axis=1), 1e-12)


def _unchanged(a, b, tol):
    n = len(a)
    scale = np.abs(b).reshape(n, -1).max(axis=1, keepdims=True)
    return (np.abs(a - b).reshape(n, -1) <= tol * np.maximum(scale, 1e-12)).mean(axis=1)


def pooling_invariance(model, images, shift=(0, 1), pool=None, fill=None, tol=1e-6):
    """Compare the maps around pooling layer ``pool`` (index in ``model.layers``;
    default the first pooling layer) for ``images (N, C, H, W)`` and their copies
    shifted by ``shift = (dy, dx)`` pixels (vacated pixels get ``fill``; ``None``:
    the images' minimum). Returns a ``PoolingInvariance``."""
    if pool is None:
        pool = next(i for i, layer in enumerate(model.layers)
                    if isinstance(layer, (MaxPool2D, AvgPool2D)))
    fill = float(images.min()) if fill is None else fill
    moved = shift_images(images, *shift, fill=fill)
    with probing(model):
        maps = []
        for x in (images, moved):
            a = model[:pool].forward(as_model_input(model, x))
            maps.append((as_numpy(a), as_numpy(model.layers[pool].forward(a))))
    (a0, m0), (a1, m1) = maps
    return PoolingInvariance(
        pool, tuple(shift), a0[0], a1[0], m0[0], m1[0],
        conv_change=float(_relative(a1, a0).mean()),
        conv_moved=_moved(a0, a1, shift, images.shape[-1] // a0.shape[-1]),
        pooled_change=float(_relative(m1, m0).mean()),
        conv_unchanged=float(_unchanged(a1, a0, tol).mean()),
        pooled_unchanged=float(_unchanged(m1, m0, tol).mean()))


def _moved(a0, a1, shift, step):
    """Mean ``||a1 - shift(a0)|| / ||a0||`` over the part of the map present in both
    (the map moves ``shift / step`` map pixels); NaN when ``step`` does not divide the shift."""
    dy, dx = shift
    if dy % step or dx % step:
        return float("nan")
    dy, dx = dy // step, dx // step
    h, w = a0.shape[-2:]
    src = a0[..., max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    dst = a1[..., max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return float(_relative(dst, src).mean())


def draw_invariance(image, shifted, result, channel=None, path=None):
    """Image, shifted image; conv map before/after; pooled map before/after (one channel:
    by default the one with the strongest pooled response)."""
    from matplotlib.figure import Figure
    c = int(result.pooled_before.reshape(len(result.pooled_before), -1).max(axis=1).argmax()) \
        if channel is None else channel
    panels = [(image, "image"), (shifted, f"shifted by {result.shift}"),
              (result.conv_before[c], f"conv map ch {c}"), (result.conv_after[c], "conv map, shifted"),
              (result.pooled_before[c], "pooled"), (result.pooled_after[c], "pooled, shifted")]
    fig = Figure(figsize=(5.2, 7.6))
    axes = fig.subplots(3, 2)
    for ax, (img, title) in zip(axes.flat, panels):
        img = as_numpy(img).reshape(img.shape[-2:])
        ax.imshow(img, cmap="gray" if ax in axes[0] else "viridis", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(f"change at fixed units: conv {100 * result.conv_change:.0f}%, "
                 f"pooled {100 * result.pooled_change:.0f}%", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
