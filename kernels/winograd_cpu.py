"""Numba loops for ``winograd.py``: the tile transforms, a run of tiles at a time.

Tiles are numbered ``t = (n * tiles_h + ty) * tiles_w + tx``; a tile's A x A
transform-domain values (``A = 6`` or ``8``) are the rows ``xi = a * A + b`` of the
``(A*A, T, C)`` arrays, so a run of consecutive tiles is, for each ``xi``, one contiguous
run of ``tiles * C`` numbers. Each transform works on such a run (``run`` tiles:
``winograd.py`` makes it ``RUN_NUMBERS`` numbers long, whatever the channels): the small
matrix products (``_combine``) then loop over those long runs, which the
compiler turns into vector instructions; for ``A``-term sums ``_combine`` keeps
the sum in registers (zero coefficients multiplied: fewer stores pay more). Like
``cpu.py``: ``cache=True``, ``nogil=True``, one thread per call (``parallel.py`` runs a
part of the batch on each).
"""
import numpy as np
from numba import njit

# Offsets into the arrays are unsigned (``U``): Numba then skips its check for a negative
# index, which kept the compiler from vectorizing the copies (as in direct_cpu.py).
U = np.uint64


@njit(cache=True, nogil=True)
def to_padded_nhwc(x, top, left, out):
    """``out[n, top + i, left + j, c] = x[n, c, i, j]``; ``out`` is zeros elsewhere."""
    n, c, h, w = x.shape
    top, left = U(top), U(left)
    for b in range(n):
        for ch in range(c):
            for i in range(U(h)):
                for j in range(U(w)):
                    out[b, top + i, left + j, ch] = x[b, ch, i, j]


@njit(cache=True, nogil=True)
def from_padded_nhwc(padded, top, left, out):
    """Adjoint of ``to_padded_nhwc``: ``out[n, c, i, j] = padded[n, top + i, left + j, c]``."""
    n, c, h, w = out.shape
    top, left = U(top), U(left)
    for b in range(n):
        for ch in range(c):              # the writes in order: faster (benchmarks/README.md)
            for i in range(U(h)):
                for j in range(U(w)):
                    out[b, ch, i, j] = padded[b, top + i, left + j, ch]


@njit(cache=True, nogil=True)
def _combine(mat, src, dst):
    """``dst[k, :] = sum_i mat[k, i] src[i, :]`` for 2-D ``src`` and ``dst``."""
    if mat.shape[1] == 4:        # AT's transpose, in every gradient's transform
        for k in range(mat.shape[0]):
            m0, m1, m2, m3 = mat[k, 0], mat[k, 1], mat[k, 2], mat[k, 3]
            for q in range(dst.shape[1]):
                dst[k, q] = m0 * src[0, q] + m1 * src[1, q] + m2 * src[2, q] + m3 * src[3, q]
        return
    if mat.shape[1] == 6:        # the sum in registers: one store per number, not six
        for k in range(mat.shape[0]):
            m0, m1, m2, m3, m4, m5 = mat[k, 0], mat[k, 1], mat[k, 2], mat[k, 3], mat[k, 4], mat[k, 5]
            for q in range(dst.shape[1]):
                dst[k, q] = (m0 * src[0, q] + m1 * src[1, q] + m2 * src[2, q]
                             + m3 * src[3, q] + m4 * src[4, q] + m5 * src[5, q])
        return
    if mat.shape[1] == 8:
        for k in range(mat.shape[0]):
            m0, m1, m2, m3, m4, m5 = mat[k, 0], mat[k, 1], mat[k, 2], mat[k, 3], mat[k, 4], mat[k, 5]
            m6, m7 = mat[k, 6], mat[k, 7]
            for q in range(dst.shape[1]):
                dst[k, q] = (m0 * src[0, q] + m1 * src[1, q] + m2 * src[2, q] + m3 * src[3, q]
                             + m4 * src[4, q] + m5 * src[5, q] + m6 * src[6, q] + m7 * src[7, q])
        return
    for k in range(mat.shape[0]):
        for q in range(dst.shape[1]):
            dst[k, q] = 0
        for i in range(mat.shape[1]):
            coef = mat[k, i]
            if coef != 0:
                for q in range(dst.shape[1]):
                    dst[k, q] += coef * src[i, q]


@njit(cache=True, nogil=True)
def _sandwich(left, right, tiles, rows, out):
    """``out[a, b] = sum_{i, j} left[a, i] tiles[i, j] right[b, j]`` for a row of tiles
    ``tiles (I, J, width)`` (``rows (A, J, width)``, ``out (A, B, width)``: work space)."""
    _combine(left, tiles.reshape(tiles.shape[0], -1), rows.reshape(rows.shape[0], -1))
    for a in range(rows.shape[0]):
        _combine(right, rows[a], out[a])


@njit(cache=True, nogil=True)
def _run_width(run, total, channels):
    """``(run, width)``: a run of at most ``run`` tiles, no longer than the ``total`` there
    are (a chunk may have fewer), and the ``run * channels`` numbers of its work rows."""
    run = max(1, min(run, total))
    return run, run * channels


@njit(cache=True, nogil=True)
def _tile(t, tiles_h, tiles_w):
    """``(n, ty, tx)`` of tile number ``t``."""
    return t // (tiles_h * tiles_w), t // tiles_w % tiles_h, t % tiles_w


@njit(cache=True, nogil=True)
def _take_run(rows, start, length, run):
    """``run[a, b, :length] = rows[a*A+b, start:start + length]``: a run of tiles out of an
    ``(A*A, T C)`` array."""
    alpha = run.shape[0]
    for xi in range(alpha * alpha):
        for q in range(U(length)):
            run[xi // alpha, xi % alpha, q] = rows[xi, U(start) + q]


@njit(cache=True, nogil=True)
def _put_run(run, start, length, rows):
    """``rows[a*A+b, start:start + length] = run[a, b, :length]``: the adjoint of
    ``_take_run``."""
    alpha = run.shape[0]
    for xi in range(alpha * alpha):
        for q in range(U(length)):
            rows[xi, U(start) + q] = run[xi // alpha, xi % alpha, q]


@njit(cache=True, nogil=True)
def input_tiles(padded, bt, m, tiles_h, tiles_w, run, v):
    """``v[a*A+b, t, c] = (BT d BT^T)[a, b]`` for each tile ``d = padded[n, ty m : ty m + A,
    tx m : tx m + A, c]`` (tiles ``m`` apart overlap by ``A - m`` pixels), ``run`` tiles
    at a time."""
    alpha, c = bt.shape[0], padded.shape[3]
    total = padded.shape[0] * tiles_h * tiles_w
    run, width = _run_width(run, total, c)
    d = np.zeros((alpha, alpha, width), dtype=v.dtype)        # d[i, j, k c + ch]
    rows = np.empty((alpha, alpha, width), dtype=v.dtype)
    out = np.empty((alpha, alpha, width), dtype=v.dtype)
    v2 = v.reshape(alpha * alpha, -1)
    for t0 in range(0, total, run):
        count = min(run, total - t0)
        for k in range(count):
            b, ty, tx = _tile(t0 + k, tiles_h, tiles_w)
            at = U(k * c)
            for i in range(alpha):
                for j in range(alpha):
                    col = U(tx * m + j)
                    for ch in range(U(c)):
                        d[i, j, at + ch] = padded[b, ty * m + i, col, ch]
        _sandwich(bt, bt, d, rows, out)
        _put_run(out, t0 * c, count * c, v2)


@njit(cache=True, nogil=True)
def output_tiles(prod, at, m, bias, run, out):
    """``out[n, o, ty m + i, tx m + j] = (AT p AT^T)[i, j] + bias[o]`` for each tile's
    ``p[a, b] = prod[a*A+b, t, o]``, cut at the output's edges; ``run`` tiles at a time."""
    alpha, n_out = at.shape[1], prod.shape[2]
    n, _, ho, wo = out.shape
    tiles_h, tiles_w = -(-ho // m), -(-wo // m)
    total = n * tiles_h * tiles_w
    run, width = _run_width(run, total, n_out)
    p = np.zeros((alpha, alpha, width), dtype=out.dtype)
    rows = np.empty((m, alpha, width), dtype=out.dtype)
    tile = np.empty((m, m, width), dtype=out.dtype)
    prod2 = prod.reshape(alpha * alpha, -1)
    for t0 in range(0, total, run):
        count = min(run, total - t0)
        _take_run(prod2, t0 * n_out, count * n_out, p)
        _sandwich(at, at, p, rows, tile)
        for k in range(count):
            b, ty, tx = _tile(t0 + k, tiles_h, tiles_w)
            for i in range(min(m, ho - ty * m)):
                for j in range(min(m, wo - tx * m)):
                    for o in range(n_out):
                        out[b, o, ty * m + i, tx * m + j] = tile[i, j, k * n_out + o] + bias[o]


@njit(cache=True, nogil=True)
def grad_tiles(g, at, m, run, dprod):
    """Adjoint of ``output_tiles`` (without bias): ``dprod[a*A+b, t, o] = (AT^T G AT)[a, b]``
    for each tile ``G[i, j] = g[n, o, ty m + i, tx m + j]`` (zeros beyond the edges)."""
    alpha, (n, n_out, ho, wo) = at.shape[1], g.shape
    tiles_h, tiles_w = -(-ho // m), -(-wo // m)
    total = n * tiles_h * tiles_w
    run, width = _run_width(run, total, n_out)
    a_mat = np.ascontiguousarray(at.T)
    tile = np.zeros((m, m, width), dtype=g.dtype)
    rows = np.empty((alpha, m, width), dtype=g.dtype)
    out = np.empty((alpha, alpha, width), dtype=g.dtype)
    dprod2 = dprod.reshape(alpha * alpha, -1)
    for t0 in range(0, total, run):
        count = min(run, total - t0)
        tile[:] = 0
        for k in range(count):
            b, ty, tx = _tile(t0 + k, tiles_h, tiles_w)
            for i in range(min(m, ho - ty * m)):
                for j in range(min(m, wo - tx * m)):
                    for o in range(n_out):
                        tile[i, j, k * n_out + o] = g[b, o, ty * m + i, tx * m + j]
        _sandwich(a_mat, a_mat, tile, rows, out)
        _put_run(out, t0 * n_out, count * n_out, dprod2)


@njit(cache=True, nogil=True)
def input_grad_tiles(dv, bt, m, tiles_h, tiles_w, run, padded):
    """Adjoint of ``input_tiles``: each tile's ``BT^T dV BT`` added into ``padded`` where
    the tile was read from (overlapping tiles add up)."""
    alpha, c = bt.shape[0], padded.shape[3]
    total = padded.shape[0] * tiles_h * tiles_w
    run, width = _run_width(run, total, c)
    b_mat = np.ascontiguousarray(bt.T)
    p = np.zeros((alpha, alpha, width), dtype=dv.dtype)
    rows = np.empty((alpha, alpha, width), dtype=dv.dtype)
    tile = np.empty((alpha, alpha, width), dtype=dv.dtype)
    dv2 = dv.reshape(alpha * alpha, -1)
    for t0 in range(0, total, run):
        count = min(run, total - t0)
        _take_run(dv2, t0 * c, count * c, p)
        _sandwich(b_mat, b_mat, p, rows, tile)
        for k in range(count):
            b, ty, tx = _tile(t0 + k, tiles_h, tiles_w)
            at = U(k * c)
            for i in range(alpha):
                for j in range(alpha):
                    col = U(tx * m + j)
                    for ch in range(U(c)):
                        padded[b, ty * m + i, col, ch] += tile[i, j, at + ch]
