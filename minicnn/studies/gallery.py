"""The misclassification gallery: every test error of a model in one figure.

``predict_proba`` runs a model over a set in eval mode; ``misclassified``
finds the errors from predictions; ``confused_pairs`` counts the
``true -> predicted`` pairs; ``draw_gallery`` tiles the wrong images, each
titled ``true->predicted``, with the count in the figure's title.
"""
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy
from ..files.atomic import save_figure
from ..layers import Softmax
from ..layers.activations import softmax
from ..training.inference import chunks, eval_forward


def predict_proba(model, images, batch_size=500):
    """Class probabilities ``(N, K)`` (NumPy) for ``images (N, C, H, W)``, in eval mode.

    A model that ends in ``Softmax`` is taken as is; otherwise softmax is
    applied to its logits. ``model`` may also be any callable returning
    probabilities for a NumPy batch (e.g. a scikit-learn wrapper).
    """
    if not hasattr(model, "layers"):
        return np.concatenate([as_numpy(model(images[i:i + batch_size]))
                               for i in range(0, len(images), batch_size)])
    ends_in_softmax = isinstance(model.layers[-1], Softmax)
    return np.concatenate([as_numpy(z if ends_in_softmax else softmax(z, axis=1))
                           for z in eval_forward(model, chunks(images, batch_size))])


@dataclass
class Errors:
    """The misclassified examples of a set: ``indices`` into it, their ``true``
    and ``predicted`` classes (all ``(E,)``), and the set's size ``total``."""
    indices: np.ndarray
    true: np.ndarray
    predicted: np.ndarray
    total: int

    @property
    def count(self):
        return len(self.indices)

    @property
    def error_rate(self):
        return self.count / max(self.total, 1)


def misclassified(predicted, labels):
    """``Errors`` from predicted classes ``(N,)`` (or probabilities ``(N, K)``) and labels ``(N,)``."""
    predicted, labels = as_numpy(predicted), as_numpy(labels).astype(int)
    if predicted.ndim == 2:
        predicted = predicted.argmax(axis=1)
    if predicted.shape != labels.shape:
        raise ValueError(f"predictions {predicted.shape} and labels {labels.shape} differ in shape")
    wrong = np.flatnonzero(predicted != labels)
    return Errors(wrong, labels[wrong], predicted[wrong].astype(int), len(labels))


def confused_pairs(errors, top=10):
    """The most frequent ``((true, predicted), count)`` pairs, most frequent first
    (ties in order of the pair)."""
    counts = Counter(zip(errors.true.tolist(), errors.predicted.tolist()))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def draw_gallery(images, errors, path=None, cols=None, title=None):
    """Tile ``images[errors.indices]`` (``(N, 1, H, W)``), each titled ``true->predicted``."""
    from matplotlib.figure import Figure
    n = max(errors.count, 1)
    cols = cols or int(np.ceil(np.sqrt(n * 1.3)))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(max(cols * 0.9, 4.5), rows * 1.1 + 0.5))     # room for the title
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i, t, p in zip(axes.flat, errors.indices, errors.true, errors.predicted):
        ax.imshow(as_numpy(images[i]).reshape(images.shape[-2:]), cmap="gray_r",
                  interpolation="nearest")              # sharp pixels; a smaller PNG too
        ax.set_title(f"{t}->{p}", fontsize=9, pad=1)
    fig.suptitle(title or f"{errors.count} errors of {errors.total} "
                 f"({100 * errors.error_rate:.2f}%), true->predicted", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97), pad=0.2, h_pad=0.1, w_pad=0.1)
    return save_figure(fig, path, dpi=110)


def format_pairs(pairs):
    """Markdown table of ``confused_pairs`` output."""
    lines = ["| true -> predicted | count |", "|---|---:|"]
    lines += [f"| {t} -> {p} | {c} |" for (t, p), c in pairs]
    return "\n".join(lines)
