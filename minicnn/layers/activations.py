"""ReLU, LeakyReLU and softmax.

ReLU forward: ``y = max(x, 0)``; backward: ``dx = g * (x > 0)``, the gradient.
Explanations swap this one step for another rule (``minicnn.viz.rules``): deconvnet
sends back ``max(g, 0)``, guided backprop ``g * (x > 0) * (g > 0)``, and every other
layer keeps its ordinary backward pass: that is why those visualizations are this
small a change.
"""
from .. import kernels
from ..backend import get_array_module
from ..arguments import finite_number
from .base import Layer


class ReLU(Layer):
    """``ReLU()``, as ``torch.nn.ReLU``.

    Shapes: any ``x`` -> ``y`` of its shape.
    Forward: ``y = max(x, 0)``.
    Backward: ``dx = g * (x > 0)``.
    Kept for backward: the mask ``x > 0`` (the fast engine packs it, a bit a number).

    Explanations may swap this step for another rule (``minicnn.viz.rules``: deconvnet,
    guided backprop).
    """
    cache_names = ("active",)

    def forward(self, x):
        self.check_input(x)
        y, self.active = kernels.relu_forward(x)    # y = x * (x > 0); the mask is all that
        return y                                    # backward needs; x is never overwritten

    def backward(self, grad_out):
        self.check_grad(grad_out)
        return kernels.relu_backward(grad_out, self.derivative())        # g * dy/dx

    def derivative(self):
        """``dy/dx`` at the forward input: 1 where ``x > 0``, else 0 (the kept mask)."""
        return self.active


def softmax(z, axis=-1):
    """``p = exp(z - max z) / sum exp(z - max z)`` along ``axis``: probabilities that sum to 1.

    Subtracting the maximum changes nothing mathematically (it cancels in the
    ratio) but keeps every exponent <= 0, so ``exp`` cannot overflow.
    """
    xp = get_array_module(z)
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class Softmax(Layer):
    """``Softmax()``, as ``torch.nn.Softmax(dim=-1)`` (for inference).

    Shapes: ``z (N, K)`` -> ``p (N, K)``.
    Forward: ``p = exp(z - max z) / sum exp(z - max z)`` over the last axis.
    Backward: ``dz = p * (g - sum(g * p))``, the Jacobian-vector product.
    Kept for backward: ``p``.

    For training use ``SoftmaxCrossEntropy``, which fuses both steps.
    """
    cache_names = ("p",)

    def forward(self, z):
        self.check_input(z)
        self.p = softmax(z)
        return self.p

    def backward(self, grad_out):
        self.check_grad(grad_out)
        return self.p * (grad_out - (grad_out * self.p).sum(axis=-1, keepdims=True))


class LeakyReLU(ReLU):
    """``LeakyReLU(negative_slope=0.01)``, as ``torch.nn.LeakyReLU``.

    Shapes: any ``x`` -> ``y`` of its shape.
    Forward: ``y = x`` where ``x > 0``, else ``negative_slope * x``.
    Backward: ``dx = g * (1 where x > 0 else negative_slope)``.
    Kept for backward: the mask ``x > 0`` and the slopes.

    It is a ReLU for the explanations' rules (``minicnn.viz.rules``): deconvnet
    keeps ``max(g, 0)``, guided backprop zeroes the negative part of ``g`` first.
    """
    cache_names = ("active", "slope")

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = finite_number("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        self.check_input(x)
        self.active = x > 0
        xp = get_array_module(x)
        self.slope = xp.where(self.active, x.dtype.type(1), x.dtype.type(self.negative_slope))
        return x * self.slope

    def derivative(self):
        """1 where ``x > 0``, else ``negative_slope``: ReLU's backward does the rest."""
        return self.slope

    def config(self):
        return dict(negative_slope=self.negative_slope)
