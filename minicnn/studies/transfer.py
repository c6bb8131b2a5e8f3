"""Transfer learning: reuse trained convolution layers for new classes and new images.

The seed's "Feature generalization": the convolution layers of a network
trained on some classes compute features that serve other classes too. Freeze
them (``layer.freeze()``: their parameters keep ``requires_grad = False``, so
the optimizer skips them), re-initialize the dense layers and train only those
on the new task. Compare with the same network trained from scratch on the same
data with the same number of optimizer steps.

(a) digits 0-4 -> digits 5-9 (the classifier keeps its 10 outputs; the new
    task's labels are simply 5..9).
(b) MNIST -> Fashion-MNIST with ``k`` labelled images per class
    (``sample_per_class``), like the seed's Caltech tables: the fewer labels,
    the more the borrowed features should help.

Frozen layers run forward and backward like any other (the engine has no
special case for them); only the update is skipped.
"""
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy, device_of, to_device
from ..init import initial_weights
from ..layers import Flatten, SoftmaxCrossEntropy
from ..optim import Adam


def feature_layers(model):
    """How many leading layers compute features: up to and including ``Flatten``."""
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Flatten):
            return i + 1
    raise ValueError("transfer learning needs a model with a Flatten layer between "
                     "its convolutional and dense parts")


def reinitialize(layers, seed=0):
    """Draw fresh weights for every layer with weights in ``layers`` (an iterable,
    e.g. a slice ``model[k:]``), with each layer's own init scheme; in place."""
    rng = np.random.default_rng(seed)
    for layer in layers:
        weight = getattr(layer, "weight", None)
        if weight is None:
            continue
        shape = weight.shape
        receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
        w, b = initial_weights(getattr(layer, "init", "he"), shape, fan_in, fan_out, rng)
        device = device_of(weight.value)              # keep the layer where it is
        weight.value = to_device(w, device)
        if layer.bias is not None:
            layer.bias.value = to_device(b, device)


def transfer_model(source, make_model, seed=0):
    """A copy of ``source``'s weights in ``make_model(seed)``, with its feature
    layers frozen and its dense layers re-initialized (seeded)."""
    model = make_model(seed)
    model.load_state_dict(source.state_dict())
    k = feature_layers(model)
    model[:k].freeze()                 # the slice shares the layers: this freezes them
    reinitialize(model[k:], seed=seed + 1)
    return model


def sample_per_class(labels, k, seed=0, classes=None):
    """Indices of exactly ``k`` examples of each class (all of them when ``k`` is
    None), drawn without replacement with a seeded generator, in ascending order.

    ``classes`` defaults to the labels present. Raises if a class has fewer than ``k``.
    """
    labels = as_numpy(labels)
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    rng = np.random.default_rng(seed)
    picked = []
    for c in classes:
        where = np.flatnonzero(labels == c)
        if k is None:
            picked.append(where)
            continue
        if len(where) < k:
            raise ValueError(f"class {c} has {len(where)} examples, fewer than k={k}")
        picked.append(rng.choice(where, size=k, replace=False))
    return np.sort(np.concatenate(picked))


def select_classes(images, labels, classes):
    """The examples whose label is in ``classes`` (labels unchanged)."""
    keep = np.isin(as_numpy(labels), list(classes))
    return images[keep], labels[keep]


def accuracy(model, images, labels, batch_size=500):
    """Fraction of ``images (N, C, H, W)`` whose argmax logit equals ``labels (N,)``, in eval mode."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = as_numpy(model(images[i:i + batch_size]))
        correct += int((logits.argmax(axis=1) == as_numpy(labels[i:i + batch_size])).sum())
    model.train(was_training)
    return correct / max(len(images), 1)


def train_steps(model, images, labels, steps, batch_size=64, lr=1e-3, seed=0):
    """Train ``model`` with Adam for exactly ``steps`` minibatch updates, reshuffling
    after each pass (so a tiny set is seen many times, a big one maybe partly).
    Frozen parameters are skipped by the optimizer. Returns the last loss.

    A plain loop (until ``minicnn.training.trainer.Trainer`` is there to use): the budget
    here is counted in steps so that two runs on the same data cost the same.
    """
    rng = np.random.default_rng(seed)
    optimizer, loss_fn = Adam(model.parameters(), lr=lr), SoftmaxCrossEntropy()
    model.train()
    n, order, pos, loss = len(images), np.empty(0, int), 0, float("nan")
    batch_size = min(batch_size, n)
    for _ in range(steps):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        optimizer.zero_grad()
        loss = float(loss_fn(model(images[idx]), labels[idx]))
        model.backward(loss_fn.backward())
        optimizer.step()
    model.eval()
    return loss


@dataclass
class DigitsTransfer:
    """Accuracies (fractions) of study (a) on the test digits of each task."""
    pretrain: float        # the source net on digits 0-4
    transfer: float        # frozen features, new dense layers, on digits 5-9
    scratch: float         # the whole net trained from scratch, same steps, on digits 5-9
    steps: int


def digits_transfer(make_model, train, test, steps, source_steps=None, batch_size=64,
                    lr=1e-3, seed=0, old=(0, 1, 2, 3, 4), new=(5, 6, 7, 8, 9)):
    """Study (a). ``train`` and ``test`` are ``(images, labels)``; ``make_model(seed)``
    builds a fresh network. Returns ``(DigitsTransfer, source_model)``."""
    source = make_model(seed)
    train_steps(source, *select_classes(*train, old), source_steps or steps, batch_size, lr, seed)
    new_train, new_test = select_classes(*train, new), select_classes(*test, new)
    moved = transfer_model(source, make_model, seed)
    train_steps(moved, *new_train, steps, batch_size, lr, seed + 2)
    scratch = make_model(seed + 3)
    train_steps(scratch, *new_train, steps, batch_size, lr, seed + 2)
    result = DigitsTransfer(pretrain=accuracy(source, *select_classes(*test, old)),
                            transfer=accuracy(moved, *new_test),
                            scratch=accuracy(scratch, *new_test), steps=steps)
    return result, source


@dataclass
class FewLabelsRow:
    """One row of study (b): ``per_class`` labelled images (None: all of them)."""
    per_class: object
    n_train: int
    pretrained: float
    scratch: float
    steps: int


def few_labels_transfer(source, make_model, train, test, per_class=(15, 30, 60, None),
                        steps=300, batch_size=64, lr=1e-3, seed=0):
    """Study (b): for each ``k`` in ``per_class`` train a transferred copy of
    ``source`` (frozen features) and a fresh network on ``k`` images per class of
    ``train``, ``steps`` updates each; test accuracy on ``test``. ``steps`` is an
    int or a dict ``{k: steps}``. Returns a list of ``FewLabelsRow``."""
    rows = []
    for k in per_class:
        idx = sample_per_class(train[1], k, seed=seed)
        x, y = train[0][idx], train[1][idx]
        n_steps = steps[k] if isinstance(steps, dict) else steps
        moved = transfer_model(source, make_model, seed)
        train_steps(moved, x, y, n_steps, batch_size, lr, seed + 2)
        fresh = make_model(seed + 3)
        train_steps(fresh, x, y, n_steps, batch_size, lr, seed + 2)
        rows.append(FewLabelsRow(k, len(idx), accuracy(moved, *test), accuracy(fresh, *test),
                                 n_steps))
    return rows


def format_few_labels(rows, pretrained_name="MNIST features (frozen)"):
    """A Markdown table of ``few_labels_transfer`` rows, accuracies in percent."""
    lines = [f"| labelled images per class | training images | {pretrained_name} "
             f"| from scratch | steps |", "|---|---|---|---|---|"]
    for r in rows:
        k = "all" if r.per_class is None else r.per_class
        lines.append(f"| {k} | {r.n_train} | {100 * r.pretrained:.2f}% | "
                     f"{100 * r.scratch:.2f}% | {r.steps} |")
    return "\n".join(lines)
