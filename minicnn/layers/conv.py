"""2-D convolution (cross-correlation, as in every deep-learning library).

Shapes::

    x       (N, C_in, H, W)
    weight  (C_out, C_in, kH, kW)
    bias    (C_out,)
    out     (N, C_out, H_out, W_out),   H_out = (H + 2 pH - kH) // sH + 1

Forward, with ``cols = im2col(x)`` of shape ``(C_in*kH*kW, N*H_out*W_out)``
holding each receptive field of each image as a column::

    out2 = W2 @ cols + b                 W2 = weight.reshape(C_out, C_in*kH*kW)
                                         out2 (C_out, N*H_out*W_out) -> NCHW

Backward, for the incoming gradient ``g2`` laid out like ``out2``::

    dW2 = g2 @ cols.T                    (each weight saw every column)
    db  = sum over (n, positions) of g
    dx  = col2im(W2.T @ g2)              (each column goes back to its window;
                                          overlapping windows add up)

One big matrix product (rather than one per image) is what BLAS runs
fastest. The batch is cut into chunks so that ``cols`` stays under
``max_cols_bytes`` (default: a few MiB on the CPU, where a chunk that stays in
cache beats one huge buffer; 256 MiB on the GPU). The columns are kept for
backward only when the whole batch fits in one chunk; otherwise backward
rebuilds them chunk by chunk.
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
    max_cols_bytes = None      # bound on one im2col buffer; None: kernels.max_cols_bytes(x)

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
        xp = get_array_module(x)
        n, c_out = x.shape[0], self.out_channels
        ho, wo = self.output_shape(x.shape[1:])[1:]
        w2 = weight.reshape(c_out, -1)                                  # (C_out, K)
        bound = self.max_cols_bytes or kernels.max_cols_bytes(x)
        self.chunks = kernels.batch_chunks(n, w2.shape[1] * ho * wo * x.itemsize, bound)
        out = xp.empty((n, c_out, ho * wo), dtype=x.dtype)
        for chunk in self.chunks:
            cols = kernels.im2col(x[chunk], self.kernel_size, self.stride, self.padding)
            out2 = w2 @ cols                                            # (C_out, n_chunk*L)
            out[chunk] = out2.reshape(c_out, -1, ho * wo).transpose(1, 0, 2)
        self.cols = cols if len(self.chunks) == 1 else None
        if bias is not None:
            out += bias[:, None]
        return out.reshape(n, c_out, ho, wo)

    def backward(self, grad_out):
        """``grad_out (N, C_out, H_out, W_out)`` -> ``grad_x (N, C_in, H, W)``;
        adds ``dL/dW`` and ``dL/db`` into the parameters' ``grad``."""
        weight = self.weight.value
        if self.impl == "reference":
            gx, gw, gb = kernels.reference.conv2d_backward(self.x, weight, grad_out,
                                                           self.stride, self.padding)
        else:
            c_out, args = self.out_channels, (self.kernel_size, self.stride, self.padding)
            g = grad_out.reshape(grad_out.shape[0], c_out, -1)         # (N, C_out, L)
            w2 = weight.reshape(c_out, -1)                              # (C_out, K)
            gw, gx = 0, []
            for chunk in self.chunks:
                x = self.x[chunk]
                cols = self.cols if self.cols is not None else kernels.im2col(x, *args)
                g2 = g[chunk].transpose(1, 0, 2).reshape(c_out, -1)     # (C_out, n_chunk*L)
                gw = gw + g2 @ cols.T
                gx.append(kernels.col2im(w2.T @ g2, x.shape, *args))
            gw, gb = gw.reshape(weight.shape), g.sum(axis=(0, 2))
            gx = gx[0] if len(gx) == 1 else get_array_module(g).concatenate(gx)
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
