"""Batch normalization's passes as Numba loops for the CPU: two passes over memory a way.

The formulas are ``BatchNorm2D``'s (``minicnn/layers/norm.py``); NumPy evaluates them
as a dozen array operations, each a pass over the whole ``(N, C, H, W)`` batch with a
temporary (``x.mean``, ``x.var`` (three), ``x - mean``, ``* inv_std``, ``* weight``,
``+ bias``; backward as many). Here, with ``x`` seen as ``(N, C, L)`` (``L = H W``;
``BatchNorm1D``'s ``(N, C)`` is ``L = 1``):

=================  ==================================================================
``batch_stats``    one pass: each channel's mean and biased variance, summed in
                   float64 around the channel's first value (no cancellation when
                   the mean is large against the spread)
``normalize``      one pass: ``y = weight (x - mean) inv_std + bias``
``grad_sums``      one pass: each channel's ``sum g`` and ``sum g x_hat`` (float64)
``normalize_grad`` one pass: ``dx = (g w - a - x_hat b) inv_std`` with per-channel
                   ``a``, ``b`` (the means of ``g w`` and ``g w x_hat``; zero in eval)
=================  ==================================================================

``x_hat = (x - mean) inv_std`` is never stored: the layer keeps ``x`` (as PyTorch does:
it is the previous layer's output, alive anyway) and backward computes ``x_hat`` again
on the way, which costs less than writing and reading a whole batch more.

The loops walk memory in order (image, channel, position), so the per-channel sums are
the same wherever the channel lies. Each pass runs on every thread, a part of the batch's
images each (``parallel.parts_loop``, one part for small work): the two sums passes add
each part's sums into its own slot, added in part order (``threads.add_in_order``: the
same bits for a given thread count). Each entry checks the shapes it indexes with
(``checks.expect_shape``).
"""
import numpy as np
from numba import njit, prange

from .checks import expect_shape
from .parallel import parts_loop
from .threads import add_in_order, part_bounds

# The channel sums are reductions: summed in any order (as NumPy's pairwise sums do not
# either keep the written order), they vectorize; NaN and inf keep their meaning. Without
# it the statistics' pass took 7x as long (benchmarks/README.md, issue 28).
REDUCE = {"reassoc", "contract"}


def _as_ncl(a):
    """``(N, C, ...)`` -> a contiguous ``(N, C, L)`` view (or copy)."""
    return np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def _expect_channels(where, channels, **vectors):
    for name, v in vectors.items():
        if v is not None:
            expect_shape(where, name, v, (channels,))


@njit(cache=True, nogil=True, fastmath=REDUCE)
def _stats_kernel(x, shift, s1, s2):
    """``s1[ch] += sum (x - shift[ch])``, ``s2[ch] += sum (x - shift[ch])^2`` over the
    images of ``x (n, C, L)`` (float64 sums)."""
    n, c, length = x.shape
    for b in range(n):
        for ch in range(c):
            k, t1, t2 = shift[ch], 0.0, 0.0
            for i in range(length):
                d = x[b, ch, i] - k
                t1 += d
                t2 += d * d
            s1[ch] += t1
            s2[ch] += t2


@parts_loop
def _stats_parts(x, shift, parts, s1, s2):
    for p in prange(parts.shape[0]):
        n0, n1 = parts[p, 0], parts[p, 1]
        _stats_kernel(x[n0:n1], shift, s1[p], s2[p])


def batch_stats(x):
    """``(mean, var)`` of each channel of ``x (N, C, ...)`` over every other axis, the
    variance biased (over ``M = x.size / C``), in ``x``'s dtype: ``x.mean(axes)``,
    ``x.var(axes)``. The sums run around each channel's first value (``shift``)."""
    x3 = _as_ncl(x)
    c = x3.shape[1]
    shift = x3[0, :, 0].astype(np.float64)
    parts = part_bounds(x3.shape[0], x3.size)
    s1, s2 = np.zeros((len(parts), c)), np.zeros((len(parts), c))
    _stats_parts(x3, shift, parts, s1, s2)
    m = x3.shape[0] * x3.shape[2]
    mean_shifted = add_in_order(s1) / m
    var = np.maximum(add_in_order(s2) / m - mean_shifted ** 2, 0.0)
    return (shift + mean_shifted).astype(x.dtype), var.astype(x.dtype)


@njit(cache=True, nogil=True)
def _normalize_kernel(x, mean, inv_std, scale, shift, y):
    n, c, length = x.shape
    for b in range(n):
        for ch in range(c):
            mu, s, w, t = mean[ch], inv_std[ch], scale[ch], shift[ch]
            for i in range(length):
                y[b, ch, i] = (x[b, ch, i] - mu) * s * w + t


def normalize(x, mean, inv_std, weight=None, bias=None):
    """``y = weight (x - mean) inv_std + bias`` per channel for ``x (N, C, ...)`` (without
    ``weight``: ``x_hat = (x - mean) inv_std``), in ``x``'s dtype and shape."""
    x3 = _as_ncl(x)
    c, dtype = x3.shape[1], x.dtype
    _expect_channels("normalize", c, mean=mean, inv_std=inv_std, weight=weight, bias=bias)
    scale = np.ones(c, dtype) if weight is None else weight.astype(dtype, copy=False)
    shift = np.zeros(c, dtype) if bias is None else bias.astype(dtype, copy=False)
    y = np.empty_like(x3)
    _normalize_parts(x3, mean.astype(dtype, copy=False), inv_std.astype(dtype, copy=False),
                     scale, shift, part_bounds(x3.shape[0], x3.size), y)
    return y.reshape(x.shape)


@parts_loop
def _normalize_parts(x, mean, inv_std, scale, shift, parts, y):
    for p in prange(parts.shape[0]):
        n0, n1 = parts[p, 0], parts[p, 1]
        _normalize_kernel(x[n0:n1], mean, inv_std, scale, shift, y[n0:n1])


@njit(cache=True, nogil=True, fastmath=REDUCE)
def _grad_sums_kernel(g, x, mean, inv_std, sum_g, sum_gx):
    n, c, length = g.shape
    for b in range(n):
        for ch in range(c):
            mu, s, t1, t2 = mean[ch], inv_std[ch], 0.0, 0.0
            for i in range(length):
                t1 += g[b, ch, i]
                t2 += g[b, ch, i] * ((x[b, ch, i] - mu) * s)
            sum_g[ch] += t1
            sum_gx[ch] += t2


def grad_sums(g, x, mean, inv_std):
    """``(sum g, sum g x_hat)`` of each channel (float64, ``(C,)``) for ``g`` and ``x`` of
    one shape ``(N, C, ...)``, ``x_hat = (x - mean) inv_std`` computed on the way."""
    expect_shape("grad_sums", "x", x, g.shape)
    g3, x3 = _as_ncl(g), _as_ncl(x)
    c, dtype = g3.shape[1], g.dtype
    _expect_channels("grad_sums", c, mean=mean, inv_std=inv_std)
    parts = part_bounds(g3.shape[0], g3.size)
    sum_g, sum_gx = np.zeros((len(parts), c)), np.zeros((len(parts), c))
    _grad_sums_parts(g3, x3, mean.astype(dtype, copy=False), inv_std.astype(dtype, copy=False),
                     parts, sum_g, sum_gx)
    return add_in_order(sum_g), add_in_order(sum_gx)


@parts_loop
def _grad_sums_parts(g, x, mean, inv_std, parts, sum_g, sum_gx):
    for p in prange(parts.shape[0]):
        n0, n1 = parts[p, 0], parts[p, 1]
        _grad_sums_kernel(g[n0:n1], x[n0:n1], mean, inv_std, sum_g[p], sum_gx[p])


@njit(cache=True, nogil=True)
def _normalize_grad_kernel(g, x, mean, scale, a, b_coef, inv_std, dx):
    n, c, length = g.shape
    for b in range(n):
        for ch in range(c):
            mu, w, ac, bc, s = mean[ch], scale[ch], a[ch], b_coef[ch], inv_std[ch]
            for i in range(length):
                dx[b, ch, i] = (g[b, ch, i] * w - ac - (x[b, ch, i] - mu) * s * bc) * s


def normalize_grad(g, x, mean, inv_std, weight=None, mean_g=None, mean_gx=None):
    """``dx = (g w - w mean_g - x_hat w mean_gx) inv_std`` per channel, in ``g``'s dtype
    and shape, ``x_hat = (x - mean) inv_std``: BatchNorm's input gradient (``mean_g``,
    ``mean_gx``: the channel means of ``g`` and ``g x_hat`` in training, ``None`` in eval
    mode: then ``dx = g w inv_std``)."""
    expect_shape("normalize_grad", "x", x, g.shape)
    g3, x3 = _as_ncl(g), _as_ncl(x)
    c, dtype = g3.shape[1], g.dtype
    _expect_channels("normalize_grad", c, mean=mean, inv_std=inv_std, weight=weight,
                     mean_g=mean_g, mean_gx=mean_gx)
    scale = np.ones(c) if weight is None else weight.astype(np.float64)
    a = np.zeros(c) if mean_g is None else scale * mean_g
    b = np.zeros(c) if mean_gx is None else scale * mean_gx
    dx = np.empty_like(g3)
    _normalize_grad_parts(g3, x3, *(v.astype(dtype) for v in (mean, scale, a, b, inv_std)),
                          part_bounds(g3.shape[0], g3.size), dx)
    return dx.reshape(g.shape)


@parts_loop
def _normalize_grad_parts(g, x, mean, scale, a, b_coef, inv_std, parts, dx):
    for p in prange(parts.shape[0]):
        n0, n1 = parts[p, 0], parts[p, 1]
        _normalize_grad_kernel(g[n0:n1], x[n0:n1], mean, scale, a, b_coef, inv_std, dx[n0:n1])
