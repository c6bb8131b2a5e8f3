"""Numba loops for ``direct.py``: a convolution summed tap by tap over long flat rows.

Layout. Each channel is ONE flat row: its padded planes ``(H_pad, W_pad)`` of every
image, one after the other (``P = H_pad W_pad`` numbers an image), plus ``room`` zeros
at the end. A window tap ``(u, v)`` is then one shift of the whole row, ``u dH W_pad +
v dW``, and the stride-1 output of a run of images, laid out the same way (``sums``;
the positions that are no window's, past each plane's last window, are scratch), is a
sum of shifted rows::

    sums[o, k] = b[o] + sum_{c, u, v} w[o, c, u, v] * rows[g C_g + c, k + u dH W_pad + v dW]

(``o`` in group ``g``; ``M = C_out / G`` outputs and ``C_g`` inputs per group). So each
tap's inner loop runs over a whole block of images (thousands of numbers, however small
the planes: the compiler vectorizes it), four taps at a time (one load and store of
the sum per four products); a block is as many images as ``sums`` holds, sized by
``direct.py`` so that it stays in the core's cache. ``keep`` then takes every
``sH``-th row and ``sW``-th column of each plane: with stride 2 the loops compute four
times the outputs they keep, which still beat strided loops (benchmarks/README.md).

- ``forward``: the sums of the kept input's rows, kept into ``out``;
- ``weight_grad``: each tap's dot product of its shifted row with the output gradient
  ``g``, spread into a block's rows as the sums are laid out (``spread``: zeros where
  nothing was kept), four taps at a time;
- ``input_grad``: the transposed convolution, i.e. the sums again, of ``g`` spread into
  a block's rows with the kernel's extent around it, with the weights flipped and each
  group's in and out channels swapped (``direct.py`` passes them so).

The gradients are spread a block at a time into a small scratch (not the whole batch:
its memory would raise the step's peak). The loops read slice views
(``row[shift:shift + length]``): indexing ``row[k + shift]`` instead kept Numba from
vectorizing (a negative index is legal in Python) and was 4-8x slower. The dot
products are reductions, compiled with ``fastmath={"reassoc", "contract"}`` (summed in
any order, as BLAS does; NaN and inf keep their meaning). ``cache=True``, ``nogil=True``,
one thread per call (a call does images ``n0:n1``), as ``cpu.py``.
"""
from numba import njit

REDUCE = {"reassoc", "contract"}


@njit(cache=True, nogil=True)
def _shift(t, kw, wp, dh, dw):
    """Where tap ``t = u kW + v`` reads, relative to the output position."""
    return t // kw * dh * wp + t % kw * dw


@njit(cache=True, nogil=True)
def _add_taps(rows, start, weights, bias, kw, wp, dh, dw, sums):
    """``sums[k] = bias + sum_{c, t} weights[c, t] rows[c, start + k + shift(t)]``."""
    length, taps = sums.shape[0], weights.shape[1]
    sums[:] = bias
    for c in range(weights.shape[0]):
        row = rows[c, start:]
        t = 0
        while t < taps:
            if t + 4 <= taps:               # four taps: one pass over the sums
                s0, s1 = _shift(t, kw, wp, dh, dw), _shift(t + 1, kw, wp, dh, dw)
                s2, s3 = _shift(t + 2, kw, wp, dh, dw), _shift(t + 3, kw, wp, dh, dw)
                v0, v1 = row[s0:s0 + length], row[s1:s1 + length]
                v2, v3 = row[s2:s2 + length], row[s3:s3 + length]
                w0, w1, w2, w3 = weights[c, t], weights[c, t + 1], weights[c, t + 2], \
                    weights[c, t + 3]
                for k in range(length):
                    sums[k] += w0 * v0[k] + w1 * v1[k] + w2 * v2[k] + w3 * v3[k]
                t += 4
            else:
                s0 = _shift(t, kw, wp, dh, dw)
                v0, w0 = row[s0:s0 + length], weights[c, t]
                for k in range(length):
                    sums[k] += w0 * v0[k]
                t += 1


@njit(cache=True, nogil=True)
def _keep(sums, b0, b1, o, plane, wp, top, left, sh, sw, out):
    """``out[b, o, i, j] = sums[(b - b0) P + (top + i sH) wp + left + j sW]``, ``b0 <= b < b1``."""
    ho, wo = out.shape[2], out.shape[3]
    for b in range(b0, b1):
        for i in range(ho):
            at = (b - b0) * plane + (top + i * sh) * wp + left
            out[b, o, i] = sums[at:at + sw * (wo - 1) + 1:sw]


@njit(cache=True, nogil=True)
def _spread(g, b0, b1, sh, sw, top, left, plane, wp, rows):
    """``rows[o, (b - b0) P + (top + i sH) wp + left + j sW] = g[b, o, i, j]``, zeros
    elsewhere: ``g (N, C_out, H_out, W_out)`` laid out as the sums of images ``b0:b1``."""
    ho, wo = g.shape[2], g.shape[3]
    rows[:] = 0
    for b in range(b0, b1):
        for o in range(g.shape[1]):
            for i in range(ho):
                at = (b - b0) * plane + (top + i * sh) * wp + left
                rows[o, at:at + sw * (wo - 1) + 1:sw] = g[b, o, i]


@njit(cache=True, nogil=True)
def forward(src, w, bias, kw, plane, wp, dh, dw, sh, sw, n0, n1, sums, out):
    """``out[n0:n1] (N, C_out, H_out, W_out)`` for ``src (C_in, N P + room)`` (planes of
    ``P = plane`` numbers, ``wp`` wide), ``w (C_out, C_g, kH kW)`` (kernels ``kw`` wide),
    ``bias (C_out,)``; ``sums`` holds a block of planes."""
    c_in, c_out, c_g = src.shape[0], w.shape[0], w.shape[1]
    block, per_group = sums.shape[0] // plane, c_out // (c_in // c_g)
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        part = sums[:(b1 - b0) * plane]
        for o in range(c_out):
            first = (o // per_group) * c_g
            _add_taps(src[first:first + c_g], b0 * plane, w[o], bias[o], kw, wp, dh, dw, part)
            _keep(part, b0, b1, o, plane, wp, 0, 0, sh, sw, out)


@njit(cache=True, nogil=True)
def input_grad(g, w_t, kw, plane, wp, dh, dw, sh, sw, top, left, n0, n1, rows, sums, grad_x):
    """``grad_x[n0:n1] (N, C_in, H, W)``: the sums of ``g (N, C_out, H_out, W_out)``,
    spread into ``rows (C_out, block P + room)`` with the kernel's extent ``(dH (kH - 1),
    dW (kW - 1))`` before it (planes of ``P = plane``, ``wp`` wide), and ``w_t (C_in, M,
    kH kW)``, the weights flipped and transposed; kept from row ``top``, column ``left``
    (the input's corner in its padding)."""
    c_out, c_in, per_in = g.shape[1], w_t.shape[0], w_t.shape[1]
    taps = w_t.shape[2]
    ph, pw = (taps - 1) // kw * dh, (kw - 1) * dw
    block, per_group = sums.shape[0] // plane, c_in // (c_out // per_in)
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        _spread(g, b0, b1, sh, sw, ph, pw, plane, wp, rows)
        part = sums[:(b1 - b0) * plane]
        for o in range(c_in):
            first = (o // per_group) * per_in
            _add_taps(rows[first:first + per_in], 0, w_t[o], 0.0, kw, wp, dh, dw, part)
            _keep(part, b0, b1, o, plane, wp, top, left, 1, 1, grad_x)


@njit(cache=True, nogil=True, fastmath=REDUCE)
def weight_grad(src, g, kw, plane, wp, dh, dw, sh, sw, n0, n1, rows, zero, grad_w):
    """``grad_w (C_out, C_g, kH kW)`` (float64) += each tap's dot product of its shifted
    row of ``src`` (as in ``forward``) with ``g (N, C_out, H_out, W_out)`` spread into
    ``rows (C_out, block P)``, for images ``n0:n1``; ``zero`` is 0 in their dtype, where
    each sum starts (``g[0] * 0`` instead was 1.5x slower)."""
    c_in, (c_out, c_g, taps) = src.shape[0], grad_w.shape
    block, per_group = rows.shape[1] // plane, c_out // (c_in // c_g)
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        _spread(g, b0, b1, sh, sw, 0, 0, plane, wp, rows)
        length, start = (b1 - b0) * plane, b0 * plane
        for o in range(c_out):
            grad = rows[o, :length]
            first = (o // per_group) * c_g
            for c in range(c_g):
                row, sums = src[first + c, start:], grad_w[o, c]
                t = 0
                while t < taps:
                    if t + 4 <= taps:       # four taps: one pass over g
                        s0, s1 = _shift(t, kw, wp, dh, dw), _shift(t + 1, kw, wp, dh, dw)
                        s2, s3 = _shift(t + 2, kw, wp, dh, dw), _shift(t + 3, kw, wp, dh, dw)
                        v0, v1 = row[s0:s0 + length], row[s1:s1 + length]
                        v2, v3 = row[s2:s2 + length], row[s3:s3 + length]
                        a0 = a1 = a2 = a3 = zero
                        for k in range(length):
                            a0 += grad[k] * v0[k]
                            a1 += grad[k] * v1[k]
                            a2 += grad[k] * v2[k]
                            a3 += grad[k] * v3[k]
                        sums[t] += a0
                        sums[t + 1] += a1
                        sums[t + 2] += a2
                        sums[t + 3] += a3
                        t += 4
                    else:
                        s0 = _shift(t, kw, wp, dh, dw)
                        v0, a0 = row[s0:s0 + length], zero
                        for k in range(length):
                            a0 += grad[k] * v0[k]
                        sums[t] += a0
                        t += 1
