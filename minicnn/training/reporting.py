"""What a training run writes for people to read: the metrics log, the
learning curves, the confusion matrix (as text and as a picture).

The metrics log is JSON lines, one record per line, of two kinds::

    {"kind": "step",  "epoch": 1, "step": 50,  "loss": 0.41, "train_acc": 0.88,
     "test_acc": null, "seconds": 12.3}
    {"kind": "epoch", "epoch": 1, "step": 938, "loss": 0.15, "train_acc": 0.95,
     "test_acc": 0.987, "test_loss": 0.04, "seconds": 401.2, "images_per_s": 150.0}

``step`` counts optimizer steps since the start of the run, ``seconds`` the
training wall time since the start of the run (resumed runs continue both).
Step records average the loss and accuracy over the steps since the last
record; epoch records over the whole epoch.
"""
import json
import math
import os

import numpy as np

from ..files.atomic import atomic_write, save_figure, write_error


class MetricsLog:
    """Appends records to a JSON-lines file and keeps them in ``records``.

    ``MetricsLog(path, records)`` rewrites the file with ``records`` first: a
    resumed run starts from its checkpoint's records, so the lines of an epoch
    that was interrupted before its checkpoint do not stay in the log.
    """

    def __init__(self, path, records=()):
        self.path = os.fspath(path)
        self.records = [dict(r) for r in records]
        atomic_write(self.path, lambda f: f.write(
            "".join(json.dumps(r) + "\n" for r in self.records).encode()))

    def append(self, record):
        self.records.append(dict(record))
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as err:          # a full disk: say which file, in one line
            raise write_error(self.path, err) from None

    def epochs(self):
        return [r for r in self.records if r["kind"] == "epoch"]


def read_metrics(path):
    """The records of a metrics log, in order."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _two_and_five(value, _):
    """A log axis's minor tick label: 0.2, 0.5, 2, 5, ... only (all nine would overlap)."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if round(mantissa, 6) in (2.0, 5.0) else ""


def plot_learning_curves(records, path=None):
    """Loss and accuracy against steps, two panels (with the validation split's per
    epoch, when the run has one); written to ``path`` (PNG) if given. Returns the ``Figure``."""
    import matplotlib.ticker
    from matplotlib.figure import Figure

    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot([r["step"] for r in steps], [r["loss"] for r in steps],
                 lw=1, label="train (running)")
    ax_loss.plot([r["step"] for r in epochs], [r["test_loss"] for r in epochs],
                 "o-", label="test")
    ax_loss.set(xlabel="step", ylabel="cross-entropy loss", yscale="log", title="loss")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")  # 0.1, not 10^-1
    ax_loss.yaxis.set_major_formatter(plain)
    ax_loss.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(_two_and_five))
    ax_acc.plot([r["step"] for r in steps], [100 * r["train_acc"] for r in steps],
                lw=1, label="train (running)")
    ax_acc.plot([r["step"] for r in epochs], [100 * r["test_acc"] for r in epochs],
                "o-", label="test")
    held = [r for r in epochs if r.get("val_acc") is not None]   # runs with --validation
    if held:
        ax_loss.plot([r["step"] for r in held], [r["val_loss"] for r in held], "s--",
                     label="validation")
        ax_acc.plot([r["step"] for r in held], [100 * r["val_acc"] for r in held], "s--",
                    label="validation")
    ax_acc.set(xlabel="step", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


# -- confusion matrix ----------------------------------------------------------------
def confusion_matrix(labels, predictions, num_classes):
    """``C[i, j]`` = how many examples of true class ``i`` were predicted as ``j``."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    flat = labels.astype(np.int64) * num_classes + predictions.astype(np.int64)
    return np.bincount(flat, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_accuracy(matrix):
    """Accuracy on each true class (the diagonal over the row sums); NaN for an
    absent class."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(matrix) / totals


def format_confusion(matrix, class_names):
    """The matrix as a text table: rows are true classes, columns predictions,
    with each class's accuracy on the right. Long class names (Fashion-MNIST)
    label the rows as ``"index name"`` and the columns by index only."""
    names = [str(n) for n in class_names]
    width = max(len(str(int(matrix.max()))), 3) + 2
    if max(len(n) for n in names) < width:
        rows, cols = names, names
    else:
        rows, cols = [f"{i} {n}" for i, n in enumerate(names)], [str(i) for i in range(len(names))]
    first = max(max(len(r) for r in rows), len("true\\pred")) + 2
    head = "true\\pred".ljust(first) + "".join(c.rjust(width) for c in cols) + "   accuracy"
    lines = [head, "-" * len(head)]
    for label, row, acc in zip(rows, matrix, per_class_accuracy(matrix)):
        lines.append(label.ljust(first) + "".join(str(int(v)).rjust(width) for v in row)
                     + f"   {100 * acc:7.2f}%")
    return "\n".join(lines)


def plot_confusion(matrix, class_names, path=None, title="confusion matrix"):
    """The matrix as a heat map with the counts written in the cells; written to
    ``path`` (PNG) if given. Returns the ``Figure``."""
    from matplotlib.figure import Figure

    k = len(class_names)
    fig = Figure(figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k))
    ax = fig.add_subplot()
    # A log-like scale: the diagonal holds ~1000s and the errors ~1s, so a linear
    # colour scale would show only the diagonal.
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                dark = np.log1p(matrix[i, j]) > np.log1p(matrix.max()) / 2
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
    long_names = max(len(str(n)) for n in class_names) > 3
    ax.set_xticks(range(k), [str(n) for n in class_names], rotation=45 if long_names else 0,
                  ha="right" if long_names else "center")
    ax.set_yticks(range(k), [str(n) for n in class_names])
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
