"""CUDA kernels (``numba.cuda``) for CuPy arrays: im2col / col2im and pooling.

Each kernel runs one GPU thread per output element and computes that element
straight from its formula, so it reads like ``reference.py`` without the
loops over the output. The matrix products stay in cuBLAS (``cupy.matmul``).

The kernels take CuPy arrays directly (Numba reads their
``__cuda_array_interface__``). Under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) they take NumPy arrays and run in Python threads:
that is how CI, which has no GPU, checks their logic against ``reference``.

Sums and maxima run in the arrays' dtype (a ``zero`` or ``lowest`` of it
starts them), as the textbook's do: float32 in float32 (tests/test_kernels_cuda.py
holds them to a float64 reference; tests/test_gpu_compile.py finds no float64
instruction in the float32 kernels' PTX).

Layouts are those of ``textbook.py``: ``cols (C*kH*kW, N*H_out*W_out)``;
switches hold ``row * W + col`` in the unpadded input plane, ties to the
first element in row-major window order, a NaN wins and an all ``-inf`` window
routes to its first tap inside the input. This module is imported only when
a CuPy array arrives, so the CPU install never needs ``numba.cuda``.
"""
import math
import warnings

from numba import cuda
from numba.core.errors import NumbaPerformanceWarning

from ..backend import get_array_module
from .checks import expect_shape, window_hw
from .textbook import avgpool_divisors

ONE = (1, 1)

THREADS_PER_BLOCK = 128


def first_launch(x):
    """Compile and launch one tiny kernel on ``x``'s device and check what it wrote:
    what would fail at the first real call (NVVM or libdevice missing, PTX newer than
    the driver) raises here, and ``fast.gpu_loops`` falls back to ``textbook``."""
    xp = get_array_module(x)
    expected = xp.arange(4, dtype=x.dtype)
    with warnings.catch_warnings():          # "grid size 1 ... under-utilization": on purpose
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        cols = im2col(expected.reshape(1, 1, 2, 2), (2, 2), ONE, (0, 0))  # (4, 1)
    if not bool((cols.ravel() == expected).all()):                        # one read, once
        raise RuntimeError(f"im2col of a 2x2 image gave {cols.ravel().tolist()}, "
                           f"expected [0, 1, 2, 3]")


def _launch(kernel, n_threads, *args):
    """Run ``kernel`` on at least ``n_threads`` threads (extra ones return at once)."""
    if n_threads > 0:
        blocks = (n_threads + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        kernel[blocks, THREADS_PER_BLOCK](*args)


# -- im2col / col2im ----------------------------------------------------------

@cuda.jit
def _im2col_kernel(x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    t = cuda.grid(1)                                    # one thread per element of cols
    n, c, h, w = x.shape
    if t >= cols.shape[0] * cols.shape[1]:
        return
    row, col = t // cols.shape[1], t % cols.shape[1]
    ch, u, v = row // (kh * kw), (row // kw) % kh, row % kw
    b, i, j = col // (ho * wo), (col // wo) % ho, col % wo
    r, q = i * sh + u * dh - ph, j * sw + v * dw - pw
    if 0 <= r < h and 0 <= q < w:
        cols[row, col] = x[b, ch, r, q]
    else:
        cols[row, col] = 0


@cuda.jit
def _col2im_kernel(cols, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, zero, out):
    t = cuda.grid(1)                                    # one thread per input pixel
    n, c, h, w = out.shape
    if t >= n * c * h * w:
        return
    b, ch, r, q = t // (c * h * w), (t // (h * w)) % c, (t // w) % h, t % w
    # Gather (no atomics): every window (i, j) that read x[r, q] at offset (u, v),
    # i.e. r = i*sH + u*dH - pH and q = j*sW + v*dW - pW.
    total = zero                                        # of cols' dtype: float32 sums stay float32
    for u in range(kh):
        di = r + ph - u * dh
        if di < 0 or di % sh != 0 or di // sh >= ho:
            continue
        for v in range(kw):
            dj = q + pw - v * dw
            if dj < 0 or dj % sw != 0 or dj // sw >= wo:
                continue
            total += cols[(ch * kh + u) * kw + v, (b * ho + di // sh) * wo + dj // sw]
    out[b, ch, r, q] = total


def im2col(x, kernel, stride, padding, dilation=ONE):
    """``x (N, C, H, W)`` -> ``cols (C*kH*kW, N*H_out*W_out)``; zero padding."""
    ho, wo = window_hw("im2col", x.shape, kernel, stride, padding, dilation)
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    cols = xp.empty((c * kh * kw, n * ho * wo), dtype=x.dtype)
    _launch(_im2col_kernel, cols.size, x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, cols)
    return cols


def col2im(cols, x_shape, kernel, stride, padding, dilation=ONE):
    """Adjoint of ``im2col``: ``cols`` -> ``(N, C, H, W)``; overlapping windows add up."""
    ho, wo = window_hw("col2im", x_shape, kernel, stride, padding, dilation)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c = x_shape[:2]
    expect_shape("col2im", "cols", cols, (c * kh * kw, n * ho * wo))
    xp = get_array_module(cols)
    cols = xp.ascontiguousarray(cols)
    out = xp.empty(x_shape, dtype=cols.dtype)
    _launch(_col2im_kernel, out.size, cols, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo,
            out.dtype.type(0), out)
    return out


# -- pooling ----------------------------------------------------------------------

@cuda.jit
def _maxpool_forward_kernel(x, kh, kw, sh, sw, ph, pw, dh, dw, lowest, out, switches):
    t = cuda.grid(1)                                    # one thread per output element
    n, c, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    if t >= n * c * ho * wo:
        return
    b, ch, i, j = t // (c * ho * wo), (t // (ho * wo)) % c, (t // wo) % ho, t % wo
    best, best_index = lowest, -1                       # -inf of x's dtype: float32 stays so
    for u in range(kh):
        for v in range(kw):
            r, q = i * sh + u * dh - ph, j * sw + v * dw - pw
            if 0 <= r < h and 0 <= q < w:
                if best_index < 0:
                    best_index = r * w + q                  # the first tap inside
                value = x[b, ch, r, q]
                if value > best or math.isnan(value):       # '>': first of ties; NaN wins
                    best, best_index = value, r * w + q
    out[b, ch, i, j] = best
    switches[b, ch, i, j] = best_index


@cuda.jit
def _maxpool_backward_kernel(grad_out, switches, grad_x):
    t = cuda.grid(1)                                    # one thread per output gradient
    n, c, ho, wo = grad_out.shape
    if t >= n * c * ho * wo:
        return
    b, ch, i, j = t // (c * ho * wo), (t // (ho * wo)) % c, (t // wo) % ho, t % wo
    switch = switches[b, ch, i, j]
    if 0 <= switch < grad_x.shape[2]:                   # never a write outside the plane
        # atomic: overlapping windows may send gradient to the same input
        cuda.atomic.add(grad_x, (b, ch, switch), grad_out[b, ch, i, j])


@cuda.jit
def _avgpool_forward_kernel(x, kh, kw, sh, sw, ph, pw, divisor, zero, out):
    t = cuda.grid(1)
    n, c, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    if t >= n * c * ho * wo:
        return
    b, ch, i, j = t // (c * ho * wo), (t // (ho * wo)) % c, (t // wo) % ho, t % wo
    total = zero                                        # of x's dtype, as the sums of textbook
    for u in range(kh):
        for v in range(kw):
            r, q = i * sh + u - ph, j * sw + v - pw
            if 0 <= r < h and 0 <= q < w:                  # padded zeros add nothing
                total += x[b, ch, r, q]
    out[b, ch, i, j] = total / divisor[i, j]


@cuda.jit
def _avgpool_backward_kernel(grad_out, kh, kw, sh, sw, ph, pw, divisor, grad_x):
    t = cuda.grid(1)
    n, c, ho, wo = grad_out.shape
    h, w = grad_x.shape[2], grad_x.shape[3]
    if t >= n * c * ho * wo:
        return
    b, ch, i, j = t // (c * ho * wo), (t // (ho * wo)) % c, (t // wo) % ho, t % wo
    share = grad_out[b, ch, i, j] / divisor[i, j]       # divisor of x's dtype
    for u in range(kh):
        for v in range(kw):
            r, q = i * sh + u - ph, j * sw + v - pw
            if 0 <= r < h and 0 <= q < w:
                cuda.atomic.add(grad_x, (b, ch, r, q), share)


def maxpool_forward(x, kernel, stride, padding, dilation=ONE, ceil_mode=False):
    """Returns ``(out, switches)``, both ``(N, C, H_out, W_out)``; switches int64."""
    ho, wo = window_hw("maxpool_forward", x.shape, kernel, stride, padding, dilation, ceil_mode)
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    out = xp.empty((n, c, ho, wo), dtype=x.dtype)
    switches = xp.empty((n, c, ho, wo), dtype=xp.int64)
    _launch(_maxpool_forward_kernel, out.size, x, kh, kw, sh, sw, ph, pw, dh, dw,
            x.dtype.type(-math.inf), out, switches)
    return out, switches


def maxpool_backward(grad_out, switches, x_shape):
    """``grad_x[switch] += grad_out``; returns ``grad_x`` of ``x_shape``."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    expect_shape("maxpool_backward", "grad_out", grad_out, (n, c) + grad_out.shape[-2:])
    expect_shape("maxpool_backward", "switches", switches, grad_out.shape)
    grad_x = xp.zeros((n, c, h * w), dtype=grad_out.dtype)
    _launch(_maxpool_backward_kernel, grad_out.size, xp.ascontiguousarray(grad_out),
            xp.ascontiguousarray(switches), grad_x)
    return grad_x.reshape(x_shape)


def avgpool_forward(x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                    divisor_override=None):
    """Window sums over ``textbook.avgpool_divisors``: ``(N, C, H_out, W_out)``."""
    window_hw("avgpool_forward", x.shape, kernel, stride, padding, ONE, ceil_mode)
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    divisor = xp.asarray(avgpool_divisors((h, w), kernel, stride, padding, ceil_mode,
                                          count_include_pad, divisor_override), dtype=x.dtype)
    out = xp.empty((n, c) + divisor.shape, dtype=x.dtype)
    _launch(_avgpool_forward_kernel, out.size, x, kh, kw, sh, sw, ph, pw, divisor,
            x.dtype.type(0), out)
    return out


def avgpool_backward(grad_out, x_shape, kernel, stride, padding, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
    """Each window shares its output gradient: ``g / divisor`` to every pixel in it."""
    hw = window_hw("avgpool_backward", x_shape, kernel, stride, padding, ONE, ceil_mode)
    expect_shape("avgpool_backward", "grad_out", grad_out, tuple(x_shape[:2]) + hw)
    xp = get_array_module(grad_out)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    divisor = xp.asarray(avgpool_divisors(x_shape[2:], kernel, stride, padding, ceil_mode,
                                          count_include_pad, divisor_override),
                         dtype=grad_out.dtype)
    grad_x = xp.zeros(x_shape, dtype=grad_out.dtype)
    _launch(_avgpool_backward_kernel, grad_out.size, xp.ascontiguousarray(grad_out),
            kh, kw, sh, sw, ph, pw, divisor, grad_x)
    return grad_x
