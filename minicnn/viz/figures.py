"""Drawing what units learned: each function takes computed arrays and returns one
``Figure``, written to ``path`` as well when one is given.

Grids of small images are drawn as one mosaic (tiles separated by a blank
line), which stays fast for thousands of tiles, e.g. lenet's 64 x 32 second-
layer filters. Images with 3 channels are drawn in colour, with 1 in grey,
with any other number as their channel mean. Uses matplotlib's ``Figure``
directly (no pyplot, no global backend state).
"""
import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..atomic import save_figure

GAP = 1   # blank pixels between tiles


def _display(img):
    """``(C, H, W)`` -> ``(H, W)`` (grey) or ``(H, W, 3)`` (colour)."""
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 2:
        return img
    if img.shape[0] == 3:
        return np.moveaxis(img, 0, -1)
    return img.mean(axis=0)


def _mosaic(tiles):
    """``tiles (R, C, h, w[, 3])`` -> one array with NaN (blank) gaps between tiles."""
    rows, cols, h, w = tiles.shape[:4]
    out = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP) + tiles.shape[4:], np.nan)
    for r in range(rows):
        for c in range(cols):
            out[r * (h + GAP):r * (h + GAP) + h, c * (w + GAP):c * (w + GAP) + w] = tiles[r, c]
    return out


def _grid(tiles, ncols=None):
    """A flat list of ``n`` tiles ``(n, h, w[, 3])`` arranged ``ceil(n / ncols)`` by ``ncols``."""
    n = len(tiles)
    ncols = ncols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncols)
    padded = np.full((rows * ncols,) + tiles.shape[1:], np.nan)
    padded[:n] = tiles
    return padded.reshape((rows, ncols) + tiles.shape[1:])


def _unit_range(x):
    """Scale to [0, 1] by the array's own min and max (NaN stays NaN)."""
    lo, hi = np.nanmin(x), np.nanmax(x)
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x) + 0.5


def _show(ax, image, cmap="gray", vmin=None, vmax=None):
    cmap = matplotlib.colormaps[cmap].with_extremes(bad="white")     # NaN gaps: blank
    im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _save(fig, path):
    return save_figure(fig, path, dpi=150, bbox_inches="tight")


def plot_filters(weights, path=None, title="filters", max_out=64, max_in=32, cmap="gray"):
    """Conv weights ``(C_out, C_in, kH, kW)`` as a grid, one colour scale ``[-m, +m]``.

    ``m = max |w|`` over the drawn weights, so 0 is mid-grey and the sign of
    every weight reads the same in every tile. ``C_in == 1``: one tile per
    filter; otherwise one row per output channel, one column per input channel.
    At most ``max_out x max_in`` are drawn; the title says when some are left out.
    """
    w = np.asarray(weights, dtype=np.float64)[:max_out, :max_in]
    m = np.abs(w).max() or 1.0
    if w.shape[1] == 1:
        mosaic, xlabel, ylabel = _mosaic(_grid(w[:, 0])), "", ""
    else:
        mosaic, xlabel, ylabel = _mosaic(w), "input channel", "output channel"
    fig = Figure(figsize=(min(12, 2 + mosaic.shape[1] / 20), min(14, 1.5 + mosaic.shape[0] / 20)))
    ax = fig.add_subplot()
    im = _show(ax, mosaic, cmap, -m, m)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    shape = np.shape(weights)
    cut = [f"{n} of {total} {what}" for n, total, what in
           ((w.shape[0], shape[0], "output"), (w.shape[1], shape[1], "input")) if n < total]
    ax.set_title(f"{title}  {tuple(shape)}" + (f", {' and '.join(cut)} channels shown"
                                               if cut else ""))
    fig.colorbar(im, ax=ax, shrink=0.7, label="weight")
    return _save(fig, path)


def _map_title(name, shape, max_channels):
    """``"3 Conv2D  (64, 14, 14), 32 of 64 channels shown"``: says when channels are left out."""
    cut = len(shape) == 3 and shape[0] > max_channels
    return f"{name}  {tuple(shape)}" + (f", {max_channels} of {shape[0]} channels shown"
                                        if cut else "")


def plot_feature_maps(maps, path=None, image=None, max_channels=32):
    """Every layer's output for one image: one panel per layer titled with its name and shape.

    ``maps``: ``units.feature_maps`` output. Spatial maps ``(C, H, W)`` show up to
    ``max_channels`` channels on one shared scale per layer (the title then says
    e.g. "32 of 64 channels shown"); flat ``(F,)`` outputs show as one strip.
    """
    panels = ([("input", np.asarray(image)[None] if np.ndim(image) == 2 else np.asarray(image))]
              if image is not None else []) + [(m.name, m.activation) for m in maps]
    mosaics = []
    for name, act in panels:
        act = np.asarray(act, dtype=np.float64)
        mosaic = (_mosaic(_grid(act[:max_channels], ncols=min(16, len(act))))
                  if act.ndim == 3 else act[None])
        mosaics.append((_map_title(name, act.shape, max_channels), mosaic, act.ndim))
    heights = [max(0.6, 8 * m.shape[0] / max(m.shape[1], 1)) if nd == 3 else 0.5
               for _, m, nd in mosaics]
    fig = Figure(figsize=(10, sum(heights) + 0.5 * len(heights)))
    subfigs = fig.subfigures(len(mosaics), 1, height_ratios=heights)
    for sub, (title, mosaic, ndim) in zip(np.atleast_1d(subfigs), mosaics):
        ax = sub.add_subplot()
        _show(ax, mosaic, "gray" if ndim == 3 else "viridis")
        if ndim != 3:
            ax.set_aspect("auto")
        ax.set_title(title, fontsize=9, loc="left")
    return _save(fig, path)


def plot_top_patches(top, path=None, max_units=16, data_range=None):
    """The top-k crops of each unit in a row; with projections, each crop's deconvnet
    projection right after it.

    Crops share one grey scale (``data_range = (lo, hi)``, default the crops'
    own range); a projection is scaled by its own ``max |p|``, 0 at mid-grey.
    """
    crops = np.asarray(top.crops[:max_units], dtype=np.float64)           # (U, k, C, h, w)
    lo, hi = data_range or (crops.min(), crops.max())
    tiles = np.clip((crops - lo) / ((hi - lo) or 1.0), 0, 1)
    tiles = np.stack([[_display(t) for t in row] for row in tiles])
    if top.projections is not None:
        proj = np.asarray(top.projections[:max_units], dtype=np.float64)
        scale = np.abs(proj).reshape(proj.shape[:2] + (-1,)).max(axis=2)
        proj = 0.5 + 0.5 * proj / np.where(scale > 0, scale, 1.0)[..., None, None, None]
        proj = np.stack([[_display(p) for p in row] for row in proj])
        tiles = np.stack([tiles, proj], axis=2).reshape((tiles.shape[0], -1) + tiles.shape[2:])
    mosaic = _mosaic(tiles)
    fig = Figure(figsize=(2 + mosaic.shape[1] / 12, 1 + mosaic.shape[0] / 12))
    ax = fig.add_subplot()
    _show(ax, mosaic, vmin=0, vmax=1)
    h = tiles.shape[2]
    ax.set_yticks([r * (h + GAP) + h / 2 for r in range(len(tiles))])
    ax.set_yticklabels([f"unit {c}  max {v:.2f}" for c, v in zip(top.channels, top.values[:, 0])],
                       fontsize=7)
    what = "crop | deconvnet projection" if top.projections is not None else "crop"
    ax.set_title(f"{top.name}: top {top.crops.shape[1]} inputs per unit ({what})", fontsize=9)
    return _save(fig, path)


def plot_images(images, path=None, titles=None, ncols=None, title=None):
    """A row (or grid) of images ``(n, C, H, W)``, each on its own min-max scale."""
    images = np.asarray(images)
    n = len(images)
    ncols = ncols or min(n, 10)
    rows = math.ceil(n / ncols)
    fig = Figure(figsize=(1.6 * ncols, 1.8 * rows + (0.4 if title else 0)))
    for i, img in enumerate(images):
        ax = fig.add_subplot(rows, ncols, i + 1)
        _show(ax, _unit_range(_display(img)), vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


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
        tiles.append(np.stack([[_unit_range(_display(i)) for i in s.images] for s in snaps]))
        panels.append((0, f"maximization, channels {list(evolution.maximize_channels)}"))
    mosaics = [_mosaic(t) for t in tiles]
    # panels one above the other: filter tiles and images differ in size
    fig = Figure(figsize=(3 + max(mo.shape[1] for mo in mosaics) / 14,
                          1 + sum(mo.shape[0] for mo in mosaics) / 14))
    axes = fig.subplots(len(mosaics), 1, squeeze=False,
                        height_ratios=[mo.shape[0] for mo in mosaics])[:, 0]
    for ax, t, mosaic, (vmin, title) in zip(axes, tiles, mosaics, panels):
        _show(ax, mosaic, vmin=vmin, vmax=1)
        ax.set_title(title, fontsize=9)
        h = t.shape[2]
        ax.set_yticks([i * (h + GAP) + h / 2 for i in range(len(snaps))])
        ax.set_yticklabels([f"epoch {s.epoch}" for s in snaps], fontsize=8)
    axes[0].set_yticklabels([f"epoch {s.epoch}  max|w| {mm:.2f}" for s, mm in zip(snaps, m)],
                            fontsize=8)
    return _save(fig, path)
