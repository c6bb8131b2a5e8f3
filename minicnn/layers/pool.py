"""Max and average pooling over ``kH x kW`` windows.

Shapes: ``x (N, C, H, W)`` -> ``out (N, C, H_out, W_out)`` with
``H_out = (H + 2 pH - kH) // sH + 1``; ``stride`` defaults to the kernel size.

Max pooling::

    out[n, c, i, j]      = max over the window of x
    switches[n, c, i, j] = flat index (row * W + col) of that maximum in x
    grad_x[switch]      += grad_out          (only the winner gets gradient)

The switches are kept after ``forward``: they are what Zeiler & Fergus's
deconvnet uses to "unpool". Ties go to the first element in row-major window
order, in forward and backward alike.

Average pooling::

    out[n, c, i, j] = sum(window) / (kH * kW)     (padded zeros counted)
    grad_x[window] += grad_out / (kH * kW)

Overlapping windows (stride < kernel) share inputs; their gradients add up.
"""
from .. import kernels
from .base import Layer
from .conv import IMPLEMENTATIONS


class _Pool2D(Layer):
    def __init__(self, kernel_size, stride=None, padding=0, impl="fast"):
        super().__init__()
        self.kernel_size = kernels.pair(kernel_size, "kernel_size")
        self.stride = kernels.pair(stride if stride is not None else kernel_size, "stride")
        self.padding = kernels.pair(padding, "padding")
        name = type(self).__name__
        if any(p < 0 or 2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name} padding must be between 0 and half the kernel size, "
                             f"got padding={self.padding}, kernel_size={self.kernel_size}")
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"{name} impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
        self.impl = impl
        self.ops = kernels.reference if impl == "reference" else kernels

    def _check(self, x):
        kh, kw = self.kernel_size
        ph, pw = self.padding
        expected = f"(N, C, H, W) with H + 2*{ph} >= {kh} and W + 2*{pw} >= {kw}"
        self.check_input(x, 4, expected)
        if min(self.output_shape(x.shape[1:])[1:]) < 1:
            raise ValueError(f"{self!r} expects input of shape {expected}, got {tuple(x.shape)}")

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c,) + kernels.output_hw((h, w), self.kernel_size, self.stride, self.padding)

    def config(self):
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding))


class MaxPool2D(_Pool2D):
    """``MaxPool2D(kernel_size, stride=None, padding=0)``; keeps ``self.switches``."""

    def forward(self, x):
        self._check(x)
        self.x_shape = x.shape
        out, self.switches = self.ops.maxpool_forward(x, self.kernel_size, self.stride,
                                                      self.padding)
        return out

    def backward(self, grad_out):
        return self.ops.maxpool_backward(grad_out, self.switches, self.x_shape)


class AvgPool2D(_Pool2D):
    """``AvgPool2D(kernel_size, stride=None, padding=0)``."""

    def forward(self, x):
        self._check(x)
        self.x_shape = x.shape
        return self.ops.avgpool_forward(x, self.kernel_size, self.stride, self.padding)

    def backward(self, grad_out):
        return self.ops.avgpool_backward(grad_out, self.x_shape, self.kernel_size, self.stride,
                                         self.padding)

    def macs(self, input_shape):
        # one accumulate per window element, as the usual MAC tables count pooling: 0
        return 0
