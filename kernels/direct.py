"""A convolution summed tap by tap (``direct_cpu.py``), for layers whose groups read ONE
input channel each: a depthwise convolution (``groups == in_channels``) and a network's
first layer on grey images (``in_channels == 1``).

There im2col has nothing to share: its columns copy every pixel ``kH kW`` times to
feed a product with ``K = kH kW`` rows only (25 for a 5x5 kernel; for a depthwise
layer, one tiny product per group), and col2im adds them back. The direct loops read
the padded input where it lies, as one long row per channel (every image's plane one
after the other), and add each tap's shifted row into the sums, a cache-sized block of
images at a time (measured per layer: benchmarks/README.md, issue 28).

A strided convolution is first made a stride-1 one over the input's PHASES (as
space-to-depth does): with stride ``(sH, sW)`` each channel's padded plane splits into
``sH sW`` planes ``phase[a, b][i, j] = padded[i sH + a, j sW + b]``, and the tap ``(u,
v)`` of output ``(i, j)`` reads ``padded[i sH + u dH, j sW + v dW]``, which is
``phase[(u dH) % sH, (v dW) % sW][i + (u dH) // sH, j + (v dW) // sW]``: a stride-1
tap of a smaller kernel on one phase. So the loops compute the kept outputs only, not
``sH sW`` times as many; the forward and the input gradient list each tap as (phase row,
shift), the real taps only (9 of the stride-1 problem's 16 for 3x3 at stride 2), and the
weight gradient runs over the stride-1 kernel (the other taps: zero weights) and keeps
the real taps' sums.

``Direct`` has ``Columns``' interface (``product``, ``backward``, ``out_hw``);
``fast.plan`` picks it where ``suits`` says so. The batch is cut into one part per
thread (``threads.parts``), the parts run in one parallel loop (``parallel.py``); each
part writes its own images, and the weight gradient's per-part sums are added in part
order (the same bits whichever thread made which part). Kept for backward: ``x`` itself
(as PyTorch keeps it; usually the array the layer before returned, so nothing more):
the product and the weight gradient each make a block of images' phases in a small
scratch as they go, where keeping the whole batch's phases held a padded copy of every
depthwise layer's input for the step (benchmarks/README.md, issue 28).
"""
import functools

import numpy as np

from . import scratch, threads
from .checks import expect_shape
from .textbook import output_hw, pad, pad_adjoint


def suits(x, stride, groups):
    """Whether ``Direct`` runs this convolution: NumPy float32/float64 arrays whose
    groups read one input channel each (``C_in == groups``)."""
    return (isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
            and x.shape[1] == groups)


# A block of images' rows (``direct_cpu``) stays under this many numbers, so that the
# shifted rows and the sums stay in the core's cache (benchmarks/README.md, issue 28).
BLOCK_NUMBERS = 4096


def _phase_axis(k, d, s):
    """One axis of the stride-1 problem: ``(taps, dilation, (phase, position) of each
    of the ``k`` taps)``; with stride 1 the kernel as it is."""
    if s == 1:
        return k, d, (np.zeros(k, int), np.arange(k))
    return d * (k - 1) // s + 1, 1, (np.arange(k) * d % s, np.arange(k) * d // s)


@functools.lru_cache(maxsize=256)
def _stride_one(kernel, dilation, stride):
    """The stride-1 problem of a geometry: ``(kernel, dilation, taps_at)``, ``taps_at``
    where each tap ``(u, v)`` lies in its ``(C_g, sH, sW, taps_h, taps_w)`` weights
    (worked out once per geometry: a layer asks at every step)."""
    along_h, along_w = (_phase_axis(*axis) for axis in zip(kernel, dilation, stride))
    taps_at = np.ix_(along_h[2][0], along_w[2][0]) + np.ix_(along_h[2][1], along_w[2][1])
    return (along_h[0], along_w[0]), (along_h[1], along_w[1]), taps_at


@functools.lru_cache(maxsize=256)
def _forward_taps(kernel, dilation, stride, wp):
    """``(kH kW, 2)``: where each tap ``(u, v)`` of the kernel reads in a channel's phase
    rows (planes ``wp`` wide): its phase's row ``p sW + q`` and its shift."""
    u, v = np.divmod(np.arange(kernel[0] * kernel[1]), kernel[1])
    (dh, dw), (sh, sw) = dilation, stride
    return np.stack([(u * dh % sh) * sw + v * dw % sw,
                     (u * dh // sh) * wp + v * dw // sw], axis=1)


@functools.lru_cache(maxsize=256)
def _transposed_taps(kernel, dilation, stride, per_group, wp):
    """The input gradient's taps, listed per phase ``s`` (the stride-1 weights' structural
    zeros left out): ``(taps (sH sW, K, 2), counts (sH sW,), m (sH sW, K), t (sH sW,
    K))``, phase ``s``'s first ``counts[s]`` entries being (row ``m`` of its group's
    ``g``, shift) for the flipped tap ``t`` (in planes ``wp`` wide)."""
    (kh, kw), (dh, dw), taps_at = _stride_one(kernel, dilation, stride)
    real = np.zeros((*stride, kh, kw), bool)
    real[taps_at] = True
    real = real.reshape(stride[0] * stride[1], -1)[:, ::-1]       # flipped
    m, t = np.meshgrid(np.arange(per_group), np.arange(kh * kw), indexing="ij")
    listed = [(m[:, real[s]].ravel(), t[:, real[s]].ravel()) for s in range(len(real))]
    counts = np.array([len(ms) for ms, _ in listed])
    ms, ts = (np.zeros((len(real), counts.max()), int) for _ in range(2))
    for s, (m_s, t_s) in enumerate(listed):
        ms[s, :counts[s]], ts[s, :counts[s]] = m_s, t_s
    return np.stack([ms, ts // kw * dh * wp + ts % kw * dw], axis=2), counts, ms, ts


class Direct:
    """One batch ``x (N, C, H, W)`` convolved tap by tap; see the module docstring.

    ``pads`` is ``((top, bottom), (left, right))`` in ``padding_mode``. Keeps ``x`` (a
    padded copy in the other modes); ``kernel`` and ``dilation`` are the stride-1
    problem's from here on."""

    def __init__(self, x, kernel, stride, pads, dilation=(1, 1), groups=1,
                 padding_mode="zeros"):
        from . import parallel           # Numba is there (fast.plan checked)
        self.loops = parallel
        self.stride, self.groups, self.pads = tuple(stride), groups, pads
        self.padding_mode, self.x_shape = padding_mode, x.shape
        n, c, h, w = x.shape
        (top, bottom), (left, right) = pads
        self.padded_hw = (h + top + bottom, w + left + right)
        self.out_hw = output_hw(self.padded_hw, kernel, stride, (0, 0), dilation)
        self.geometry = (tuple(kernel), tuple(dilation), self.stride)
        self.kernel, self.dilation, self.taps_at = _stride_one(*self.geometry)
        self.phase_hw = tuple(-(-size // s) for size, s in zip(self.padded_hw, stride))
        self.phases = stride[0] * stride[1]
        plane, taps = self.phase_hw[0] * self.phase_hw[1], self.kernel[0] * self.kernel[1]
        self.parts = threads.part_bounds(n, n * c * self.phases * plane * taps)
        source, self.corner = (x, top_left(pads)) if padding_mode == "zeros" else \
            (pad(x, pads, padding_mode), (0, 0))
        self.source = np.ascontiguousarray(source)          # read by product and backward
        self.bias_grad = None       # the sums of g, made by backward with the weights'
        self.biased = True          # product says: a bias-less layer's backward sums no g

    def _room(self, hw):
        """The zeros after a block's planes of ``hw`` that the last tap's shift reads."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return dh * (kh - 1) * hw[1] + dw * (kw - 1)

    def _weights(self, w2):
        """``w2 (G, M, C_g kH kW)`` -> the stride-1 problem's ``(C_out, C_g sH sW, taps)``
        (zeros for the taps a phase does not have), checked: the loops index by them."""
        c_g = self.x_shape[1] // self.groups
        kh, kw = self.taps_at[0].shape[0], self.taps_at[1].shape[1]
        expect_shape("Direct", "w2", w2, (self.groups,) + w2.shape[1:2] + (c_g * kh * kw,))
        c_out = self.groups * w2.shape[1]
        w = np.zeros((c_out, c_g, *self.stride, *self.kernel), self.source.dtype)
        w[(slice(None), slice(None)) + self.taps_at] = w2.reshape(c_out, c_g, kh, kw)
        return w.reshape(c_out, -1, self.kernel[0] * self.kernel[1])

    def _block(self, plane):
        """How many images' planes of ``plane`` numbers a block holds (``BLOCK_NUMBERS``)."""
        return max(1, BLOCK_NUMBERS // plane)

    def product(self, w2, bias=None):
        """The convolution plus ``bias``: ``(N, C_out, H_out W_out)``, as ``Columns.product``."""
        taps = _forward_taps(*self.geometry, self.phase_hw[1])
        expect_shape("Direct", "w2", w2, (self.groups,) + w2.shape[1:2] + (len(taps),))
        c_out, dtype = self.groups * w2.shape[1], self.source.dtype
        w = np.ascontiguousarray(w2.reshape(c_out, -1), dtype=dtype)
        self.biased = bias is not None
        bias = np.zeros(c_out, dtype) if bias is None else bias.astype(dtype)
        expect_shape("Direct.product", "bias", bias, (c_out,))
        out = np.empty((self.x_shape[0], c_out) + self.out_hw, dtype=dtype)
        plane = self.phase_hw[0] * self.phase_hw[1]
        block, parts = self._block(plane), len(self.parts)
        # each part's rows and four sums, each on its own cache lines (scratch.py)
        rows = scratch.rows((parts, self.phases), block * plane + self._room(self.phase_hw),
                            dtype)
        sums = scratch.rows((parts, 4), block * plane, dtype)
        self.loops.direct_forward(self.source, *self.corner, *self.stride, *self.phase_hw, rows,
                                  w, taps, bias, self.parts, block, sums, out)
        return out.reshape(out.shape[0], c_out, -1)

    def backward(self, w2, g, weights=True, inputs=True):
        """``(dw2 (G, M, C_g kH kW), dx (N, C, H, W))`` for ``g (N, C_out, L)``, as
        ``Columns.backward`` (``weights=False`` / ``inputs=False``: ``None``). Each part of
        the batch makes both in one parallel loop."""
        w = self._weights(w2)
        n, c_out, dtype = self.x_shape[0], w.shape[0], self.source.dtype
        expect_shape("Direct.backward", "g", g, (n, c_out, self.out_hw[0] * self.out_hw[1]))
        g = np.ascontiguousarray(g, dtype=dtype).reshape((n, c_out) + self.out_hw)
        (kh, kw), (dh, dw), (hp, wp) = self.kernel, self.dilation, self.phase_hw
        parts, plane, per_group = len(self.parts), hp * wp, c_out // self.groups
        # the weight gradient: a part's sums in float64, in its own slot
        grad_w = np.zeros((parts,) + (w.shape if weights else (0, 0, 0)))
        grad_b = np.zeros((parts, c_out if weights and self.biased else 0))  # the bias's
        w_t, taps_t, counts, hw_t, grad_x = self._transposed(w, g, inputs)
        ph, pw = dh * (kh - 1), dw * (kw - 1)         # the kernel's extent around g's planes
        plane_t = hw_t[0] * hw_t[1]
        block, block_t = self._block(plane), self._block(plane_t)
        # each part's rows, a group's at a time: the input gradient's, then the weight
        # gradient's (the input's phases, then the group's g), in one scratch, every row
        # on its own cache lines (scratch.py)
        rows_p = (self.phases, scratch.line_up(block * plane + self._room(self.phase_hw), dtype))
        rows_g = (per_group, scratch.line_up(block * plane, dtype))
        rows_t = (per_group, scratch.line_up(block_t * plane_t + self._room(hw_t), dtype))
        sums_t = (self.phases, scratch.line_up(block_t * plane_t, dtype))
        size = max(rows_p[0] * rows_p[1] + rows_g[0] * rows_g[1] if weights else 0,
                   rows_t[0] * rows_t[1] + sums_t[0] * sums_t[1] if inputs else 0)
        self.loops.direct_backward(self.source, *self.corner, *self.stride, hp, wp, g, kw, dh,
                                   dw, self.parts, block, rows_p, rows_g, dtype.type(0), grad_w,
                                   grad_b, weights, w_t, taps_t, counts, ph, pw, plane_t,
                                   hw_t[1], block_t, rows_t, sums_t, grad_x, inputs,
                                   scratch.rows((parts,), size, dtype))
        dw2 = dx = self.bias_grad = None
        if weights:         # the parts' sums in part order; the stride-1 problem's gradient
            total = threads.add_in_order(grad_w)                   # at each real tap
            grad = total.reshape(c_out, -1, *self.stride, *self.kernel)
            dw2 = grad[(slice(None), slice(None)) + self.taps_at].astype(dtype).reshape(w2.shape)
            self.bias_grad = threads.add_in_order(grad_b).astype(dtype) if self.biased else None
        if inputs:          # zero padding: the input's own pixels only, as put
            dx = grad_x if self.padding_mode == "zeros" else \
                pad_adjoint(grad_x, self.pads, self.padding_mode)
        return dw2, dx

    def _transposed(self, w, g, inputs):
        """The input gradient's operands: ``(w_t, taps_t, counts, (H, W), grad_x)``. It is
        the transposed convolution: the sums of ``g`` spread in planes of ``(H, W)`` (with
        the kernel's extent around it) with the weights flipped, each group's in and out
        channels swapped, and listed per phase as ``_transposed_taps`` lists the taps
        (``w_t (C sH sW, K)``), a plane per phase, each put back in its place (zero
        padding: ``grad_x (N, C, H, W)``, the padding's pixels dropped, ``self.corner`` the
        input's corner; other modes: the padded input's gradient)."""
        (kh, kw), (dh, dw), (hp, wp) = self.kernel, self.dilation, self.phase_hw
        c_out, groups, phases = g.shape[1], self.groups, w.shape[1]
        hw_t = (hp + dh * (kh - 1), wp + dw * (kw - 1))
        taps_t, counts, m, t = _transposed_taps(*self.geometry, c_out // groups, hw_t[1])
        flipped = w.reshape(groups, c_out // groups, phases, -1)[..., ::-1]
        w_t = flipped.transpose(0, 2, 1, 3)                  # (G, sH sW, M, taps)
        w_t = w_t[:, np.arange(phases)[:, None], m, t].reshape(groups * phases, -1)
        shape = self.x_shape if self.padding_mode == "zeros" else self.x_shape[:2] + self.padded_hw
        grad_x = np.empty(shape if inputs else (0, 0, 0, 0), g.dtype)
        return np.ascontiguousarray(w_t), taps_t, counts, hw_t, grad_x


def top_left(pads):
    """``(top, left)`` of ``((top, bottom), (left, right))``."""
    return pads[0][0], pads[1][0]
