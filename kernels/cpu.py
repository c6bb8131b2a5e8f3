"""Numba kernels for the CPU: im2col / col2im and pooling as compiled loops.

NumPy does these steps badly: its im2col makes ``kH * kW`` strided copies and
its pooling builds a big window array first. Here each is one pass of plain
loops, compiled by Numba. The
loops read like the formulas in ``reference.py``; the matrix products stay
in BLAS (``numpy.matmul``), which no hand loop beats.

Layouts are those of ``textbook.py`` (the functions are interchangeable):
``cols (C*kH*kW, N*H_out*W_out)``; switches hold ``row * W + col`` in the
unpadded input plane, ties to the first element in row-major window order, a
NaN wins, an all ``-inf`` window routes to its first tap inside the input.

``cache=True`` keeps the compiled code on disk (next to this file), so only
the first run on a machine pays the compile time (a few seconds).

Each kernel runs on one thread over the images it is given; a ``_parts`` loop
(``parallel.py``: Numba's ``prange``) hands each thread its part of the batch.

Each public function allocates its output and calls a ``_kernel``; the
kernels take only arrays and ints, so Numba compiles one version per dtype.
"""
import numpy as np
from numba import njit, prange

from .checks import expect_shape, window_hw
from .parallel import parts_loop
from .textbook import avgpool_divisors
from .threads import part_bounds

ONE = (1, 1)


# -- im2col / col2im ----------------------------------------------------------

# The loops work on a padded copy of the image: every window then lies inside
# it, so the inner loops need no bounds tests (faster than clipping each window
# row to the image: benchmarks/README.md, "Behind the kernels' choices").

@njit(cache=True, nogil=True)
def _im2col_kernel(x_padded, kh, kw, sh, sw, dh, dw, ho, wo, cols):
    n, c = x_padded.shape[0], x_padded.shape[1]
    for row in range(c * kh * kw):                     # one row of cols per (c, u, v)
        ch, u, v = row // (kh * kw), (row // kw) % kh, row % kw
        for b in range(n):
            for i in range(ho):
                start, image_row = (b * ho + i) * wo, x_padded[b, ch, i * sh + u * dh]
                for j in range(wo):
                    cols[row, start + j] = image_row[j * sw + v * dw]


@njit(cache=True, nogil=True)
def _col2im_kernel(cols, kh, kw, sh, sw, dh, dw, ho, wo, out_padded):
    n, c = out_padded.shape[0], out_padded.shape[1]
    for b in range(n):                                 # plane by plane: its sums stay in cache
        for ch in range(c):
            plane = out_padded[b, ch]
            plane[:] = 0
            for u in range(kh):
                for v in range(kw):
                    row = (ch * kh + u) * kw + v
                    for i in range(ho):
                        start, image_row = (b * ho + i) * wo, plane[i * sh + u * dh]
                        for j in range(wo):
                            image_row[j * sw + v * dw] += cols[row, start + j]


def im2col(x, kernel, stride, padding, dilation=ONE):
    """``x (N, C, H, W)`` -> ``cols (C*kH*kW, N*H_out*W_out)``; zero padding."""
    ho, wo = window_hw("im2col", x.shape, kernel, stride, padding, dilation)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = np.empty((c * kh * kw, n * ho * wo), dtype=x.dtype)
    _im2col_kernel(x_padded, kh, kw, sh, sw, dh, dw, ho, wo, cols)
    return cols


def col2im(cols, x_shape, kernel, stride, padding, dilation=ONE):
    """Adjoint of ``im2col``: ``cols (C*kH*kW, N*H_out*W_out)`` -> ``(N, C, H, W)``;
    overlapping windows add up, and what falls on the padding is dropped."""
    ho, wo = window_hw("col2im", x_shape, kernel, stride, padding, dilation)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    expect_shape("col2im", "cols", cols, (c * kh * kw, n * ho * wo))
    out_padded = np.empty((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    _col2im_kernel(np.ascontiguousarray(cols), kh, kw, sh, sw, dh, dw, ho, wo, out_padded)
    if not (ph or pw):
        return out_padded
    return np.ascontiguousarray(out_padded[:, :, ph:ph + h, pw:pw + w])


# -- max pooling ----------------------------------------------------------------

@njit(cache=True, nogil=True)
def _inside(start, d, k, size):
    """Pixels ``lo, lo + d, ... < hi`` of the window taps ``start + u*d`` that lie inside."""
    lo = start if start >= 0 else start + (-start + d - 1) // d * d
    return lo, min(size, start + (k - 1) * d + 1)


@njit(cache=True, nogil=True)
def _maxpool_forward_kernel(x, kh, kw, sh, sw, ph, pw, dh, dw, out, switches):
    n, c, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    for plane in range(n * c):
        b, ch = plane // c, plane % c
        for i in range(ho):
            r_lo, r_hi = _inside(i * sh - ph, dh, kh, h)
            for j in range(wo):
                q_lo, q_hi = _inside(j * sw - pw, dw, kw, w)
                # the first tap inside is where an all -inf window routes
                best, best_index, total = -np.inf, r_lo * w + q_lo, 0.0
                for r in range(r_lo, r_hi, dh):
                    for q in range(q_lo, q_hi, dw):
                        total += x[b, ch, r, q]
                        if x[b, ch, r, q] > best:       # '>' keeps the first of ties
                            best, best_index = x[b, ch, r, q], r * w + q
                if total != total:                      # a NaN (or inf - inf) is in the window:
                    for r in range(r_lo, r_hi, dh):     # then the last NaN wins, as in PyTorch
                        for q in range(q_lo, q_hi, dw):
                            if np.isnan(x[b, ch, r, q]):
                                best, best_index = x[b, ch, r, q], r * w + q
                out[b, ch, i, j] = best
                switches[b, ch, i, j] = best_index


@njit(cache=True, nogil=True)
def _maxpool2x2_kernel(x, out, switches):
    """``_maxpool_forward_kernel`` for the common 2x2 windows, stride 2, no padding: the
    four taps compared directly: no window bounds, no running sum (benchmarks/README.md)."""
    n, c, h, w = x.shape
    for b in range(n):
        for ch in range(c):
            for i in range(out.shape[2]):
                top, bottom = x[b, ch, 2 * i], x[b, ch, 2 * i + 1]
                for j in range(out.shape[3]):
                    taps = (top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1])
                    first = (2 * i) * w + 2 * j
                    where = (first, first + 1, first + w, first + w + 1)
                    best, best_index = taps[0], where[0]
                    for k in range(1, 4):
                        if taps[k] > best:                  # '>' keeps the first of ties
                            best, best_index = taps[k], where[k]
                    for k in range(4):                      # the last NaN wins
                        if taps[k] != taps[k]:
                            best, best_index = taps[k], where[k]
                    out[b, ch, i, j] = best
                    switches[b, ch, i, j] = best_index


@njit(cache=True, nogil=True)
def _maxpool_backward_kernel(grad_out, switches, grad_x):
    """False at the first switch outside its plane (the caller raises: an error raised in
    a parallel loop reaches Python as a SystemError)."""
    n, c, size = grad_out.shape[0], grad_out.shape[1], grad_x.shape[2]
    for plane in range(n * c):                         # grad_x (N, C, H*W)
        b, ch = plane // c, plane % c
        grad_x[b, ch] = 0
        for i in range(grad_out.shape[2]):
            for j in range(grad_out.shape[3]):
                switch = switches[b, ch, i, j]
                if switch < 0 or switch >= size:       # would write outside the plane
                    return False
                grad_x[b, ch, switch] += grad_out[b, ch, i, j]
    return True


def maxpool_forward(x, kernel, stride, padding, dilation=ONE, ceil_mode=False):
    """Returns ``(out, switches)``, both ``(N, C, H_out, W_out)``; switches int64."""
    ho, wo = window_hw("maxpool_forward", x.shape, kernel, stride, padding, dilation, ceil_mode)
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    switches = np.empty((n, c, ho, wo), dtype=np.int64)
    # the 2x2 path reads four taps unchecked: only where every window lies inside x (with
    # ceil_mode an odd side ends in a window cut by the edge, which the general loop clips)
    if (kh, kw, sh, sw, ph, pw, dh, dw) == (2, 2, 2, 2, 0, 0, 1, 1) and \
            2 * ho <= h and 2 * wo <= w:
        _maxpool2x2_parts(x, out, switches, part_bounds(n, x.size))
        return out, switches
    _maxpool_forward_parts(x, kh, kw, sh, sw, ph, pw, dh, dw, out, switches,
                           part_bounds(n, x.size))
    return out, switches


def maxpool_backward(grad_out, switches, x_shape):
    """``grad_x[switch] += grad_out`` per plane; returns ``grad_x`` of ``x_shape``."""
    n, c, h, w = x_shape
    expect_shape("maxpool_backward", "grad_out", grad_out, (n, c) + grad_out.shape[-2:])
    expect_shape("maxpool_backward", "switches", switches, grad_out.shape)
    grad_x = np.empty((n, c, h * w), dtype=grad_out.dtype)
    grad_out, switches = np.ascontiguousarray(grad_out), np.ascontiguousarray(switches)
    parts = part_bounds(n, grad_x.size)
    inside = np.empty(len(parts), np.bool_)
    _maxpool_backward_parts(grad_out, switches, grad_x, parts, inside)
    if not inside.all():
        raise ValueError("minicnn.kernels.maxpool_backward: a switch points outside the "
                         "input plane (switches from another input?)")
    return grad_x.reshape(x_shape)


# -- average pooling --------------------------------------------------------------

@njit(cache=True, nogil=True)
def _avgpool_forward_kernel(x, kh, kw, sh, sw, ph, pw, divisor, out):
    planes = x.reshape(-1, x.shape[2], x.shape[3])     # (N C, H, W): both C-contiguous
    sums = out.reshape(-1, out.shape[2], out.shape[3])
    count, h, w = planes.shape
    p = 0
    while p < count:        # four planes at a time: four sums the core adds side by side,
        step = 4 if p + 4 <= count else 1       # each in its window's order (the same bits)
        for i in range(sums.shape[1]):
            r_lo, r_hi = max(0, i * sh - ph), min(h, i * sh - ph + kh)   # window rows inside x
            for j in range(sums.shape[2]):
                q_lo, q_hi = max(0, j * sw - pw), min(w, j * sw - pw + kw)
                t0 = t1 = t2 = t3 = 0.0                 # padded zeros add nothing
                for r in range(r_lo, r_hi):
                    for q in range(q_lo, q_hi):
                        t0 += planes[p, r, q]
                        if step == 4:
                            t1 += planes[p + 1, r, q]
                            t2 += planes[p + 2, r, q]
                            t3 += planes[p + 3, r, q]
                sums[p, i, j] = t0 / divisor[i, j]
                if step == 4:
                    sums[p + 1, i, j] = t1 / divisor[i, j]
                    sums[p + 2, i, j] = t2 / divisor[i, j]
                    sums[p + 3, i, j] = t3 / divisor[i, j]
        p += step


@njit(cache=True, nogil=True)
def _avgpool_backward_kernel(grad_out, kh, kw, sh, sw, ph, pw, divisor, grad_x):
    n, c, h, w = grad_x.shape
    ho, wo = grad_out.shape[2], grad_out.shape[3]
    whole = ho == 1 and wo == 1 and (kh, kw, ph, pw) == (h, w, 0, 0)  # a window per plane
    planes = grad_x.reshape(n * c, h * w)
    for plane in range(n * c):
        b, ch = plane // c, plane % c
        if whole:       # one share fills the plane, as one flat row (the loops below take
            planes[plane] = grad_out[b, ch, 0, 0] / divisor[0, 0]    # a row at a time)
            continue
        grad_x[b, ch] = 0
        for i in range(ho):
            r_lo, r_hi = max(0, i * sh - ph), min(h, i * sh - ph + kh)
            for j in range(wo):
                q_lo, q_hi = max(0, j * sw - pw), min(w, j * sw - pw + kw)
                share = grad_out[b, ch, i, j] / divisor[i, j]
                for r in range(r_lo, r_hi):
                    for q in range(q_lo, q_hi):
                        grad_x[b, ch, r, q] += share


def avgpool_forward(x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                    divisor_override=None):
    """Window sums over ``textbook.avgpool_divisors``: ``(N, C, H_out, W_out)``."""
    window_hw("avgpool_forward", x.shape, kernel, stride, padding, ONE, ceil_mode)
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    divisor = avgpool_divisors((h, w), kernel, stride, padding, ceil_mode, count_include_pad,
                               divisor_override).astype(x.dtype)
    out = np.empty((n, c) + divisor.shape, dtype=x.dtype)
    _avgpool_forward_parts(x, kh, kw, sh, sw, ph, pw, divisor, out, part_bounds(n, x.size))
    return out


def avgpool_backward(grad_out, x_shape, kernel, stride, padding, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
    """Each window shares its output gradient: ``g / divisor`` to every pixel in it."""
    hw = window_hw("avgpool_backward", x_shape, kernel, stride, padding, ONE, ceil_mode)
    expect_shape("avgpool_backward", "grad_out", grad_out, tuple(x_shape[:2]) + hw)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    divisor = avgpool_divisors(x_shape[2:], kernel, stride, padding, ceil_mode,
                               count_include_pad, divisor_override).astype(grad_out.dtype)
    grad_x = np.empty(x_shape, dtype=grad_out.dtype)
    grad_out = np.ascontiguousarray(grad_out)
    _avgpool_backward_parts(grad_out, kh, kw, sh, sw, ph, pw, divisor, grad_x,
                            part_bounds(x_shape[0], grad_x.size))
    return grad_x


# -- the loops above, a part of the batch on each thread (parallel.py) ----------------

@parts_loop
def _maxpool2x2_parts(x, out, switches, parts):
    for p in prange(parts.shape[0]):
        b = slice(parts[p, 0], parts[p, 1])
        _maxpool2x2_kernel(x[b], out[b], switches[b])


@parts_loop
def _maxpool_forward_parts(x, kh, kw, sh, sw, ph, pw, dh, dw, out, switches, parts):
    for p in prange(parts.shape[0]):
        b = slice(parts[p, 0], parts[p, 1])
        _maxpool_forward_kernel(x[b], kh, kw, sh, sw, ph, pw, dh, dw, out[b], switches[b])


@parts_loop
def _maxpool_backward_parts(grad_out, switches, grad_x, parts, inside):
    for p in prange(parts.shape[0]):
        b = slice(parts[p, 0], parts[p, 1])
        inside[p] = _maxpool_backward_kernel(grad_out[b], switches[b], grad_x[b])


@parts_loop
def _avgpool_forward_parts(x, kh, kw, sh, sw, ph, pw, divisor, out, parts):
    for p in prange(parts.shape[0]):
        b = slice(parts[p, 0], parts[p, 1])
        _avgpool_forward_kernel(x[b], kh, kw, sh, sw, ph, pw, divisor, out[b])


@parts_loop
def _avgpool_backward_parts(grad_out, kh, kw, sh, sw, ph, pw, divisor, grad_x, parts):
    for p in prange(parts.shape[0]):
        b = slice(parts[p, 0], parts[p, 1])
        _avgpool_backward_kernel(grad_out[b], kh, kw, sh, sw, ph, pw, divisor, grad_x[b])
