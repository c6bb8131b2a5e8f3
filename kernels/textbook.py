"""The textbook engine: convolution and pooling as columns and one matrix product.

What ``impl="textbook"`` runs, and the formulas every other engine reproduces.
No chunks, threads or caches: each function is its formula in array operations
that NumPy and CuPy share (``xp`` is the module the arrays belong to).

Sizes. A window of ``k`` taps ``d`` pixels apart spans ``d (k - 1) + 1`` pixels;
with stride ``s`` and ``p`` padded pixels on each side an axis of ``H`` pixels has::

    H_out = (H + 2 p - d (k - 1) - 1) // s + 1

window positions (``ceil_mode`` rounds up, but drops a last window that would
start past the input and its left padding, as PyTorch does).

im2col. Every window of every image becomes one column::

    cols[(c, u, v), (n, i, j)] = xpad[n, c, i sH + u dH, j sW + v dW]    (C kH kW, N H_out W_out)

so a convolution is ONE matrix product, ``W2 @ cols``, and its input gradient
``col2im(W2.T @ g2)``: ``col2im`` is the adjoint of ``im2col``, each column
sent back to its window, overlapping windows adding up. Pooling reads each
channel alone (``window_columns``): the maximum or the mean of each column.
"""
from itertools import chain
from numbers import Integral

import numpy as np

from ..backend import get_array_module

ONE = (1, 1)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# -- sizes and padding ---------------------------------------------------------------

def pair(value, name="value"):
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``; NumPy integers too; anything else is an error."""
    def is_int(v):
        return isinstance(v, Integral) and not isinstance(v, bool)
    if is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def output_size(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """Number of window positions along one axis (may be < 1 for bad input)."""
    room = size + 2 * padding - (dilation * (kernel - 1) + 1)
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def output_hw(hw, kernel, stride, padding, dilation=ONE, ceil_mode=False):
    """``(H_out, W_out)`` for input ``hw = (H, W)`` and pair-valued settings."""
    return tuple(output_size(hw[a], kernel[a], stride[a], padding[a], dilation[a], ceil_mode)
                 for a in range(2))


def windows_inside(size, n_out, kernel, stride, padding, dilation):
    """Whether each of the ``n_out`` windows along an axis has a tap inside the input. With
    dilation a window's taps may step over a small input (taps at -1 and 1 of a 1-pixel
    input): such a window has no maximum to take, nor a pixel to send its gradient to."""
    start = np.arange(n_out) * stride - padding
    first = np.maximum(0, -(start // dilation))        # the first tap at or after pixel 0
    return bool(np.all((first < kernel) & (start + first * dilation < size)))


def pads_of(padding):
    """``(pH, pW)`` -> ``((pH, pH), (pW, pW))``; ``((top, bottom), (left, right))`` unchanged."""
    return tuple(p if isinstance(p, tuple) else (p, p) for p in padding)


def source_index(i, size, before, mode):
    """The input index that padded index ``i`` reads along an axis of ``size``, with
    ``before`` padded pixels in front; ``None`` for a zero (``"zeros"``). ``reflect``
    mirrors about the edge pixel (``2 1 | 0 1 2 3 | 2 1``), ``replicate`` repeats it
    (``0 0 | 0 1 2 3 | 3 3``), ``circular`` wraps around (``2 3 | 0 1 2 3 | 0 1``)."""
    i -= before
    if 0 <= i < size:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(i, 0), size - 1)
    if mode == "circular":
        return i % size
    return -i if i < 0 else 2 * (size - 1) - i          # reflect


def pad(x, pads, mode="zeros"):
    """``x (N, C, H, W)`` padded by ``pads = ((top, bottom), (left, right))`` in ``mode``."""
    xp = get_array_module(x)
    if mode == "zeros":
        return xp.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    for axis, (before, after) in zip((2, 3), pads):      # each padded pixel copies one pixel
        size = x.shape[axis]
        sources = [source_index(i, size, before, mode) for i in range(before + size + after)]
        x = xp.take(x, xp.asarray(sources), axis=axis)
    return x


def pad_adjoint(grad, pads, mode="zeros"):
    """Adjoint of ``pad``: a padded pixel's gradient goes to the pixel it copied."""
    xp = get_array_module(grad)
    for axis, (before, after) in zip((2, 3), pads):
        size = grad.shape[axis] - before - after
        g = xp.moveaxis(grad, axis, 0)
        inner = g[before:before + size].copy()
        if mode != "zeros":
            for i in chain(range(before), range(before + size, before + size + after)):
                inner[source_index(i, size, before, mode)] += g[i]
        grad = xp.moveaxis(inner, 0, axis)
    return xp.ascontiguousarray(grad)


def _pad_windows(x, padding, extra=(0, 0), value=0.0):
    """``padding`` on every side, plus ``extra`` bottom and right (where a ``ceil_mode``
    window reaches past the padding), filled with ``value``."""
    (ph, pw), (eh, ew) = padding, extra
    if ph == pw == eh == ew == 0:
        return x
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)), constant_values=value)


def _extra(hw, kernel, stride, padding, dilation, out_hw):
    """Rows and columns the last windows read beyond the padding."""
    return tuple(max(0, (out_hw[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1
                     - hw[a] - 2 * padding[a]) for a in range(2))


# -- im2col and col2im ------------------------------------------------------------------

def im2col(x, kernel, stride, padding, dilation=ONE, pad_value=0.0, ceil_mode=False):
    """``x (N, C, H, W)`` -> ``cols (C kH kW, N H_out W_out)``; padding reads ``pad_value``.
    One strided slice per window tap ``(u, v)``: the loop is ``kH kW`` long."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho, wo = output_hw((h, w), kernel, stride, padding, dilation, ceil_mode)
    xpad = _pad_windows(x, padding, _extra((h, w), kernel, stride, padding, dilation, (ho, wo)),
                        pad_value)
    cols = xp.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            cols[:, u, v] = xpad[:, :, u * dh:u * dh + sh * (ho - 1) + 1:sh,
                                 v * dw:v * dw + sw * (wo - 1) + 1:sw].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * ho * wo)


def col2im(cols, x_shape, kernel, stride, padding, dilation=ONE, ceil_mode=False):
    """Adjoint of ``im2col``: ``cols (C kH kW, N H_out W_out)`` -> ``(N, C, H, W)``;
    windows that overlap add up, what falls on the padding is dropped."""
    xp = get_array_module(cols)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho, wo = output_hw((h, w), kernel, stride, padding, dilation, ceil_mode)
    eh, ew = _extra((h, w), kernel, stride, padding, dilation, (ho, wo))
    cols = cols.reshape(c, kh, kw, n, ho, wo)
    xpad = xp.zeros((n, c, h + 2 * ph + eh, w + 2 * pw + ew), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            xpad[:, :, u * dh:u * dh + sh * (ho - 1) + 1:sh,
                 v * dw:v * dw + sw * (wo - 1) + 1:sw] += cols[:, u, v].transpose(1, 0, 2, 3)
    return xpad[:, :, ph:ph + h, pw:pw + w]


# -- pooling ----------------------------------------------------------------------------

def window_columns(x, kernel, stride, padding, dilation=ONE, ceil_mode=False, pad_value=0.0):
    """Each channel on its own: ``x (N, C, H, W)`` -> ``(kH kW, N C H_out W_out)``."""
    n, c, h, w = x.shape
    return im2col(x.reshape(n * c, 1, h, w), kernel, stride, padding, dilation, pad_value,
                  ceil_mode)


def max_taps(cols):
    """The winning row of each column of ``cols (kH kW, M)``: ``(M,)``. Ties go to the
    first tap; a NaN wins (the column's last NaN), as in PyTorch."""
    xp = get_array_module(cols)
    nan = xp.isnan(cols)
    last_nan = cols.shape[0] - 1 - nan[::-1].argmax(axis=0)
    return xp.where(nan.any(axis=0), last_nan, cols.argmax(axis=0))


def switches_of(taps, out, x_shape, kernel, stride, padding, dilation=ONE):
    """Where each window's winner lies in its input plane, ``row * W + col``:
    ``(N, C, H_out, W_out)`` int64 from the taps ``(N C H_out W_out,)``. An all ``-inf``
    window (``out``) routes to its first tap inside the input, not to the padding."""
    xp = get_array_module(taps)
    n, c, h, w = x_shape
    ho, wo = out.shape[2:]
    (_, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    first_u = xp.maximum(0, -((xp.arange(ho) * sh - ph) // dh))     # first tap inside, per i
    first_v = xp.maximum(0, -((xp.arange(wo) * sw - pw) // dw))
    first = (first_u[:, None] * kw + first_v[None, :]).ravel()
    taps = xp.where(out.reshape(n * c, -1) == -xp.inf, first, taps.reshape(n * c, -1))
    i, j = xp.arange(ho).repeat(wo), xp.tile(xp.arange(wo), ho)     # each window's position
    rows, columns = i * sh + taps // kw * dh - ph, j * sw + taps % kw * dw - pw
    return (rows * w + columns).reshape(n, c, ho, wo).astype(xp.int64)


def scatter_add(grad_out, switches, x_shape):
    """``grad_x[n, c, switch] += grad_out[n, c, i, j]``: each window's gradient to its
    winner (Zeiler's unpooling); ``(N, C, H, W)``."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    plane = xp.arange(n * c, dtype=xp.int64).reshape(n, c, 1, 1) * (h * w)
    grad_x = xp.bincount((switches + plane).ravel(), weights=grad_out.ravel(),
                         minlength=n * c * h * w)
    return grad_x.astype(grad_out.dtype, copy=False).reshape(x_shape)


def avgpool_divisors(hw, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                     divisor_override=None):
    """``(H_out, W_out)`` float64: what each average-pooling window divides its sum by.
    PyTorch's rules: a window is cut at the far edge of the padding; ``count_include_pad``
    counts the padded pixels left inside, otherwise only the input's; ``divisor_override``
    replaces them all."""
    ho, wo = output_hw(hw, kernel, stride, padding, ceil_mode=ceil_mode)
    if divisor_override is not None:
        return np.full((ho, wo), float(divisor_override))
    counts = []
    for a, n_out in enumerate((ho, wo)):
        start = np.arange(n_out) * stride[a] - padding[a]
        stop = np.minimum(start + kernel[a], hw[a] + padding[a])
        if not count_include_pad:
            start, stop = np.maximum(start, 0), np.minimum(stop, hw[a])
        counts.append((stop - start).astype(np.float64))
    return counts[0][:, None] * counts[1][None, :]


# -- the same interface as the fast engine's loops (cpu.py, cuda.py) ----------------------

def maxpool_forward(x, kernel, stride, padding, dilation=ONE, ceil_mode=False):
    """``(out, switches)``, both ``(N, C, H_out, W_out)``: the maximum of each window column."""
    n, c, h, w = x.shape
    cols = window_columns(x, kernel, stride, padding, dilation, ceil_mode, -np.inf)
    taps = max_taps(cols)
    out = get_array_module(x).take_along_axis(cols, taps[None, :], axis=0)[0]
    out = out.reshape((n, c) + output_hw((h, w), kernel, stride, padding, dilation, ceil_mode))
    return out, switches_of(taps, out, x.shape, kernel, stride, padding, dilation)


def maxpool_backward(grad_out, switches, x_shape):
    return scatter_add(grad_out, switches, x_shape)


def avgpool_forward(x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                    divisor_override=None):
    """The sum of each window column over ``avgpool_divisors``: ``(N, C, H_out, W_out)``."""
    xp = get_array_module(x)
    divisor = avgpool_divisors(x.shape[2:], kernel, stride, padding, ceil_mode,
                               count_include_pad, divisor_override)
    sums = window_columns(x, kernel, stride, padding, ONE, ceil_mode).sum(axis=0)
    return sums.reshape(x.shape[:2] + divisor.shape) / xp.asarray(divisor, dtype=x.dtype)


def avgpool_backward(grad_out, x_shape, kernel, stride, padding, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
    """Each window shares its gradient: ``g / divisor`` to every pixel in it."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    divisor = avgpool_divisors((h, w), kernel, stride, padding, ceil_mode, count_include_pad,
                               divisor_override)
    share = (grad_out / xp.asarray(divisor, dtype=grad_out.dtype)).reshape(1, -1)
    cols = xp.broadcast_to(share, (kernel[0] * kernel[1], share.shape[1]))
    return col2im(cols, (n * c, 1, h, w), kernel, stride, padding, ONE,
                  ceil_mode).reshape(x_shape)


def maxunpool_forward(x, switches, out_hw):
    """``out[n, c, switch] = x[n, c, i, j]``, zeros elsewhere: ``(N, C, *out_hw)``."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    out = xp.zeros((n * c, out_hw[0] * out_hw[1]), dtype=x.dtype)
    out[xp.arange(n * c)[:, None], switches.reshape(n * c, -1)] = x.reshape(n * c, -1)
    return out.reshape(n, c, *out_hw)


def maxunpool_backward(grad_out, switches):
    """``grad_x[n, c, i, j] = grad_out[n, c, switch]`` (a gather): ``switches.shape``."""
    xp = get_array_module(grad_out)
    n, c = grad_out.shape[:2]
    return xp.take_along_axis(grad_out.reshape(n, c, -1), switches.reshape(n, c, -1),
                              axis=2).reshape(switches.shape)


# -- products, ReLU and Adam: the formulas (the fast engine fuses each into one pass on the CPU) -------

def matmul(a, b, out=None):
    """``a @ b`` (BLAS on the CPU, cuBLAS on the GPU), into ``out`` if given."""
    if out is None:
        return a @ b
    out[...] = a @ b
    return out


def relu_forward(x):
    """``(y, active)``: ``active = x > 0`` (what backward needs), ``y = x * active``."""
    active = x > 0
    return x * active, active


def relu_backward(grad_out, derivative):
    """``grad_out * derivative``: the mask ``x > 0``, or LeakyReLU's slopes."""
    return grad_out * derivative


def adam_update(w, g, m, v, step_size, b1, b2, eps, correction2):
    """Adam's update of ``w`` in place, with its moments ``m``, ``v`` (all one shape)::

        m = b1 m + (1 - b1) g        v = b2 v + (1 - b2) g^2
        w -= step_size * m / (sqrt(v / correction2) + eps)

    ``step_size = lr / (1 - b1^t)`` and ``correction2 = 1 - b2^t`` (bias corrections)."""
    xp = get_array_module(w)
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    denom = xp.sqrt(v / correction2)
    denom += eps
    w -= step_size * m / denom
