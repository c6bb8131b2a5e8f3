"""The figure of a ``features.DenseFeatures``: ``draw_dense_features``.

Three rows, each laid out on its own (matplotlib subfigures, constrained layout):
the image, the signals and the contribution table; the traced signal's weights,
input map and the first filters; each traced input's patch and filter. Signed
panels are drawn red-blue on a symmetric scale with their colour bar.
"""
import numpy as np

from ..files.atomic import save_figure


def draw_dense_features(result, class_names=None, fig=None, path=None):
    """A figure of a ``DenseFeatures``. Row 1: the image (with the input boxes of
    the traced units), the signals, the contribution table with each class's
    logit and probability. Row 2: the traced signal's dense weights on every
    pooled channel, its input map, the first conv filters. Row 3: for each traced
    input, the image patch its conv unit sees and that unit's filter (one tile per
    input channel). Written to ``path`` if given; returns the ``Figure``.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    r = result
    k, n_signals = r.contributions.shape
    names = class_names or [str(i) for i in range(k)]
    fig = fig or Figure(figsize=(13, 9.5))
    fig.set_layout_engine("constrained")
    rows = fig.subfigures(3, 1, height_ratios=[3.4, 2.2, 2.4])
    first = rows[0].subplots(1, 3, width_ratios=[1.3, 0.8, 4.2])

    ax = first[0]
    _show(ax, r.image, f"input: predicted {names[r.predicted]} "
                       f"(p={r.probabilities[r.predicted]:.2f})\nboxes: the traced inputs")
    for t in r.inputs:
        ax.add_patch(Rectangle((t.box.left - 0.5, t.box.top - 0.5), t.box.width, t.box.height,
                               fill=False, color="tab:orange", lw=1.2))

    ax = first[1]
    ax.barh(np.arange(n_signals), r.signals,
            color=["tab:orange" if j == r.signal else "tab:gray" for j in range(n_signals)])
    ax.set_yticks(range(n_signals))
    ax.tick_params(labelsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("s[j]", fontsize=8)
    ax.set_ylabel("signal j", fontsize=8)
    ax.set_title(f"signals s[j] (after ReLU)\ntraced: {r.signal}", fontsize=9)

    ax = first[2]
    lim = float(np.abs(r.contributions).max()) or 1.0
    im = ax.imshow(r.contributions, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_yticks(range(k))
    ax.set_yticklabels([f"{names[c]}: {r.logits[c]:+.1f}  p={r.probabilities[c]:.2f}"
                        for c in range(k)], fontsize=8)
    ax.set_xticks(range(n_signals))
    ax.set_xlabel("signal j", fontsize=8)
    ax.set_ylabel("class k: logit, probability", fontsize=8)
    ax.set_title("s[j] * W[k, j]: red pushes toward class k, blue against "
                 "(logit = row sum + bias)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03).ax.tick_params(labelsize=7)

    second = rows[1].subplots(1, 3, width_ratios=[2.2, 1, 1.2])
    _show(second[0], _strip(r.signal_weights, ncols=4),
          f"dense weights V[{r.signal}] of signal {r.signal}\n"
          f"on each pooled channel 0..{len(r.signal_weights) - 1}", diverging=True)
    _show(second[1], r.input_map, f"d s[{r.signal}] / d input ({r.rule})", diverging=True)
    if r.first_filters is not None:
        _show(second[2], _strip(r.first_filters[:, 0], ncols=4), "first conv layer's filters",
              diverging=True)
    else:
        second[2].set_axis_off()

    third = rows[2].subplots(1, 6)
    for ax in third[2 * len(r.inputs[:3]):]:
        ax.set_axis_off()
    for i, t in enumerate(r.inputs[:3]):
        b = t.box
        _show(third[2 * i], r.image[:, b.top:b.bottom, b.left:b.right],
              f"input rows {b.top}:{b.bottom}, cols {b.left}:{b.right}\n"
              f"seen by conv unit {t.conv} of ch {t.pooled[0]}")
        if r.filters is not None:
            _show(third[2 * i + 1], _strip(r.filters[i], ncols=2),
                  f"its filter, a tile per input ch\n"
                  f"(+{t.contribution:.2f} to s[{r.signal}])", diverging=True)
        else:
            third[2 * i + 1].set_axis_off()
    fig.suptitle(f"The last dense layer as a feature library: signal {r.signal} traced back")
    return save_figure(fig, path, dpi=90)


def _strip(maps, ncols):
    """2-D maps ``(n, h, w)``, ``ncols`` to a row, with a blank (NaN) line between them."""
    n, h, w = maps.shape
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + 1) - 1, ncols * (w + 1) - 1), np.nan)
    for i, m in enumerate(maps):
        r, c = divmod(i, ncols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = m
    return out


def _show(ax, img, title, diverging=False):
    """A grey image, or a signed one on a symmetric red-blue scale with its colour bar."""
    from matplotlib.ticker import MaxNLocator

    img = img[0] if img.ndim == 3 else img
    if diverging:
        lim = float(np.nanmax(np.abs(img))) or 1.0
        shown = ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        bar = ax.figure.colorbar(shown, ax=ax, fraction=0.05, shrink=0.9)
        bar.ax.tick_params(labelsize=7)
        bar.locator = MaxNLocator(3, symmetric=True)
    else:
        ax.imshow(img, cmap="gray")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
