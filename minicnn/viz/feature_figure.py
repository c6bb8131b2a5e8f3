"""Every layer's output for one image, on one page: ``plot_feature_maps``.

The layout is computed in inches before anything is drawn, so that panels sit one
under the other with room for their titles and no blank gap:

- the input, ``INPUT`` inches high, with its colour bar;
- a spatial map ``(C, H, W)``: up to ``max_channels`` channels, ``COLUMNS`` to a row,
  a tile as wide in every layer (``WIDTH / COLUMNS``), on one grey scale per layer
  with its colour bar (the activation values);
- a flat output ``(F,)``: one strip on a colour scale with its colour bar;
- the last layer's output, when it has at most ``MAX_BARS`` values (a classifier's
  class scores), as bars labelled with the class names, the largest highlighted.
"""
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .tiles import save_tight, show_image, tile_grid, tile_mosaic

WIDTH, COLUMNS, MAX_BARS = 9.0, 16, 20      # inches for a full row of tiles or a strip
INPUT, STRIP, BARS = 1.8, 0.4, 1.5          # panel heights in inches
TITLE, BELOW_BARS = 0.34, 0.5               # room for a title above, for the bars' labels below
LEFT, RIGHT, TOP, BOTTOM = 0.55, 0.95, 0.15, 0.1
CBAR_PAD, CBAR_WIDTH = 0.08, 0.12
SCORE_NAMES = {"Dense": "logit", "Softmax": "probability"}


def _map_title(name, shape, max_channels):
    """``"3 Conv2D  (64, 14, 14), 32 of 64 channels shown"``: says when channels are left out."""
    cut = len(shape) == 3 and shape[0] > max_channels
    return f"{name}  {tuple(shape)}" + (f", {max_channels} of {shape[0]} channels shown"
                                        if cut else "")


def _panels(maps, image, max_channels):
    """``(kind, title, data, width, height)`` for each panel, sizes in inches."""
    panels = []
    if image is not None:
        img = np.asarray(image, dtype=np.float64)
        img = img if img.ndim == 2 else img.mean(axis=0)
        panels.append(("image", f"input  {tuple(np.shape(image))}", img,
                       INPUT * img.shape[1] / img.shape[0], INPUT))
    for i, m in enumerate(maps):
        act = np.asarray(m.activation, dtype=np.float64)
        title = _map_title(m.name, act.shape, max_channels)
        if act.ndim == 3:
            ncols = min(COLUMNS, len(act))
            mosaic = tile_mosaic(tile_grid(act[:max_channels], ncols=ncols))
            width = WIDTH * ncols / COLUMNS
            panels.append(("tiles", title, mosaic, width, width * mosaic.shape[0] / mosaic.shape[1]))
        elif i == len(maps) - 1 and act.size <= MAX_BARS:
            panels.append(("bars", title, act.ravel(), min(WIDTH, 0.45 * act.size + 0.4), BARS))
        else:
            panels.append(("strip", title, act.ravel()[None], WIDTH, STRIP))
    return panels


def _draw_bars(ax, name, values, class_names):
    """Bars of the last layer's ``values``, labelled; returns the largest one's label."""
    labels = [str(c) for c in class_names] if class_names is not None else \
        [str(i) for i in range(len(values))]
    if len(labels) != len(values):
        raise ValueError(f"plot_feature_maps: {len(labels)} class_names for the "
                         f"{len(values)} outputs of layer {name}")
    colours = ["tab:orange" if i == values.argmax() else "tab:gray" for i in range(len(values))]
    ax.bar(range(len(values)), values, color=colours)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(values)), labels=labels, fontsize=8)
    ax.set_xlim(-0.6, len(values) - 0.4)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("class", fontsize=8)
    ax.set_ylabel(SCORE_NAMES.get(name.split()[-1], "output"), fontsize=8)
    return labels[values.argmax()]


def plot_feature_maps(maps, path=None, image=None, max_channels=32, class_names=None):
    """Every layer's output for one image: a panel per layer titled with its name and shape.

    ``maps``: ``units.feature_maps`` output; ``image (C, H, W)`` the input, drawn first
    when given; ``class_names`` label the last layer's bars (default ``0, 1, ...``).
    Spatial maps show up to ``max_channels`` channels (the title then says e.g. "32 of
    64 channels shown"). Every panel but the bars has its colour bar.
    """
    panels = _panels(maps, image, max_channels)
    heights = [TITLE + h + (BELOW_BARS if kind == "bars" else 0) for kind, _, _, _, h in panels]
    fig_w, fig_h = LEFT + WIDTH + RIGHT, TOP + sum(heights) + BOTTOM
    fig = Figure(figsize=(fig_w, fig_h))
    top = fig_h - TOP
    for (kind, title, data, w, h), room in zip(panels, heights):
        bottom = top - TITLE - h
        ax = fig.add_axes([LEFT / fig_w, bottom / fig_h, w / fig_w, h / fig_h])
        ax.set_title(title, fontsize=9, loc="left")
        if kind == "bars":
            name = _draw_bars(ax, title.split("  ")[0], data, class_names)
            ax.set_title(f"{title}: largest {name}", fontsize=9, loc="left")
        else:
            shown = show_image(ax, data, "viridis" if kind == "strip" else "gray")
            ax.set_aspect("auto")               # the box already has the data's aspect
            cax = fig.add_axes([(LEFT + w + CBAR_PAD) / fig_w, bottom / fig_h,
                                CBAR_WIDTH / fig_w, h / fig_h])
            bar = fig.colorbar(shown, cax=cax)
            bar.ax.tick_params(labelsize=7)
            bar.locator = MaxNLocator(3 if h > 0.5 else 2)
            bar.update_ticks()
        top -= room
    return save_tight(fig, path)
