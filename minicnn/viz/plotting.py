"""Drawing attribution maps: explicit normalization, then a heat map or an overlay.

Normalization (``normalize_attribution``) is kept apart from drawing so that
it can be tested and so that every figure says what its colours mean:

- channels are summed (an attribution map has one value per pixel);
- ``sign`` picks what is shown: ``"all"`` (signed, scaled to [-1, 1] and drawn
  with a diverging colormap whose centre is exactly 0), ``"positive"``,
  ``"negative"`` (its magnitude) or ``"absolute"`` (scaled to [0, 1]);
- the scale is the ``100 - outlier_perc`` percentile of the magnitudes, and
  values beyond it are clipped: a few extreme pixels would otherwise make the
  rest of the map look blank.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state), so this
works headless with the Agg canvas.
"""
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..backend import as_numpy
from ..files.atomic import save_figure

SIGNS = ("all", "positive", "negative", "absolute")
DIVERGING, SEQUENTIAL = "bwr", "inferno"


def attribution_scale(attr, sign="all", outlier_perc=2.0, scale=None):
    """The value that ``normalize_attribution`` maps to 1 (0: the map is all zero)."""
    a = _signed(attr, sign)
    if scale is None:
        scale = np.percentile(np.abs(a), 100 - outlier_perc)
    if scale == 0:                       # percentile of a sparse map may be 0: use the max
        scale = np.abs(a).max()
    return float(scale)


def _signed(attr, sign):
    """The channel sum of ``attr``, with the part ``sign`` picks: NumPy ``(H, W)``."""
    if sign not in SIGNS:
        raise ValueError(f"sign must be one of {SIGNS}, got {sign!r}")
    a = as_numpy(attr).astype(np.float64)
    if a.ndim == 3:
        a = a.sum(axis=0)
    if a.ndim != 2:
        raise ValueError(f"an attribution map is (C, H, W) or (H, W), got shape {a.shape}")
    if sign == "positive":
        return np.maximum(a, 0)
    if sign == "negative":
        return np.maximum(-a, 0)
    return np.abs(a) if sign == "absolute" else a


def normalize_attribution(attr, sign="all", outlier_perc=2.0, scale=None):
    """``attr (C, H, W)`` or ``(H, W)`` (NumPy or CuPy) -> NumPy ``(H, W)``.

    ``sign="all"``: ``clip(a / s, -1, 1)`` with ``a`` the channel sum and ``s``
    the ``(100 - outlier_perc)`` percentile of ``|a|``: zero stays zero, so the
    map is centred on zero. Other signs give values in ``[0, 1]``: ``"positive"``
    uses ``max(a, 0)``, ``"negative"`` ``max(-a, 0)``, ``"absolute"`` ``|a|``.
    A given ``scale`` replaces the percentile (``scale=1`` shows probabilities
    as they are). An all-zero map stays all zero.
    """
    a = _signed(attr, sign)
    s = attribution_scale(a, "all", outlier_perc, scale)
    if s == 0:
        return np.zeros_like(a)
    return np.clip(a / s, -1.0 if sign == "all" else 0.0, 1.0)


def _gray(image):
    """``(C, H, W)`` -> something ``imshow`` draws: ``(H, W)`` or ``(H, W, 3)`` in [0, 1]."""
    img = as_numpy(image).astype(np.float64)
    img = (img - img.min()) / max(img.max() - img.min(), 1e-12)
    return img[0] if img.shape[0] == 1 else np.moveaxis(img[:3], 0, -1)


def draw_attribution(ax, attr, image=None, method="heat_map", sign="all", outlier_perc=2.0,
                     scale=None, cmap=None, alpha=0.6, title=None, colorbar=False, label=None):
    """Draw one attribution on a Matplotlib ``ax``; returns the ``AxesImage``.

    ``method="heat_map"`` draws the normalized map alone; ``"overlay"`` draws
    ``image (C, H, W)`` in gray and the map on top with transparency ``alpha``.
    Signed maps use a diverging colormap with limits ``[-1, 1]`` (white = 0),
    the others a sequential one on ``[0, 1]``. ``colorbar=True`` adds a colour bar
    beside the panel in the map's own units (``[-s, s]`` or ``[0, s]``, ``s`` the
    map's scale, see ``attribution_scale``), titled ``label``.
    """
    if method not in ("heat_map", "overlay"):
        raise ValueError(f"method must be 'heat_map' or 'overlay', got {method!r}")
    norm = normalize_attribution(attr, sign, outlier_perc, scale)
    lo = -1.0 if sign == "all" else 0.0
    cmap = cmap or (DIVERGING if sign == "all" else SEQUENTIAL)
    if method == "overlay":
        if image is None:
            raise ValueError("method='overlay' needs the image")
        ax.imshow(_gray(image), cmap="gray")
    shown = ax.imshow(norm, cmap=cmap, vmin=lo, vmax=1.0,
                      alpha=alpha if method == "overlay" else None)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        s = attribution_scale(attr, sign, outlier_perc, scale) or 1.0
        units = ScalarMappable(Normalize(lo * s, s), shown.get_cmap())
        bar = ax.figure.colorbar(units, ax=ax, fraction=0.046, pad=0.03)
        bar.locator = MaxNLocator(3, symmetric=sign == "all")
        bar.formatter = FuncFormatter(lambda v, _: f"{v:.2g}")     # 4e-05, not "4" and "1e-5"
        bar.ax.tick_params(labelsize=7)
        bar.set_label(label or "", fontsize=7)
    return shown


def _column_label(options, outlier_perc):
    """What a colour of a column's maps means: its label, or how the maps were scaled."""
    if options.get("label"):
        return options["label"]
    scale = options.get("scale")
    if scale is not None:
        return "value" if scale == 1 else f"value / {scale:g}"
    return f"1 = {100 - options.get('outlier_perc', outlier_perc):g}th pct of |map|"


def attribution_grid(images, columns, path=None, row_labels=None, outlier_perc=2.0,
                     cell=1.8, wrap=None):
    """A figure with one row per image: the image, then one panel per method.

    ``images (N, C, H, W)``; ``columns`` a list of ``(title, maps, options)``
    with ``maps (N, C', H, W)`` and ``options`` a dict for ``draw_attribution``
    (e.g. ``{"sign": "absolute"}`` or ``{"method": "overlay"}``). Each column gets
    one colour bar under it, on the normalized scale (every panel divided by its own
    scale), or with ``"colorbar": "panel"`` one beside each panel in the map's own
    units (e.g. probabilities); ``"label"`` names the bar. ``wrap``: at most that
    many methods side by side; the next ones go into a block below, which starts
    with the images again (so that many methods still fit a page's width). Writes a
    PNG to ``path`` if given; returns the ``Figure``.
    """
    images = as_numpy(images)
    n, k = images.shape[0], len(columns)
    wide = min(wrap or k, k)
    blocks = [columns[i:i + wide] for i in range(0, k, wide)]
    panel_bars = max(sum(dict(c[2] or {}).get("colorbar") == "panel" for c in b) for b in blocks)
    fig = Figure(figsize=(cell * (wide + 1) + 0.6 * panel_bars, len(blocks) * (cell * n + 0.7)),
                 layout="constrained")
    parts = fig.subfigures(len(blocks), 1, squeeze=False)[:, 0] if len(blocks) > 1 else [fig]
    for part, block in zip(parts, blocks):
        _draw_block(part, images, block, wide, row_labels, outlier_perc)
    return save_figure(fig, path, dpi=100)


def _draw_block(fig, images, columns, wide, row_labels, outlier_perc):
    """The images and ``columns`` (at most ``wide``) on ``fig``, a figure or subfigure."""
    n = images.shape[0]
    axes = fig.subplots(n + 1, wide + 1, squeeze=False, height_ratios=[1] * n + [0.06])
    for r in range(n):
        axes[r, 0].imshow(_gray(images[r]), cmap="gray")
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        if row_labels is not None:
            axes[r, 0].set_ylabel(str(row_labels[r]), fontsize=9)
    for ax in list(axes[n, :1]) + [ax for ax in axes[:, len(columns) + 1:].flat]:
        ax.set_axis_off()                  # under the images; right of a short last block
    for col, (title, maps, options) in enumerate(columns, start=1):
        options = dict(options or {})
        options.setdefault("outlier_perc", outlier_perc)
        per_panel = options.pop("colorbar", "column") == "panel"
        label = options.pop("label", None)
        for r in range(n):
            shown = draw_attribution(axes[r, col], maps[r], image=images[r],
                                     title=title if r == 0 else None, colorbar=per_panel,
                                     label=label if r == n - 1 else None, **options)
        if per_panel:
            axes[n, col].set_axis_off()
            continue
        bar = fig.colorbar(shown, cax=axes[n, col], orientation="horizontal")
        lo = -1 if options.get("sign", "all") == "all" else 0
        bar.set_ticks([lo, (lo + 1) / 2, 1], labels=[f"{v:g}" for v in (lo, (lo + 1) / 2, 1)])
        bar.ax.tick_params(labelsize=7)                # the ends: where the maps are clipped
        bar.set_label(_column_label({**options, "label": label}, outlier_perc), fontsize=7)
    axes[0, 0].set_title("image", fontsize=9)


__all__ = ["attribution_scale", "normalize_attribution", "draw_attribution", "attribution_grid"]
