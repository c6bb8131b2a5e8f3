"""Batch normalization (Ioffe & Szegedy 2015), as PyTorch defines it.

Each channel ``c`` is normalized over every axis but the channel axis
(``BatchNorm2D``: N, H, W of ``(N, C, H, W)``; ``BatchNorm1D``: N (and L) of
``(N, C)`` / ``(N, C, L)``), then scaled and shifted::

    mean, var = mean and biased variance of x over those M = N*H*W values
    x_hat     = (x - mean) / sqrt(var + eps)
    y         = weight * x_hat + bias                   weight, bias: (C,)

In training the batch statistics are used, and the running statistics move::

    running_mean = (1 - momentum) running_mean + momentum mean
    running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)  (unbiased)

(``momentum=None``: a plain average over all batches so far.) In eval mode
``running_mean`` / ``running_var`` replace the batch statistics, and the layer
is a fixed affine map per channel: ``y = weight * (x - rm) / sqrt(rv + eps) + bias``.
That is also what every attribution method sees in eval mode.

Backward in training, where mean and var depend on x (sums over the M values)::

    d_bias   = sum g            d_weight = sum g * x_hat
    d_xhat   = g * weight
    dx       = (d_xhat - mean(d_xhat) - x_hat * mean(d_xhat * x_hat)) / sqrt(var + eps)

In eval mode ``dx = g * weight / sqrt(running_var + eps)``. Forward keeps
``x_hat`` and ``1 / sqrt(var + eps)`` for backward.

With the fast engine on the CPU (the default) the same formulas run as fused passes
(``kernels/norm_cpu.py``: the statistics in one pass, ``x_hat`` and ``y`` in one, the
sums of backward in one and ``dx`` in one); it keeps ``x`` and the mean instead of
``x_hat``, and computes ``x_hat`` again in backward. The guards below say where.

The running statistics are buffers, not parameters: they are in
``state_dict()`` under PyTorch's names (``running_mean``, ``running_var``,
``num_batches_tracked``), but no optimizer touches them.
"""
import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..parameter import Parameter
from ..arguments import finite_number, whole_number
from .base import Layer


class _BatchNorm(Layer):
    param_names = ("weight", "bias")
    buffer_names = ("running_mean", "running_var", "num_batches_tracked")
    cache_names = ("x", "mean", "x_hat", "inv_std")
    spatial_ndims = ()        # allowed input ndims, set by the subclasses

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        name = type(self).__name__
        self.num_features = whole_number(name, "num_features", num_features)
        self.eps, self.affine = finite_number(name, "eps", eps, above=0), bool(affine)
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__} momentum must be in [0, 1] or None, "
                             f"got {momentum!r}")
        self.momentum = None if momentum is None else float(momentum)
        c = self.num_features
        self.weight = Parameter(np.ones(c, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(c, dtype=np.float32)) if affine else None
        self.running_mean = np.zeros(c, dtype=np.float32)
        self.running_var = np.ones(c, dtype=np.float32)
        self.num_batches_tracked = np.zeros((), dtype=np.int64)

    def forward(self, x):
        shapes = " or ".join(self.expected_shapes).replace("C", str(self.num_features))
        self.check_input(x, None, shapes)
        if x.ndim not in self.spatial_ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{self.label()} expects input of shape {shapes}, "
                             f"got {tuple(x.shape)}")
        xp = get_array_module(x)
        axes, shape = self._axes(x), self._param_shape(x)
        self.fused = kernels.fused_norm(x)    # the fast engine's one-pass loops, or None
        if self.training:
            m = x.size // self.num_features
            if m < 2:
                raise ValueError(f"{self.label()} in training needs more than one value per channel "
                                 f"to estimate a variance, got input of shape {tuple(x.shape)}")
            if self.fused is not None:        # the same mean and var in one pass
                mean, var = self.fused.batch_stats(x)
            else:
                mean, var = x.mean(axis=axes), x.var(axis=axes)
            self._update_running(mean, var * (m / (m - 1)))
        else:
            mean, var = self.running_mean, self.running_var
        self.inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype)          # (C,)
        self.used_batch_stats = self.training
        weight, bias = (self.weight.value, self.bias.value) if self.affine else (None, None)
        if self.fused is not None:            # y in one pass; backward recomputes x_hat from x
            self.x, self.mean = x, mean
            return self.fused.normalize(x, mean, self.inv_std, weight, bias)
        self.x_hat = (x - mean.reshape(shape)) * self.inv_std.reshape(shape)
        if not self.affine:
            return self.x_hat
        return self.x_hat * weight.reshape(shape) + bias.reshape(shape)

    def backward(self, grad_out):
        self.check_grad(grad_out)
        if self.fused is not None:            # the same sums and dx in two passes
            return self._fused_backward(grad_out)
        axes, shape = self._axes(grad_out), self._param_shape(grad_out)
        if self.affine:
            self.weight.accumulate((grad_out * self.x_hat).sum(axis=axes))
            self.bias.accumulate(grad_out.sum(axis=axes))
            g_hat = grad_out * self.weight.value.reshape(shape)
        else:
            g_hat = grad_out
        if self.used_batch_stats:       # mean and var were functions of x too
            g_hat = (g_hat - g_hat.mean(axis=axes, keepdims=True)
                     - self.x_hat * (g_hat * self.x_hat).mean(axis=axes, keepdims=True))
        return g_hat * self.inv_std.reshape(shape)

    def _fused_backward(self, grad_out):
        """``backward`` by ``kernels.norm_cpu``: one pass for the channel sums of ``g`` and
        ``g x_hat``, one for ``dx``; the same formulas, ``x_hat`` recomputed from ``x``."""
        sum_g, sum_gx = self.fused.grad_sums(grad_out, self.x, self.mean, self.inv_std)
        if self.affine:
            self.weight.accumulate(sum_gx.astype(grad_out.dtype))
            self.bias.accumulate(sum_g.astype(grad_out.dtype))
        m = grad_out.size // self.num_features
        means = (sum_g / m, sum_gx / m) if self.used_batch_stats else (None, None)
        weight = self.weight.value if self.affine else None
        return self.fused.normalize_grad(grad_out, self.x, self.mean, self.inv_std, weight,
                                         *means)

    def _update_running(self, mean, unbiased_var):
        self.num_batches_tracked = self.num_batches_tracked + 1
        m = self.momentum if self.momentum is not None else 1.0 / int(self.num_batches_tracked)
        dtype = self.running_mean.dtype
        self.running_mean = ((1 - m) * self.running_mean + m * mean).astype(dtype)
        self.running_var = ((1 - m) * self.running_var + m * unbiased_var).astype(dtype)

    def _axes(self, x):
        return (0,) + tuple(range(2, x.ndim))

    def _param_shape(self, x):
        return (1, self.num_features) + (1,) * (x.ndim - 2)

    def config(self):
        return dict(num_features=self.num_features, eps=self.eps, momentum=self.momentum,
                    affine=self.affine)


class BatchNorm2D(_BatchNorm):
    """``BatchNorm2D(C, eps=1e-5, momentum=0.1, affine=True)``, as ``torch.nn.BatchNorm2d``.

    Shapes: ``x (N, C, H, W)`` -> ``y`` of its shape; ``weight``, ``bias`` and the running
    statistics ``(C,)``.
    Forward: ``y = weight * (x - mean) / sqrt(var + eps) + bias``, one mean and variance
    per channel over N, H and W (training: the batch's; eval: the running ones).
    Backward: ``dx = g * weight / sqrt(running_var + eps)`` in eval mode; in training the
    module's formula (the batch statistics depend on ``x`` too).
    Kept for backward: ``x_hat`` and ``1 / sqrt(var + eps)``.
    """
    spatial_ndims = (4,)
    expected_shapes = ("(N, C, H, W)",)


class BatchNorm1D(_BatchNorm):
    """``BatchNorm1D(C, eps=1e-5, momentum=0.1, affine=True)``, as ``torch.nn.BatchNorm1d``.

    Shapes: ``x (N, C)`` or ``(N, C, L)`` -> ``y`` of its shape (e.g. after a ``Dense``).
    Forward: as ``BatchNorm2D``, the statistics over N (and L).
    Backward: ``dx = g * weight / sqrt(running_var + eps)`` in eval mode; in training the
    module's formula.
    Kept for backward: ``x_hat`` and ``1 / sqrt(var + eps)``.
    """
    spatial_ndims = (2, 3)
    expected_shapes = ("(N, C)", "(N, C, L)")
