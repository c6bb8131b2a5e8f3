"""Running part of a model to look inside it, without disturbing it.

Visualizations run forward and backward passes on a model that may be in the
middle of training. ``probing(model)`` puts it in eval mode (no dropout) and
freezes every parameter inside (``requires_grad = False``): an explanation's
backward pass then computes only what flows to the input, not the weight
gradients, and leaves the parameters' ``grad`` arrays as they were. On
leaving, the training and ``requires_grad`` flags are restored.
"""
import contextlib
from numbers import Integral

from ..backend import get_array_module, to_device
from ..layers import Softmax
from ..training.inference import evaluating


@contextlib.contextmanager
def probing(model):
    """``with probing(model): ...`` -- eval mode and frozen weights inside; flags
    restored after (the ``grad`` arrays are never touched)."""
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    with evaluating(model):
        try:
            for p, _ in frozen:
                p.requires_grad = False
            yield model
        finally:
            for p, flag in frozen:
                p.requires_grad = flag


def layer_index(model, layer):
    """A non-negative index into ``model.layers`` (negative indices count from the end).

    ``layer=None`` means the last layer that is not a ``Softmax``: the logits,
    since gradients through a saturated softmax vanish.
    """
    n = len(model.layers)
    if layer is None:
        layer = n - 1
        while layer > 0 and isinstance(model.layers[layer], Softmax):
            layer -= 1
        return layer
    if not isinstance(layer, Integral) or isinstance(layer, bool):
        raise ValueError(f"layer must be a layer index (an int) or None, got {layer!r}")
    if not -n <= layer < n:
        raise IndexError(f"layer {layer} is out of range for a model with {n} layers")
    return layer % n


def layer_name(model, index):
    """``"3 Conv2D"``: the index and class name used in figure titles."""
    return f"{index} {type(model.layers[index]).__name__}"


def as_model_input(model, x):
    """Put a host array on the model's device (a no-op when it is already there)."""
    return to_device(x, getattr(model, "device", "cpu"))


def unit_gradient(act, channel, position=None):
    """The gradient that selects one unit of ``act``: ones at the unit, zeros elsewhere.

    ``act`` is ``(N, C, H, W)`` or ``(N, F)``. On a 4-D activation
    ``position=(y, x)`` picks that unit, ``None`` the centre unit
    ``(H // 2, W // 2)``, and ``"mean"`` the whole channel with weight
    ``1 / (H*W)`` (so the objective is the channel's spatial mean).
    """
    xp = get_array_module(act)
    grad = xp.zeros_like(act)
    if act.ndim == 2:
        grad[:, channel] = 1.0
    elif isinstance(position, str):
        if position != "mean":
            raise ValueError(f"position must be (y, x), None (centre) or 'mean', got {position!r}")
        grad[:, channel] = 1.0 / (act.shape[2] * act.shape[3])
    else:
        y, x = position if position is not None else (act.shape[2] // 2, act.shape[3] // 2)
        grad[:, channel, y, x] = 1.0
    return grad
