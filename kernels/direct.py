"""A convolution summed tap by tap (``direct_cpu.py``), for layers whose groups read ONE
input channel each: a depthwise convolution (``groups == in_channels``) and a network's
first layer on grey images (``in_channels == 1``).

There im2col has nothing to share: its columns copy every pixel ``kH kW`` times to
feed a product with ``K = kH kW`` rows only (25 for a 5x5 kernel; for a depthwise
layer, one tiny product per group), and col2im adds them back. The direct loops read
the padded input where it lies, as one long row per channel (every image's plane one
after the other), and add each tap's shifted row into the sums, a cache-sized block of
images at a time (measured per layer: benchmarks/README.md, issue 28).

``Direct`` has ``Columns``' interface (``product``, ``backward``, ``out_hw``);
``fast.plan`` picks it where ``suits`` says so. The batch is cut into one part per
chunk thread (``threads.parts``); each part writes its own images, and the weight
gradient's per-part sums are added in part order (the same bits whichever thread
made which part). Kept for backward: the padded input (as PyTorch keeps ``x``).
Strides above 2 stay im2col (``correlate`` computes every stride-1 output).
"""
import operator

import numpy as np

from . import threads
from .checks import expect_shape
from .textbook import output_hw, pad, pad_adjoint


def suits(x, stride, groups):
    """Whether ``Direct`` runs this convolution: NumPy float32/float64 arrays whose
    groups read one input channel each (``C_in == groups``), strides of 1 or 2."""
    return (isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
            and x.shape[1] == groups and max(stride) <= 2)


# A block of images' rows (``direct_cpu``) stays under this many numbers, so that the
# shifted rows and the sums stay in the core's cache (benchmarks/README.md, issue 28).
BLOCK_NUMBERS = 4096


class Direct:
    """One batch ``x (N, C, H, W)`` convolved tap by tap; see the module docstring.

    ``pads`` is ``((top, bottom), (left, right))`` in ``padding_mode``; strides of 1 or 2
    (``suits``). Keeps the padded input as ``direct_cpu``'s rows, ``(C, N P + room)``."""

    def __init__(self, x, kernel, stride, pads, dilation=(1, 1), groups=1,
                 padding_mode="zeros"):
        from . import direct_cpu         # Numba is there (fast.plan checked)
        self.loops = direct_cpu
        self.kernel, self.stride, self.dilation, self.groups = kernel, stride, dilation, groups
        self.pads, self.padding_mode, self.x_shape = pads, padding_mode, x.shape
        n, c, h, w = x.shape
        (top, bottom), (left, right) = pads
        self.padded_hw = (h + top + bottom, w + left + right)
        self.out_hw = output_hw(self.padded_hw, kernel, stride, (0, 0), dilation)
        self.src, planes = self._rows(c, self.padded_hw, x.dtype)
        if padding_mode == "zeros":
            planes[:, :, top:top + h, left:left + w] = x.transpose(1, 0, 2, 3)
        else:
            planes[...] = pad(x, pads, padding_mode).transpose(1, 0, 2, 3)
        self.parts = threads.parts(n, size=self.src.size * kernel[0] * kernel[1])

    def _rows(self, channels, hw, dtype):
        """Zeros ``(channels, N P + room)`` (``P = H W``: the planes of ``hw``, one per
        image; ``room`` for the last tap's shift) and its ``(channels, N, H, W)`` view."""
        (kh, kw), (dh, dw), n = self.kernel, self.dilation, self.x_shape[0]
        room = dh * (kh - 1) * hw[1] + dw * (kw - 1)
        rows = np.zeros((channels, n * hw[0] * hw[1] + room), dtype)
        return rows, rows[:, :n * hw[0] * hw[1]].reshape(channels, n, *hw)

    def _weights(self, w2):
        """``w2 (G, M, C_g kH kW)`` -> ``(C_out, C_g, kH kW)``, checked: the loops index
        by them."""
        c_g, taps = self.x_shape[1] // self.groups, self.kernel[0] * self.kernel[1]
        expect_shape("Direct", "w2", w2, (self.groups,) + w2.shape[1:2] + (c_g * taps,))
        return np.ascontiguousarray(w2.reshape(-1, c_g, taps), dtype=self.src.dtype)

    def _run(self, work, fold=None):
        return threads.run(work, self.parts, blas=False, fold=fold)

    def _block(self, plane):
        """How many images' planes of ``plane`` numbers a block holds (``BLOCK_NUMBERS``)."""
        return max(1, BLOCK_NUMBERS // plane)

    def product(self, w2, bias=None):
        """The convolution plus ``bias``: ``(N, C_out, H_out W_out)``, as ``Columns.product``."""
        w = self._weights(w2)
        c_out, dtype = w.shape[0], self.src.dtype
        bias = np.zeros(c_out, dtype) if bias is None else bias.astype(dtype)
        expect_shape("Direct.product", "bias", bias, (c_out,))
        out = np.empty((self.x_shape[0], c_out) + self.out_hw, dtype=dtype)
        wp, plane = self.padded_hw[1], self.padded_hw[0] * self.padded_hw[1]
        self._run(lambda part: self.loops.forward(
            self.src, w, bias, self.kernel[1], plane, wp, *self.dilation, *self.stride,
            part.start, part.stop, np.empty(4 * self._block(plane) * plane, dtype), out))
        return out.reshape(out.shape[0], c_out, -1)

    def backward(self, w2, g, weights=True, inputs=True):
        """``(dw2 (G, M, C_g kH kW), dx (N, C, H, W))`` for ``g (N, C_out, L)``, as
        ``Columns.backward`` (``weights=False`` / ``inputs=False``: ``None``)."""
        w = self._weights(w2)
        n, c_out, dtype = self.x_shape[0], w.shape[0], self.src.dtype
        expect_shape("Direct.backward", "g", g, (n, c_out, self.out_hw[0] * self.out_hw[1]))
        g = np.ascontiguousarray(g, dtype=dtype).reshape((n, c_out) + self.out_hw)
        dw2 = self._weight_grad(w, g).astype(dtype).reshape(w2.shape) if weights else None
        return dw2, (self._input_grad(w, g) if inputs else None)

    def _weight_grad(self, w, g):
        """``dW (C_out, C_g, kH kW)`` in float64: each part's sums, added in part order
        (the same bits whichever thread made which part)."""
        wp, plane = self.padded_hw[1], self.padded_hw[0] * self.padded_hw[1]
        rows_shape = (g.shape[1], self._block(plane) * plane)

        def one_part(part):
            grad_w = np.zeros(w.shape)
            self.loops.weight_grad(self.src, g, self.kernel[1], plane, wp, *self.dilation,
                                   *self.stride, part.start, part.stop,
                                   np.empty(rows_shape, g.dtype), g.dtype.type(0), grad_w)
            return grad_w
        return self._run(one_part, fold=operator.add)          # in part order

    def _input_grad(self, w, g):
        """``dx (N, C, H, W)``: the transposed convolution, as the sums of ``g`` (spread
        ``stride`` apart, with the dilated kernel's extent around it) with the weights
        flipped and each group's in and out channels swapped."""
        (kh, kw), (dh, dw), (hp, wp) = self.kernel, self.dilation, self.padded_hw
        c_out, groups, c_g = g.shape[1], self.groups, self.x_shape[1] // self.groups
        hw = (hp + dh * (kh - 1), wp + dw * (kw - 1))              # the planes g is spread in
        plane = hw[0] * hw[1]
        flipped = w.reshape(groups, c_out // groups, c_g, -1)[..., ::-1]
        w_t = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3).reshape(groups * c_g,
                                                                         c_out // groups, -1))
        # zero padding: only the input's own pixels are kept (the padding's are dropped)
        zeros = self.padding_mode == "zeros"
        (top, _), (left, _) = self.pads if zeros else ((0, 0), (0, 0))
        grad_x = np.empty(self.x_shape if zeros else self.x_shape[:2] + self.padded_hw,
                          g.dtype)
        block = self._block(plane)
        room = dh * (kh - 1) * hw[1] + dw * (kw - 1)
        self._run(lambda part: self.loops.input_grad(
            g, w_t, kw, plane, hw[1], dh, dw, *self.stride, top, left, part.start, part.stop,
            np.empty((c_out, block * plane + room), g.dtype),
            np.empty(block * plane, g.dtype), grad_x))
        return grad_x if zeros else pad_adjoint(grad_x, self.pads, self.padding_mode)
