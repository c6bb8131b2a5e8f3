"""Drawing what units learned: each function takes computed arrays and returns one
``Figure``, written to ``path`` as well when one is given.

Grids of small images are drawn as one mosaic (``minicnn.viz.tiles``). Uses
matplotlib's ``Figure`` directly (no pyplot, no global backend state).
"""
import math

import numpy as np
from matplotlib.figure import Figure

from .feature_figure import plot_feature_maps  # noqa: F401 (re-exported: one module for the figures)
from .tiles import GAP, display_image, save_tight, show_image, tile_grid, tile_mosaic, unit_range

FILTERS_PER_ROW = 8
WEIGHT_SIZE, MAX_SIZE = 0.15, (12.0, 14.0)     # inches: one weight, the largest grid


def plot_filters(weights, path=None, title="filters", max_out=64, max_in=32, cmap="gray"):
    """Conv weights ``(C_out, C_in, kH, kW)`` as a grid, one colour scale ``[-m, +m]``.

    ``m = max |w|`` over the drawn weights, so 0 is mid-grey and the sign of
    every weight reads the same in every tile. ``C_in == 1``: one tile per
    filter, ``FILTERS_PER_ROW`` to a row; otherwise one row per output channel,
    one column per input channel. At most ``max_out x max_in`` are drawn; the title
    says when some are left out. A weight is ``WEIGHT_SIZE`` inches wide (less when
    the grid would not fit in ``MAX_SIZE``), so a 5x5 filter reads in a notebook.
    """
    w = np.asarray(weights, dtype=np.float64)[:max_out, :max_in]
    m = np.abs(w).max() or 1.0
    if w.shape[1] == 1:
        grid = tile_grid(w[:, 0], ncols=min(FILTERS_PER_ROW, len(w)))
        mosaic, xlabel, ylabel = tile_mosaic(grid), "", ""
    else:
        mosaic, xlabel, ylabel = tile_mosaic(w), "input channel", "output channel"
    rows, cols = mosaic.shape[:2]
    size = min(WEIGHT_SIZE, MAX_SIZE[0] / cols, MAX_SIZE[1] / rows)
    fig = Figure(figsize=(cols * size + 1.6, rows * size + 0.9), layout="constrained")
    ax = fig.add_subplot()
    im = show_image(ax, mosaic, cmap, -m, m)
    if w.shape[1] > 1:                      # a tick every 8 channels, at the tile's centre
        kh, kw = w.shape[2:]
        ax.set_xticks([c * (kw + GAP) + kw / 2 for c in range(0, w.shape[1], 8)],
                      labels=range(0, w.shape[1], 8), fontsize=8)
        ax.set_yticks([c * (kh + GAP) + kh / 2 for c in range(0, w.shape[0], 8)],
                      labels=range(0, w.shape[0], 8), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    shape = np.shape(weights)
    cut = [f"{n} of {total} {what}" for n, total, what in
           ((w.shape[0], shape[0], "output"), (w.shape[1], shape[1], "input")) if n < total]
    ax.set_title(f"{title}  {tuple(shape)}" + (f", {' and '.join(cut)} channels shown"
                                               if cut else ""), fontsize=10)
    height = rows * size
    fig.colorbar(im, ax=ax, shrink=0.8, aspect=max(12, 0.8 * height / 0.18), label="weight")
    return save_tight(fig, path)


def plot_top_patches(top, path=None, max_units=16, data_range=None):
    """The top-k crops of each unit in a row; with projections, each crop's deconvnet
    projection right after it.

    Crops share one grey scale (``data_range = (lo, hi)``, default the crops'
    own range); a projection is scaled by its own ``max |p|``, 0 at mid-grey. At
    most ``MAX_SIZE[0]`` inches wide, so that a notebook shows it unshrunk.
    """
    crops = np.asarray(top.crops[:max_units], dtype=np.float64)           # (U, k, C, h, w)
    lo, hi = data_range or (crops.min(), crops.max())
    tiles = np.clip((crops - lo) / ((hi - lo) or 1.0), 0, 1)
    tiles = np.stack([[display_image(t) for t in row] for row in tiles])
    if top.projections is not None:
        proj = np.asarray(top.projections[:max_units], dtype=np.float64)
        scale = np.abs(proj).reshape(proj.shape[:2] + (-1,)).max(axis=2)
        proj = 0.5 + 0.5 * proj / np.where(scale > 0, scale, 1.0)[..., None, None, None]
        proj = np.stack([[display_image(p) for p in row] for row in proj])
        tiles = np.stack([tiles, proj], axis=2).reshape((tiles.shape[0], -1) + tiles.shape[2:])
    mosaic = tile_mosaic(tiles)
    size = min(1 / 12, MAX_SIZE[0] / mosaic.shape[1])        # inches a pixel: fits a page
    fig = Figure(figsize=(max(4.5, 1.5 + mosaic.shape[1] * size), 0.8 + mosaic.shape[0] * size),
                 layout="constrained")
    ax = fig.add_subplot()
    show_image(ax, mosaic, vmin=0, vmax=1)
    h = tiles.shape[2]
    ax.set_yticks([r * (h + GAP) + h / 2 for r in range(len(tiles))])
    ax.set_yticklabels([f"unit {c}  max {v:.2f}" for c, v in zip(top.channels, top.values[:, 0])],
                       fontsize=8)
    what = ("each crop, then its deconvnet projection on its own scale, grey = 0"
            if top.projections is not None else "crops")
    ax.set_title(f"{top.name}: top {top.crops.shape[1]} inputs per unit ({what})", fontsize=9)
    return save_tight(fig, path)


def plot_images(images, path=None, titles=None, ncols=None, title=None):
    """A row (or grid) of images ``(n, C, H, W)``, each on its own min-max scale."""
    images = np.asarray(images)
    n = len(images)
    ncols = ncols or min(n, 10)
    rows = math.ceil(n / ncols)
    fig = Figure(figsize=(1.6 * ncols, 1.8 * rows + (0.4 if title else 0)))
    for i, img in enumerate(images):
        ax = fig.add_subplot(rows, ncols, i + 1)
        show_image(ax, unit_range(display_image(img)), vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    return save_tight(fig, path)


def plot_evolution(evolution, path=None, in_channel=0, max_filters=32):
    """One row per snapshot of a ``FeatureEvolution``: the filters (input channel
    ``in_channel``) and, if taken, the maximization images.

    Each row has its own symmetric scale (weights grow during training); the
    row label gives its ``max |w|``.
    """
    snaps = evolution.snapshots
    if not snaps:
        raise ValueError("FeatureEvolution has no snapshots yet: was it called at its epochs?")
    w = np.stack([s.filters[:max_filters, in_channel] for s in snaps]).astype(np.float64)
    m = np.abs(w).reshape(len(snaps), -1).max(axis=1)
    tiles = [w / np.where(m > 0, m, 1)[:, None, None, None]]
    panels = [(-1, f"layer {evolution.layer_index} filters (input channel {in_channel})")]
    if snaps[0].images is not None:
        tiles.append(np.stack([[unit_range(display_image(i)) for i in s.images] for s in snaps]))
        panels.append((0, f"maximization, channels {list(evolution.maximize_channels)}"))
    mosaics = [tile_mosaic(t) for t in tiles]
    # panels one above the other: filter tiles and images differ in size
    fig = Figure(figsize=(3 + max(mo.shape[1] for mo in mosaics) / 14,
                          1 + sum(mo.shape[0] for mo in mosaics) / 14), layout="constrained")
    axes = fig.subplots(len(mosaics), 1, squeeze=False,
                        height_ratios=[mo.shape[0] for mo in mosaics])[:, 0]
    for ax, t, mosaic, (vmin, title) in zip(axes, tiles, mosaics, panels):
        show_image(ax, mosaic, vmin=vmin, vmax=1)
        ax.set_title(title, fontsize=9)
        h = t.shape[2]
        ax.set_yticks([i * (h + GAP) + h / 2 for i in range(len(snaps))])
        ax.set_yticklabels([f"epoch {s.epoch}" for s in snaps], fontsize=8)
    axes[0].set_yticklabels([f"epoch {s.epoch}  max|w| {mm:.2f}" for s, mm in zip(snaps, m)],
                            fontsize=8)
    return save_tight(fig, path)
