"""2-D convolution (cross-correlation, as in every deep-learning library).

Shapes::

    x       (N, C_in, H, W)
    weight  (C_out, C_in, kH, kW)
    bias    (C_out,)
    out     (N, C_out, H_out, W_out),   H_out = (H + 2 pH - kH) // sH + 1

Forward, with ``cols = im2col(x)`` of shape ``(N, C_in*kH*kW, H_out*W_out)``
holding each receptive field as a column::

    out[n] = W2 @ cols[n] + b            W2 = weight.reshape(C_out, C_in*kH*kW)

Backward, for the incoming gradient ``g[n]`` of shape ``(C_out, H_out*W_out)``::

    dW2 = sum_n g[n] @ cols[n].T         (each weight saw every column)
    db  = sum_{n, positions} g
    dx  = col2im(W2.T @ g[n])            (each column goes back to its window;
                                          overlapping windows add up)
"""
import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..init import initial_weights
from ..parameter import Parameter
from .base import Layer

IMPLEMENTATIONS = ("fast", "reference")


class Conv2D(Layer):
    """``Conv2D(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True)``.

    ``padding`` is an int, a pair ``(pH, pW)`` or ``"same"`` (odd kernels,
    stride 1: the output keeps the input's size). ``impl="reference"`` runs the
    plain-loop version from ``kernels.reference`` instead of im2col + matmul.
    """

    param_names = ("weight", "bias")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 init="he", seed=None, impl="fast"):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = kernels.pair(kernel_size, "kernel_size")
        self.stride = kernels.pair(stride, "stride")
        self.padding = self._resolve_padding(padding)
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"Conv2D impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
        self.impl, self.init = impl, init
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        kh, kw = self.kernel_size
        fan_in, fan_out = in_channels * kh * kw, out_channels * kh * kw
        w, b = initial_weights(init, (out_channels, in_channels, kh, kw), fan_in, fan_out, rng)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if bias else None

    def _resolve_padding(self, padding):
        if padding == "same":
            kh, kw = self.kernel_size
            if kh % 2 == 0 or kw % 2 == 0 or self.stride != (1, 1):
                raise ValueError(f"Conv2D padding='same' needs odd kernels and stride 1, "
                                 f"got kernel_size={self.kernel_size}, stride={self.stride}")
            return (kh // 2, kw // 2)
        ph, pw = kernels.pair(padding, "padding")
        if ph < 0 or pw < 0:
            raise ValueError(f"Conv2D padding must be >= 0, got {padding!r}")
        return (ph, pw)

    def forward(self, x):
        """``x (N, C_in, H, W)`` -> ``(N, C_out, H_out, W_out)``."""
        self._check(x)
        self.x = x
        weight = self.weight.value
        bias = None if self.bias is None else self.bias.value
        if self.impl == "reference":
            return kernels.reference.conv2d_forward(x, weight, bias, self.stride, self.padding)
        n = x.shape[0]
        ho, wo = self.output_shape(x.shape[1:])[1:]
        self.cols = kernels.im2col(x, self.kernel_size, self.stride, self.padding)
        out = weight.reshape(self.out_channels, -1) @ self.cols      # (N, C_out, H_out*W_out)
        if bias is not None:
            out += bias[:, None]
        return out.reshape(n, self.out_channels, ho, wo)

    def backward(self, grad_out):
        """``grad_out (N, C_out, H_out, W_out)`` -> ``grad_x (N, C_in, H, W)``;
        adds ``dL/dW`` and ``dL/db`` into the parameters' ``grad``."""
        weight = self.weight.value
        if self.impl == "reference":
            gx, gw, gb = kernels.reference.conv2d_backward(self.x, weight, grad_out,
                                                           self.stride, self.padding)
        else:
            xp = get_array_module(grad_out)
            n = grad_out.shape[0]
            g = grad_out.reshape(n, self.out_channels, -1)              # (N, C_out, L)
            w2 = weight.reshape(self.out_channels, -1)                   # (C_out, K)
            # sum_n g[n] @ cols[n].T as one product over the flattened (n, position) axis
            gw = xp.tensordot(g, self.cols, axes=([0, 2], [0, 2])).reshape(weight.shape)
            gb = g.sum(axis=(0, 2))
            gx = kernels.col2im(w2.T @ g, self.x.shape, self.kernel_size, self.stride, self.padding)
        self.weight.accumulate(gw)
        if self.bias is not None:
            self.bias.accumulate(gb)
        return gx

    def _check(self, x):
        expected = f"(N, {self.in_channels}, H, W) with H + 2*{self.padding[0]} >= " \
                   f"{self.kernel_size[0]} and W + 2*{self.padding[1]} >= {self.kernel_size[1]}"
        self.check_input(x, 4, expected)
        ho, wo = self.output_shape(x.shape[1:])[1:]
        if x.shape[1] != self.in_channels or ho < 1 or wo < 1:
            raise ValueError(f"{self!r} expects input of shape {expected}, got {tuple(x.shape)}")

    def output_shape(self, input_shape):
        _, h, w = input_shape
        return (self.out_channels,) + kernels.output_hw((h, w), self.kernel_size, self.stride,
                                                        self.padding)

    def macs(self, input_shape):
        c_out, ho, wo = self.output_shape(input_shape)
        kh, kw = self.kernel_size
        return c_out * ho * wo * self.in_channels * kh * kw

    def config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), bias=self.bias is not None)
