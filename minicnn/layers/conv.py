"""2-D convolution (cross-correlation, as in every deep-learning library).

Shapes, with ``G = groups`` and ``C_g = C_in / G`` input channels per group::

    x       (N, C_in, H, W)
    weight  (C_out, C_g, kH, kW)            (PyTorch's layout: state_dicts exchange)
    bias    (C_out,)
    out     (N, C_out, H_out, W_out),   H_out = (H + pT + pB - dH (kH - 1) - 1) // sH + 1

Element formula (``xpad`` is ``x`` padded in ``padding_mode``; output channel
``o`` belongs to group ``g = o // (C_out / G)`` and reads only its channels)::

    out[n, o, i, j] = b[o] + sum_{c < C_g, u, v} w[o, c, u, v] * xpad[n, g C_g + c, i sH + u dH, j sW + v dW]

Forward, with ``cols = im2col(x)`` holding each receptive field of each image
as a column, ``(G, C_g kH kW, N L)`` (``L = H_out W_out``)::

    out2 = W2 @ cols + b            W2 = weight.reshape(G, C_out / G, C_g kH kW)

Backward, for the incoming gradient ``g2`` laid out like ``out2``::

    dW2 = g2 @ cols.T               (each weight saw every column)
    db  = sum over (n, positions) of g
    dx  = col2im(W2.T @ g2)         (each column goes back to its window; overlapping
                                     windows add up: dx is the transposed convolution of g)

Kept for backward: the columns ``cols`` and the padded input's shape (with
``impl="textbook"``; the fast engine keeps its own plan of the same sums,
``kernels.fast``: chunks on threads, compiled im2col, Winograd's tiles for
stride-1 3x3 and 5x5 convolutions of 4+ channels, or direct loops for depthwise and
one-channel layers, on the CPU).
"""

import numpy as np

from .. import kernels
from ..init import initial_weights
from ..kernels import textbook
from ..parameter import Parameter
from ..arguments import whole_number
from .base import Layer


class Conv2D(Layer):
    """``Conv2D(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
    groups=1, bias=True, padding_mode="zeros")``, as ``torch.nn.Conv2d``.

    Shapes: ``x (N, C_in, H, W)`` -> ``out (N, C_out, H_out, W_out)``; ``weight (C_out,
    C_in / groups, kH, kW)``, ``bias (C_out,)``.
    Forward: ``out2 = W2 @ im2col(x) + b``, one product per group.
    Backward: ``dx = col2im(W2.T @ g2)``, the transposed convolution of ``g``; ``dW2 = g2 @
    cols.T``, ``db = sum of g over (n, i, j)``.
    Kept for backward: the columns and the padded input's shape (``impl="textbook"``), or
    the fast engine's plan of the same sums.

    ``padding``: an int, a pair ``(pH, pW)``, ``"valid"`` (no padding) or
    ``"same"`` (stride 1: the output keeps the input's size; the total padding
    ``d (k - 1)`` is split with the odd pixel at the bottom and right, as in
    PyTorch). ``padding_mode``: ``"zeros"``, ``"reflect"``, ``"replicate"`` or
    ``"circular"``. ``dilation`` spaces the kernel's taps ``d`` pixels apart.
    ``groups`` splits the channels into independent convolutions (``groups ==
    in_channels``: depthwise). ``impl``: ``"textbook"`` (the im2col below),
    ``"fast"`` (the same sums by ``kernels.fast``), ``"reference"`` (plain loops);
    ``None``, the default, follows ``minicnn.use_impl``.
    """

    param_names = ("weight", "bias")
    cache_names = ("saved",)
    skips_input_grad = True    # backward(g, input_grad=False): see Sequential.backward

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 init="he", seed=None, impl=None, dilation=1, groups=1, padding_mode="zeros"):
        super().__init__()
        self.in_channels = whole_number("Conv2D", "channel count", in_channels)
        self.out_channels = whole_number("Conv2D", "channel count", out_channels)
        self.kernel_size = _positive(kernel_size, "kernel_size")
        self.stride = _positive(stride, "stride")
        self.dilation = _positive(dilation, "dilation")
        self.groups = whole_number("Conv2D", "groups", groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"Conv2D groups={self.groups} must divide in_channels="
                             f"{self.in_channels} and out_channels={self.out_channels}")
        if padding_mode not in kernels.PADDING_MODES:
            raise ValueError(f"Conv2D padding_mode must be one of {kernels.PADDING_MODES}, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.padding, self.pads = self._resolve_padding(padding)
        self.impl, self.init = kernels.check_impl(impl, "Conv2D impl"), init
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        kh, kw = self.kernel_size
        c_g = self.in_channels // self.groups
        fan_in, fan_out = c_g * kh * kw, self.out_channels // self.groups * kh * kw
        w, b = initial_weights(init, (self.out_channels, c_g, kh, kw), fan_in, fan_out, rng)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if bias else None

    def _resolve_padding(self, padding):
        """``(padding as given back by config(), ((top, bottom), (left, right)))``."""
        if padding == "valid":
            padding = 0
        if padding == "same":
            if self.stride != (1, 1):
                raise ValueError(f"Conv2D padding='same' needs stride 1, got stride={self.stride}")
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            pads = tuple((t // 2, t - t // 2) for t in totals)
            symmetric = all(t % 2 == 0 for t in totals)
            return ((pads[0][0], pads[1][0]) if symmetric else "same"), pads
        ph, pw = kernels.pair(padding, "Conv2D padding (or 'same', 'valid')")
        if ph < 0 or pw < 0:
            raise ValueError(f"Conv2D padding must be >= 0, got {padding!r}")
        return (ph, pw), ((ph, ph), (pw, pw))

    def _geometry(self):
        return dict(stride=self.stride, padding=self.pads, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def forward(self, x):
        """``x (N, C_in, H, W)`` -> ``(N, C_out, H_out, W_out)``."""
        self._check(x)
        bias = None if self.bias is None else self.bias.value
        self.engine = kernels.ENGINES[self.impl or kernels.default_impl]
        if self.engine is not textbook:        # the same sums by the fast engine (or plain loops)
            out, self.saved = self.engine.convolve(x, self.weight.value, bias, **self._geometry())
            return out
        n, (_, h_out, w_out) = x.shape[0], self.output_shape(x.shape[1:])
        xpad = textbook.pad(x, self.pads, self.padding_mode)
        cols = textbook.im2col(xpad, self.kernel_size, self.stride, (0, 0), self.dilation)
        cols = cols.reshape(self.groups, -1, cols.shape[1])          # (G, C_g kH kW, N L)
        out2 = self._w2() @ cols                                     # (G, C_out / G, N L)
        out = out2.reshape(self.out_channels, n, h_out * w_out).transpose(1, 0, 2)
        if bias is not None:
            out = out + bias[:, None]                                # (N, C_out, L)
        self.saved = (xpad.shape, cols)
        return out.reshape(n, self.out_channels, h_out, w_out)

    def backward(self, grad_out, input_grad=True):
        """``grad_out (N, C_out, H_out, W_out)`` -> ``grad_x (N, C_in, H, W)``;
        adds ``dL/dW`` and ``dL/db`` into the parameters' ``grad``.
        ``input_grad=False``: the weights' gradients only (returns ``None``)."""
        self.check_grad(grad_out)
        weight, need_w = self.weight.value, self.weight.requires_grad  # frozen: dx only
        if self.engine is not textbook:
            gx, gw, gb = self.engine.convolve_backward(self.saved, weight, grad_out, need_w,
                                                       input_grad, **self._geometry())
        else:
            xpad_shape, cols = self.saved
            n, groups = grad_out.shape[0], self.groups
            g2 = grad_out.reshape(n, groups, self.out_channels // groups, -1)
            g2 = g2.transpose(1, 2, 0, 3).reshape(groups, self.out_channels // groups, -1)
            gw = (g2 @ cols.transpose(0, 2, 1)).reshape(weight.shape)   # dW2 = g2 @ cols.T
            gb = grad_out.sum(axis=(0, 2, 3))
            gx = None
            if input_grad:
                dcols = self._w2().transpose(0, 2, 1) @ g2              # W2.T @ g2
                dxpad = textbook.col2im(dcols.reshape(-1, cols.shape[2]), xpad_shape,
                                        self.kernel_size, self.stride, (0, 0), self.dilation)
                gx = textbook.pad_adjoint(dxpad, self.pads, self.padding_mode)
        self.weight.accumulate(gw)
        if self.bias is not None:
            self.bias.accumulate(gb)
        return gx

    def _w2(self):
        """The weights as one matrix per group: ``(G, C_out / G, C_g kH kW)``."""
        return self.weight.value.reshape(self.groups, self.out_channels // self.groups, -1)

    def _check(self, x):
        (top, bottom), (left, right) = self.pads
        span = [d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size)]
        expected = (f"(N, {self.in_channels}, H, W) with H + {top + bottom} >= {span[0]} "
                    f"and W + {left + right} >= {span[1]}")
        self.check_input(x, 4, expected)
        if x.shape[1] != self.in_channels or min(self.output_shape(x.shape[1:])[1:]) < 1:
            raise ValueError(f"{self!r} expects input of shape {expected}, got {tuple(x.shape)}")
        limit = {"reflect": 1, "circular": 0}.get(self.padding_mode)
        if limit is not None and max(top, bottom) > x.shape[2] - limit or \
                limit is not None and max(left, right) > x.shape[3] - limit:
            rule = "less than" if limit else "at most"
            raise ValueError(f"{self!r}: padding_mode={self.padding_mode!r} needs padding "
                             f"{rule} the input size, got input {tuple(x.shape)}")

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            self.refuse_shape(input_shape, f"({self.in_channels}, H, W)")
        _, h, w = input_shape
        (top, bottom), (left, right) = self.pads
        return (self.out_channels,) + kernels.output_hw(
            (h + top + bottom, w + left + right), self.kernel_size, self.stride, (0, 0),
            self.dilation)

    def macs(self, input_shape):
        c_out, ho, wo = self.output_shape(input_shape)
        kh, kw = self.kernel_size
        return c_out * ho * wo * (self.in_channels // self.groups) * kh * kw

    def config(self):
        """Constructor arguments; the newer options only where not at their default."""
        padding = self.padding if isinstance(self.padding, str) else list(self.padding)
        c = dict(in_channels=self.in_channels, out_channels=self.out_channels,
                 kernel_size=list(self.kernel_size), stride=list(self.stride), padding=padding,
                 bias=self.bias is not None)
        extra = dict(dilation=list(self.dilation), groups=self.groups,
                     padding_mode=self.padding_mode)
        defaults = dict(dilation=[1, 1], groups=1, padding_mode="zeros")
        return c | {k: v for k, v in extra.items() if v != defaults[k]}


def _positive(value, name):
    pair = kernels.pair(value, f"Conv2D {name}")
    if min(pair) < 1:
        raise ValueError(f"Conv2D {name} must be >= 1, got {value!r}")
    return pair
