"""Parallel branches whose outputs are stacked on the channel axis (Inception).

``Concat([b0, b1, ...])`` gives every branch the same input and concatenates
their outputs along the channels::

    x        (N, C, H, W)
    y_i      = b_i.forward(x)                 (N, C_i, H', W')   same H', W' for all i
    y        = [y_0 | y_1 | ...]              (N, sum_i C_i, H', W')

Backward: the output gradient is cut back into the branches' channel ranges,
and since ``x`` fed every branch, the input gradients add up::

    g_i      = g[:, start_i : start_i + C_i]
    grad_x   = sum_i b_i.backward(g_i)

Parameters are named ``"{branch}.{name}"`` (``"1.0.weight"`` is the weight of
layer 0 of branch 1), as PyTorch names a module holding a list of branches.
"""
from ..backend import get_array_module
from .base import Layer, check_distinct_layers


class Concat(Layer):
    """``Concat([branch, ...])``: the branches side by side, their outputs joined on the
    channels (an inception module); each branch a Layer, often a ``Sequential``.

    Shapes: ``x (N, C, H, W)`` -> ``(N, C_1 + C_2 + ..., H', W')`` (the branches agree on
    ``H', W'``).
    Forward: ``y = concat_i b_i.forward(x)`` along axis 1.
    Backward: ``dx = sum_i b_i.backward(g[:, start_i : start_i + C_i])``.
    Kept for backward: each branch's channel count (the branches keep their own).
    """

    def __init__(self, branches):
        super().__init__()
        self.branches = list(branches)
        if not self.branches:
            raise ValueError(f"{type(self).__name__} needs at least one branch")
        for i, branch in enumerate(self.branches):
            if not isinstance(branch, Layer):
                raise TypeError(f"{type(self).__name__} branch {i} is not a Layer: {branch!r}")
        check_distinct_layers(self)

    def forward(self, x):
        """``x (N, C, H, W)`` -> ``(N, sum of the branches' channels, H', W')``."""
        self.check_input(x, 4, "(N, C, H, W)")
        outs = [branch.forward(x) for branch in self.branches]
        shapes = [tuple(o.shape[2:]) for o in outs]
        if len(set(shapes)) != 1 or len({o.shape[0] for o in outs}) != 1:
            raise ValueError(f"{type(self).__name__}: the branches' outputs must agree in batch "
                             f"and spatial size, got {[tuple(o.shape) for o in outs]}")
        self.channels = [o.shape[1] for o in outs]     # where to cut the gradient in backward
        y = get_array_module(x).concatenate(outs, axis=1)
        self.out_shape = tuple(y.shape)
        return y

    def backward(self, grad_out):
        """``grad_out (N, sum C_i, H', W')`` -> ``grad_x (N, C, H, W)``, the branches' sum."""
        self.check_grad(grad_out, getattr(self, "out_shape", None))
        xp = get_array_module(grad_out)
        grad_x, start = None, 0
        for branch, c in zip(self.branches, self.channels):
            # a contiguous copy of the channel slice: kernels expect C-ordered arrays
            g = branch.backward(xp.ascontiguousarray(grad_out[:, start:start + c]))
            grad_x = g if grad_x is None else grad_x + g
            start += c
        return grad_x

    def children(self):
        return self.branches

    def output_shape(self, input_shape):
        shapes = [tuple(b.output_shape(input_shape)) for b in self.branches]
        if len({s[1:] for s in shapes}) != 1:
            raise ValueError(f"{type(self).__name__}: the branches give different spatial sizes "
                             f"{shapes} for input {tuple(input_shape)}")
        return (sum(s[0] for s in shapes),) + shapes[0][1:]

    def macs(self, input_shape):
        return sum(b.macs(input_shape) for b in self.branches)

    def __repr__(self):
        inner = "\n".join("  " + f"({i}) {b!r}".replace("\n", "\n  ")
                          for i, b in enumerate(self.branches))
        return f"{type(self).__name__}(\n{inner}\n)"


class Inception(Concat):
    """An Inception module (Szegedy et al. 2014): a ``Concat`` of four branches,
    1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool -> 1x1, each conv followed by ReLU.

    Shapes: ``x (N, C, H, W)`` -> ``(N, c1 + c3 + c5 + pool_proj, H, W)``.
    Forward: ``y = concat_i b_i.forward(x)`` along axis 1, as ``Concat``.
    Backward: ``dx = sum_i b_i.backward(g[:, start_i : start_i + C_i])``.
    Kept for backward: as ``Concat``.

    Only the name differs from ``Concat``, so ``summary()`` rows read "Inception";
    ``minicnn.models.inception(...)`` builds one.
    """
