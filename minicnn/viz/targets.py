"""What an attribution explains (a *target*) and the one backward pass every method runs.

A target is one number per image, chosen in some layer ``k`` of a ``Sequential``:

- a **class**: an int (the same class for every image), a sequence of ``N`` ints
  (one per image) or ``None`` (each image's predicted class). The number is the
  class's *pre-softmax logit*: the output of the model's last layer, or of the
  layer before a final ``Softmax``. A saturated softmax has a near-zero gradient,
  so attributing the probability would give blank maps.
- a **unit**: ``Unit(layer, channel, position=None)``, the activation of one
  channel of layer ``layer``'s output at ``position = (y, x)``; with
  ``position=None``, at that channel's strongest position in each image.
  For a dense layer (``(N, F)`` output) ``channel`` is the feature index.

The backward pass (``minicnn.viz.backward``) is started by a one-hot gradient at
the target in the layer-``k`` output, ``d(target)/d(out_k) = e_target``, and run
through ``model[:k+1]``.
"""
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy, get_array_module
from ..layers import Softmax
from .probe import layer_index, probing


@dataclass(frozen=True)
class Unit:
    """Channel ``channel`` of layer ``layer``'s output, at ``position = (y, x)``
    or, with ``position=None``, at the channel's strongest position per image."""
    layer: int
    channel: int
    position: tuple = None


@dataclass(frozen=True)
class Resolved:
    """A target made concrete for a batch: layer ``index`` and the index arrays
    ``where`` that pick one element per image from that layer's ``(N, ...)`` output."""
    index: int
    where: tuple


def logits_index(model):
    """Index of the layer whose output is the logits (the last non-``Softmax`` layer)."""
    return layer_index(model, None)


def resolve_target(model, x, target):
    """Fix ``target`` for the batch ``x (N, C, H, W)``: predicted classes and
    strongest positions are looked up once here, so methods that run many
    passes (SmoothGrad, integrated gradients, occlusion) keep explaining the
    same number. Returns a ``Resolved``; a ``Resolved`` is passed through."""
    if isinstance(target, Resolved):
        return target
    model.check_batch(x)             # one line: the shape, dtype or device it expects
    xp = get_array_module(x)
    n = x.shape[0]
    rows = xp.arange(n)
    if isinstance(target, Unit):
        k = layer_index(model, target.layer)
        shape = model[:k + 1].output_shape(x.shape[1:])
        _check_unit(target, k, shape)
        channel = xp.full(n, target.channel)
        if len(shape) == 1:                                              # dense: no positions
            return Resolved(k, (rows, channel))
        if target.position is not None:
            y, x_ = target.position
            return Resolved(k, (rows, channel, xp.full(n, y), xp.full(n, x_)))
        act = _forward(model, x, k)[:, target.channel]                 # (N, H, W)
        flat = act.reshape(n, -1).argmax(axis=1)                        # first maximum
        return Resolved(k, (rows, channel, flat // act.shape[2], flat % act.shape[2]))
    k = logits_index(model)
    if target is None:
        classes = _forward(model, x, k).argmax(axis=1)
    else:
        classes = xp.asarray(_class_targets(target, n, model[:k + 1].output_shape(x.shape[1:])))
    return Resolved(k, (rows, classes))


def _class_targets(target, n, logits_shape):
    """``target`` (an int, or one per image) as ``(n,)`` int64 classes, each checked
    against the model's ``logits_shape``; else a ``ValueError`` in one line."""
    classes = as_numpy(target)
    if classes.dtype.kind not in "iu" or classes.ndim > 1:
        raise ValueError(f"target must be a class index (an int), one per image, None or a "
                         f"Unit, got {target!r}")
    if classes.size not in (1, n):
        raise ValueError(f"target gives {classes.size} classes for {n} images: give one class, "
                         f"or one per image")
    count = logits_shape[0]
    wrong = classes[(classes < 0) | (classes >= count)]
    if wrong.size:
        raise ValueError(f"target class {wrong[0]} is out of range: the model has {count} "
                         f"outputs (classes 0 to {count - 1})")
    return np.broadcast_to(classes.reshape(-1), (n,)).astype(np.int64)


def _check_unit(unit, k, shape):
    """Refuse ``unit`` unless it lies inside ``shape``, layer ``k``'s output per image."""
    name = f"Unit(layer={unit.layer}, channel={unit.channel}" + \
        (f", position={tuple(unit.position)})" if unit.position is not None else ")")
    if not 0 <= unit.channel < shape[0]:
        raise ValueError(f"{name}: layer {k} has {shape[0]} channels (0 to {shape[0] - 1})")
    if unit.position is not None and len(shape) == 3:
        y, x = unit.position
        if not (0 <= y < shape[1] and 0 <= x < shape[2]):
            raise ValueError(f"{name}: layer {k}'s output is {shape[1]}x{shape[2]}, so a "
                             f"position runs from (0, 0) to ({shape[1] - 1}, {shape[2] - 1})")


def as_baseline(x, baseline, owner):
    """The reference input of DeepLIFT and integrated gradients, ``x``'s shape, dtype and
    device: zeros for ``None``, else ``baseline`` broadcast to ``x`` (one image for every
    image of the batch, say); a ``ValueError`` naming ``owner`` when it does not broadcast."""
    xp = get_array_module(x)
    if baseline is None:
        return xp.zeros_like(x)
    baseline = xp.asarray(baseline, dtype=x.dtype)
    try:
        fits = np.broadcast_shapes(baseline.shape, x.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{owner}: the baseline has shape {tuple(baseline.shape)}, which does "
                         f"not broadcast to x's shape {tuple(x.shape)}")
    return xp.broadcast_to(baseline, x.shape).copy()


def _forward(model, x, k):
    with probing(model):
        return model[:k + 1].forward(x)


def target_value(model, x, target):
    """The target's value for each image, ``(N,)`` (a logit or a unit's activation)."""
    target = resolve_target(model, x, target)
    return _forward(model, x, target.index)[target.where]


def class_probabilities(model, x):
    """Softmax of the logits, ``(N, classes)``: the model's own output if it ends in
    ``Softmax``, otherwise computed here (stably, by subtracting the maximum)."""
    k = logits_index(model)
    logits = _forward(model, x, k)
    return Softmax().forward(logits)


__all__ = ["Unit", "Resolved", "resolve_target", "target_value", "as_baseline",
           "class_probabilities", "logits_index"]
