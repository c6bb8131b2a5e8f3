"""Translation test: how a classifier's belief changes when the digit moves.

Each test digit is shifted by whole pixels, ``-5 .. +5`` along x or y, with the
vacated pixels filled with background (exact integer shifts, no
interpolation). For every shift we record, averaged over the digits::

    p_true   = mean_n  p(label_n | shifted x_n)
    p_win    = mean_n  max_k p(k | shifted x_n)
    accuracy = mean_n  [argmax_k p(k | shifted x_n) == label_n]

A CNN (convolution + pooling) should degrade slowly; a softmax on raw pixels
(logistic regression), whose weights are tied to absolute positions, quickly.
"""
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy
from ..data.augment import translate as shift_images  # also imported from here (invariance)
from ..files.atomic import save_figure
from .gallery import predict_proba

SHIFTS = tuple(range(-5, 6))


@dataclass
class ShiftCurves:
    """Per-shift averages for one classifier and one axis (all ``(S,)``), and
    ``winners (S, N)``: the class each image is given at each shift."""
    axis: str
    shifts: np.ndarray
    p_true: np.ndarray
    p_win: np.ndarray
    accuracy: np.ndarray
    winners: np.ndarray


def translation_curves(model, images, labels, axis="x", shifts=SHIFTS, fill=None,
                       batch_size=500):
    """``ShiftCurves`` of ``model`` (a minicnn model, or a callable giving
    probabilities) over ``images (N, C, H, W)``; ``fill=None`` uses the images'
    minimum, the background of normalized MNIST."""
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    labels = as_numpy(labels).astype(int)
    fill = float(images.min()) if fill is None else fill
    rows, winners = [], []
    for s in shifts:
        moved = shift_images(images, s if axis == "y" else 0, s if axis == "x" else 0, fill)
        p = predict_proba(model, moved, batch_size)
        win = p.argmax(axis=1)
        winners.append(win)
        rows.append((p[np.arange(len(p)), labels].mean(), p.max(axis=1).mean(),
                     (win == labels).mean()))
    p_true, p_win, acc = map(np.array, zip(*rows))
    return ShiftCurves(axis, np.array(shifts), p_true, p_win, acc, np.array(winners))


def pixel_softmax(images, labels, num_classes=None, epochs=5, lr=1e-3, seed=0):
    """Logistic regression on raw pixels: minicnn ``Dense(H*W, 10)`` trained with
    softmax cross-entropy (``codes.train_softmax``). Returns a callable
    ``images (N, 1, H, W) -> probabilities (N, K)``."""
    from .codes import train_softmax
    flat = as_numpy(images).reshape(len(images), -1)
    model = train_softmax(flat, as_numpy(labels), num_classes, epochs=epochs, lr=lr, seed=seed)
    return lambda x: predict_proba(model, as_numpy(x).reshape(len(x), -1).astype(np.float32))


def sklearn_classifier(name, images, labels, seed=0):
    """An optional scikit-learn classifier on raw pixels (``"random_forest"``, ...,
    as in ``codes``), as a probability callable; ``None`` without scikit-learn."""
    try:
        from .codes import _sklearn_classifier
        clf = _sklearn_classifier(name, seed)
    except ImportError:
        return None
    clf.fit(as_numpy(images).reshape(len(images), -1), as_numpy(labels))
    return lambda x: clf.predict_proba(as_numpy(x).reshape(len(x), -1))


def format_table(curves, metric="accuracy"):
    """Markdown table: one row per shift, columns ``"{name} x"`` and ``"{name} y"``
    in percent. ``curves`` maps a classifier's name to ``(curves_x, curves_y)``."""
    names = list(curves)
    head = "| shift | " + " | ".join(f"{n} x | {n} y" for n in names) + " |"
    lines = [head, "|---:|" + "---:|" * (2 * len(names))]
    shifts = curves[names[0]][0].shifts
    for i, s in enumerate(shifts):
        cells = [f"{100 * getattr(c, metric)[i]:.1f}" for n in names for c in curves[n]]
        lines.append(f"| {s:+d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def draw_translation(curves, single=None, path=None):
    """Panels of ``p_true`` (solid) and ``p_win`` (dashed) against the shift: x and y
    averaged over the digits for each classifier, and ``single`` (same layout,
    one digit) if given. One legend, under the panels, where it hides no curve."""
    import matplotlib
    from matplotlib.figure import Figure
    groups = [("averaged over digits", curves)] + ([("one digit", single)] if single else [])
    fig = Figure(figsize=(10, 3.6 * len(groups) + 0.5), layout="constrained")
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for row, (label, group) in zip(axes, groups):
        for k, (name, pair) in enumerate(group.items()):
            color = matplotlib.colormaps["tab10"](k)
            for ax, c in zip(row, pair):
                ax.plot(c.shifts, c.p_true, "-o", color=color, ms=3, label=f"{name}: p(true)")
                ax.plot(c.shifts, c.p_win, "--", color=color, label=f"{name}: p(winner)")
                ax.set_title(f"shift along {c.axis}, {label}", fontsize=10)
                ax.set_xlabel(f"shift in {c.axis} (pixels)")
                ax.set_ylabel("probability")
                ax.set_ylim(0, 1.02)
                ax.grid(alpha=0.3)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center",
               ncol=len(curves), fontsize=8)
    return save_figure(fig, path, dpi=110)
