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
    model.check_device(x)            # one line naming the model and both devices
    xp = get_array_module(x)
    n = x.shape[0]
    rows = xp.arange(n)
    if isinstance(target, Unit):
        k = layer_index(model, target.layer)
        channel = xp.full(n, target.channel)
        if len(model[:k + 1].output_shape(x.shape[1:])) == 1:          # dense: no positions
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
        classes = xp.asarray(np.broadcast_to(as_numpy(target), (n,)).astype(np.int64))
    return Resolved(k, (rows, classes))


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


__all__ = ["Unit", "Resolved", "resolve_target", "target_value",
           "class_probabilities", "logits_index"]
