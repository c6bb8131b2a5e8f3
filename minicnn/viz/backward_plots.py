"""Drawing the backward pass: the step-through and the per-layer conservation table.

Both take what ``step_through`` and ``relevance_by_layer`` computed and return one
``matplotlib.figure.Figure`` (no pyplot, the backend untouched), written to ``path`` as
well when one is given (``minicnn.files.atomic.save_figure``).
"""
import math

import numpy as np
from matplotlib.figure import Figure

from ..files.atomic import save_figure

CHECK_TOLERANCE = 1e-6      # a layer's check above this is drawn in red: its backward is wrong


def draw_step_through(records, image=0, columns=6, title=None, path=None):
    """One panel per layer (forward order) for image ``image`` of the batch: the signal
    the layer sent down (``grad_in``), as a map summed over channels for ``(C, H, W)``
    signals or a histogram for ``(F,)`` ones; titled with the layer, its norm and its
    check (red when above ``CHECK_TOLERANCE``) or the rule's distance from the gradient;
    the formula below."""
    rows = math.ceil(len(records) / columns)
    fig = Figure(figsize=(2.3 * columns, 2.7 * rows))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, record in zip(axes, records):
        signal = np.asarray(record["grad_in"][image], dtype=np.float64)
        if signal.ndim == 3:
            plane = signal.sum(axis=0)
            limit = float(np.abs(plane).max()) or 1.0
            ax.imshow(plane, cmap="seismic", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax.hist(signal.ravel(), bins=30, color="grey")
            ax.tick_params(labelsize=6)
        ax.set_title(f"{record['index']} {record['name'].split('(')[0]}\n"
                     f"|g| = {np.linalg.norm(signal):.3g}, {check_text(record)}", fontsize=7,
                     color="red" if check_failed(record) else "black")
        ax.set_xlabel(_shorten(record["formula"], 38), fontsize=6)
    for ax in axes[len(records):]:
        ax.set_axis_off()
    fig.suptitle(title or f"backward step-through, image {image}: the signal each layer "
                 "sends down", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def check_text(record):
    """A step-through record's check in a few words: "check 3.1e-10", "vs gradient 0.42"
    (a swapped rule) or "not checked"."""
    if record["check"] is not None:
        return f"check {record['check']:.1e}"
    if record["rule_vs_gradient"] is not None:
        return f"vs gradient {record['rule_vs_gradient']:.2g}"
    return "not checked"


def check_failed(record):
    """Whether the record's finite-difference check says its layer's backward is wrong."""
    return record["check"] is not None and not record["check"] <= CHECK_TOLERANCE


def _shorten(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."


def draw_relevance_by_layer(table, labels=None, residuals=None, title=None, path=None,
                            names=None):
    """``table (L + 1, N)`` from ``relevance_by_layer``: a line per image across the
    layers (``labels``: the L layer names; the last column is the output), with
    ``residuals`` (``{name: (N,)}``, e.g. ``identity_residuals``) printed beside it.
    ``names``: one per line (e.g. the methods of tables stacked side by side), shown
    in a legend."""
    table = np.asarray(table, dtype=np.float64)
    steps = table.shape[0]
    labels = list(labels or [str(i) for i in range(steps - 1)]) + ["output"]
    fig = Figure(figsize=(max(6.0, 0.55 * steps) + 3.2, 3.8))
    ax, side = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[3, 1.1]))
    for n in range(table.shape[1]):
        ax.plot(range(steps), table[:, n], marker="o", ms=3, lw=1,
                label=None if names is None else names[n])
    if names is not None:
        ax.legend(fontsize=7)
    ax.set_xticks(range(steps))
    ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("total at the layer's input", fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title or "relevance (contribution) summed per layer, a line per image",
                 fontsize=9)
    side.set_axis_off()
    lines = ["identity residuals", "(mean |r|, max |r|)", ""]
    for name, values in (residuals or {}).items():
        r = np.abs(np.asarray(values, dtype=np.float64))
        lines += [name, f"  {r.mean():.2e}, {r.max():.2e}", ""]
    side.text(0, 1, "\n".join(lines), va="top", fontsize=7, family="monospace",
              transform=side.transAxes)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["draw_step_through", "draw_relevance_by_layer", "check_text", "check_failed",
           "CHECK_TOLERANCE"]
