"""Max and average pooling over ``kH x kW`` windows, and max unpooling.

Shapes: ``x (N, C, H, W)`` -> ``out (N, C, H_out, W_out)`` with
``H_out = (H + 2 pH - dH (kH - 1) - 1) // sH + 1`` (rounded up with
``ceil_mode``, where a window may run past the padding, but never one that
would start past it); ``stride`` defaults to the kernel size.

Max pooling (taps ``d`` pixels apart with ``dilation``)::

    out[n, c, i, j]      = max over the window's taps inside x
    switches[n, c, i, j] = flat index (row * W + col) of that maximum in x
    grad_x[switch]      += grad_out          (only the winner gets gradient)

The switches are kept after ``forward``: they are what Zeiler & Fergus's
deconvnet uses to "unpool" (``MaxUnpool2D``). Ties go to the first tap in
row-major window order; as in PyTorch a NaN wins (it propagates) and an
all ``-inf`` window routes to its first tap inside the input.

Average pooling::

    out[n, c, i, j] = sum(window inside x) / divisor[i, j]
    grad_x[window] += grad_out / divisor[i, j]

with PyTorch's divisor: the window cut at the far edge of the padding, its
padded pixels counted if ``count_include_pad`` (the default), or
``divisor_override``. Overlapping windows (stride < kernel) share inputs;
their gradients add up.
"""
from numbers import Integral

import numpy as np

from .. import kernels
from ..backend import get_array_module
from ..kernels import textbook
from .base import Layer


class _Pool2D(Layer):
    def __init__(self, kernel_size, stride=None, padding=0, impl=None, dilation=1,
                 ceil_mode=False):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = kernels.pair(kernel_size, f"{name} kernel_size")
        self.stride = kernels.pair(stride if stride is not None else kernel_size, f"{name} stride")
        self.padding = kernels.pair(padding, f"{name} padding")
        self.dilation = kernels.pair(dilation, f"{name} dilation")
        self.ceil_mode = bool(ceil_mode)
        if min(self.kernel_size + self.stride + self.dilation) < 1:
            raise ValueError(f"{name} kernel_size, stride and dilation must be >= 1, got "
                             f"{self.kernel_size}, {self.stride}, {self.dilation}")
        if any(p < 0 or 2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name} padding must be between 0 and half the kernel size, "
                             f"got padding={self.padding}, kernel_size={self.kernel_size}")
        self.impl = kernels.check_impl(impl, f"{name} impl")

    def _check(self, x):
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        expected = f"(N, C, H, W) with H + 2*{ph} >= {kh} and W + 2*{pw} >= {kw}"
        if self.dilation != (1, 1):
            expected += f" (kernel dilated by {self.dilation})"
        self.check_input(x, 4, expected)
        out_hw = self.output_shape(x.shape[1:])[1:]
        if min(out_hw) < 1:
            raise ValueError(f"{self!r} expects input of shape {expected}, got {tuple(x.shape)}")
        if self.dilation != (1, 1) and not all(    # dilated taps can step over a small input
                kernels.windows_inside(*args) for args in zip(
                    x.shape[2:], out_hw, self.kernel_size, self.stride, self.padding,
                    self.dilation)):
            raise ValueError(f"{self!r}: a window's taps all fall outside the "
                             f"{tuple(x.shape)} input (dilated taps step over it); use a "
                             f"larger input, or less padding or dilation")

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            self.refuse_shape(input_shape)
        c, h, w = input_shape
        return (c,) + kernels.output_hw((h, w), self.kernel_size, self.stride, self.padding,
                                        self.dilation, self.ceil_mode)

    def config(self):
        """Constructor arguments; the options only where not at their default."""
        c = dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                 padding=list(self.padding))
        return c | {k: v for k, v in self._options().items() if v != self._defaults[k]}

    _defaults = dict(dilation=[1, 1], ceil_mode=False)

    def _options(self):
        return dict(dilation=list(self.dilation), ceil_mode=self.ceil_mode)


class MaxPool2D(_Pool2D):
    """``MaxPool2D(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
    return_indices=False)``, as ``torch.nn.MaxPool2d``.

    Shapes: ``x (N, C, H, W)`` -> ``out (N, C, H_out, W_out)``, ``switches`` alike (int64).
    Forward: ``out = max over each window``; ``switches`` = where (``row * W + col`` in x).
    Backward: ``dx[switch] += g``, only each window's winner gets gradient.
    Kept for backward: ``switches`` and ``x``'s shape (the deconvnet's unpooling reads the
    switches too).

    ``return_indices=True`` makes ``forward`` return ``(out, switches)`` (for
    ``MaxUnpool2D``; such a layer cannot sit inside a ``Sequential``). ``impl``: as
    ``Conv2D``'s.
    """
    cache_names = ("switches",)

    _defaults = dict(_Pool2D._defaults, return_indices=False)

    def __init__(self, kernel_size, stride=None, padding=0, impl=None, dilation=1,
                 ceil_mode=False, return_indices=False):
        super().__init__(kernel_size, stride, padding, impl, dilation, ceil_mode)
        self.return_indices = bool(return_indices)

    def _options(self):
        return dict(super()._options(), return_indices=self.return_indices)

    def _windows(self):
        return self.kernel_size, self.stride, self.padding, self.dilation

    def forward(self, x):
        """``x (N, C, H, W)`` -> ``out (N, C, H_out, W_out)``; keeps ``self.switches``."""
        self._check(x)
        self.x_shape, self.engine = x.shape, kernels.ENGINES[self.impl or kernels.default_impl]
        if self.engine is not textbook:     # the same maxima by the fast engine (or plain loops)
            out, self.switches = self.engine.maxpool_forward(x, *self._windows(), self.ceil_mode)
            return (out, self.switches) if self.return_indices else out
        cols = textbook.window_columns(x, *self._windows(), self.ceil_mode,
                                       pad_value=-np.inf)    # (kH kW, N C L): one per window
        out = cols.max(axis=0).reshape(x.shape[:2] + self.output_shape(x.shape[1:])[1:])
        taps = textbook.max_taps(cols)              # which row won: ties to the first, NaN wins
        self.switches = textbook.switches_of(taps, out, x.shape, *self._windows())
        return (out, self.switches) if self.return_indices else out

    def backward(self, grad_out):
        """``grad_out (N, C, H_out, W_out)`` -> ``grad_x (N, C, H, W)``: each window's
        gradient to its winner, ``grad_x[switch] += grad_out``."""
        self.check_grad(grad_out)
        if self.engine is not textbook:
            return self.engine.maxpool_backward(grad_out, self.switches, self.x_shape)
        return textbook.scatter_add(grad_out, self.switches, self.x_shape)


class AvgPool2D(_Pool2D):
    """``AvgPool2D(kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True, divisor_override=None)``, as ``torch.nn.AvgPool2d``.

    Shapes: ``x (N, C, H, W)`` -> ``out (N, C, H_out, W_out)``.
    Forward: ``out = sum(window) / divisor``, PyTorch's divisor per window.
    Backward: ``dx[window] += g / divisor``.
    Kept for backward: ``x``'s shape.

    ``impl``: as ``Conv2D``'s.
    """

    _defaults = dict(ceil_mode=False, count_include_pad=True, divisor_override=None)

    def __init__(self, kernel_size, stride=None, padding=0, impl=None, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, impl, 1, ceil_mode)
        if divisor_override is not None and (not isinstance(divisor_override, Integral)
                                             or divisor_override < 1):
            raise ValueError(f"AvgPool2D divisor_override must be None or an int >= 1, "
                             f"got {divisor_override!r}")
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def _options(self):
        return dict(ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def _settings(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def forward(self, x):
        """``x (N, C, H, W)`` -> ``out (N, C, H_out, W_out)``."""
        self._check(x)
        self.x_shape, self.engine = x.shape, kernels.ENGINES[self.impl or kernels.default_impl]
        if self.engine is not textbook:     # the same means by the fast engine (or plain loops)
            return self.engine.avgpool_forward(x, *self._settings())
        kernel, stride, padding, ceil_mode = self._settings()[:4]
        cols = textbook.window_columns(x, kernel, stride, padding, (1, 1), ceil_mode)
        divisor = self._divisor(x)                                   # (H_out, W_out)
        return cols.sum(axis=0).reshape(x.shape[:2] + divisor.shape) / divisor

    def backward(self, grad_out):
        """``grad_out (N, C, H_out, W_out)`` -> ``grad_x (N, C, H, W)``: each window
        shares its gradient, ``g / divisor`` to every pixel in it."""
        self.check_grad(grad_out)
        if self.engine is not textbook:
            return self.engine.avgpool_backward(grad_out, self.x_shape, *self._settings())
        kernel, stride, padding, ceil_mode = self._settings()[:4]
        n, c, h, w = self.x_shape
        share = (grad_out / self._divisor(grad_out)).reshape(1, -1)  # (1, N C L)
        dcols = get_array_module(share).broadcast_to(
            share, (kernel[0] * kernel[1], share.shape[1]))          # the same to every tap
        return textbook.col2im(dcols, (n * c, 1, h, w), kernel, stride, padding, (1, 1),
                               ceil_mode).reshape(self.x_shape)

    def _divisor(self, like):
        """PyTorch's divisor of each window (``textbook.avgpool_divisors``), as ``like``."""
        divisor = textbook.avgpool_divisors(self.x_shape[2:], *self._settings())
        return get_array_module(like).asarray(divisor, dtype=like.dtype)

    def macs(self, input_shape):
        # one accumulate per window element, as the usual MAC tables count pooling: 0
        return 0


class MaxUnpool2D(Layer):
    """``MaxUnpool2D(kernel_size, stride=None, padding=0)``, as ``torch.nn.MaxUnpool2d``:
    the deconvnet's unpooling, ``forward(x, switches, output_size=None)``.

    Shapes: ``x (N, C, H, W)``, ``switches`` alike -> ``out (N, C, H_up, W_up)`` with
    ``H_up = (H - 1) sH - 2 pH + kH`` unless ``output_size`` says otherwise.
    Forward: ``out[n, c, switch[n, c, i, j]] = x[n, c, i, j]``, zeros elsewhere.
    Backward: ``dx[n, c, i, j] = g[n, c, switch[n, c, i, j]]``.
    Kept for backward: ``switches``.

    ``switches`` are a ``MaxPool2D``'s (``return_indices=True`` or ``.switches``);
    ``output_size`` is the pooled input's ``(H, W)`` or its whole shape. Where windows
    overlapped and share a winner, one of their values is kept (as PyTorch).
    """
    cache_names = ("switches",)

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernels.pair(kernel_size, "MaxUnpool2D kernel_size")
        self.stride = kernels.pair(stride if stride is not None else kernel_size,
                                   "MaxUnpool2D stride")
        self.padding = kernels.pair(padding, "MaxUnpool2D padding")

    def forward(self, x, switches=None, output_size=None):
        self.check_input(x, 4, "(N, C, H, W)")
        if switches is None or tuple(switches.shape) != tuple(x.shape):
            raise ValueError(f"{self!r} needs the switches of the MaxPool2D that made x, "
                             f"of x's shape {tuple(x.shape)}: forward(x, pool.switches)")
        hw = self.output_shape(x.shape[1:])[1:] if output_size is None else \
            tuple(int(s) for s in output_size[-2:])
        if int(switches.min()) < 0 or int(switches.max()) >= hw[0] * hw[1]:
            raise ValueError(f"{self!r}: a switch points outside the {hw} output; pass the "
                             f"pooled input's size as output_size")
        self.switches, self.out_shape = switches, tuple(x.shape[:2]) + tuple(hw)
        return kernels.maxunpool_forward(x, switches, hw)

    def backward(self, grad_out):
        self.check_grad(grad_out, self.out_shape)
        return kernels.maxunpool_backward(grad_out, self.switches)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            self.refuse_shape(input_shape)
        c, h, w = input_shape
        return (c,) + tuple((n - 1) * s - 2 * p + k for n, s, p, k in
                            zip((h, w), self.stride, self.padding, self.kernel_size))

    def config(self):
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding))
