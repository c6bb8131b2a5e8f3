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
``direct.py`` so that it stays in the core's cache. ``keep`` then copies each plane's
windows into the output. The loops know no stride: ``direct.py`` turns a strided
convolution into a stride-1 one over the input's phases first.

- ``forward``: the sums of the input's rows, kept into ``out``;
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
import numpy as np
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
def _add_taps4(rows, start, weights, bias, kw, wp, dh, dw, s0, s1, s2, s3):
    """``_add_taps`` for four outputs that read the same channels (``weights (4, C_g,
    taps)``, sums ``s0`` to ``s3``): each tap's shifted row is read once for the four, so
    a pass makes sixteen products per four reads (one output at a time: four)."""
    length, taps = s0.shape[0], weights.shape[2]
    s0[:], s1[:], s2[:], s3[:] = bias[0], bias[1], bias[2], bias[3]
    for c in range(weights.shape[1]):
        row, w = rows[c, start:], weights[:, c]
        t = 0
        while t < taps:
            if t + 4 <= taps:               # four taps and four outputs in one pass
                o0, o1 = _shift(t, kw, wp, dh, dw), _shift(t + 1, kw, wp, dh, dw)
                o2, o3 = _shift(t + 2, kw, wp, dh, dw), _shift(t + 3, kw, wp, dh, dw)
                v0, v1 = row[o0:o0 + length], row[o1:o1 + length]
                v2, v3 = row[o2:o2 + length], row[o3:o3 + length]
                w00, w01, w02, w03 = w[0, t], w[0, t + 1], w[0, t + 2], w[0, t + 3]
                w10, w11, w12, w13 = w[1, t], w[1, t + 1], w[1, t + 2], w[1, t + 3]
                w20, w21, w22, w23 = w[2, t], w[2, t + 1], w[2, t + 2], w[2, t + 3]
                w30, w31, w32, w33 = w[3, t], w[3, t + 1], w[3, t + 2], w[3, t + 3]
                for k in range(length):
                    a, b, c2, d = v0[k], v1[k], v2[k], v3[k]
                    s0[k] += w00 * a + w01 * b + w02 * c2 + w03 * d
                    s1[k] += w10 * a + w11 * b + w12 * c2 + w13 * d
                    s2[k] += w20 * a + w21 * b + w22 * c2 + w23 * d
                    s3[k] += w30 * a + w31 * b + w32 * c2 + w33 * d
                t += 4
            else:
                o0 = _shift(t, kw, wp, dh, dw)
                v0 = row[o0:o0 + length]
                w00, w10, w20, w30 = w[0, t], w[1, t], w[2, t], w[3, t]
                for k in range(length):
                    a = v0[k]
                    s0[k] += w00 * a
                    s1[k] += w10 * a
                    s2[k] += w20 * a
                    s3[k] += w30 * a
                t += 1


# The copies below index with unsigned integers (``U``): Numba then skips its check for
# a negative index, which kept the compiler from vectorizing them (benchmarks/README.md,
# "Behind the kernels' choices").
U = np.uint64


@njit(cache=True, nogil=True)
def _keep(sums, b0, b1, o, plane, wp, out):
    """``out[b, o, i, j] = sums[(b - b0) P + i wp + j]``, ``b0 <= b < b1``."""
    ho, wo = out.shape[2], U(out.shape[3])
    for b in range(b0, b1):
        for i in range(ho):
            at = U((b - b0) * plane + i * wp)
            for j in range(wo):
                out[b, o, i, j] = sums[at + j]


@njit(cache=True, nogil=True)
def _spread(g, b0, b1, top, left, plane, wp, rows):
    """``rows[o, (b - b0) P + (top + i) wp + left + j] = g[b, o, i, j]``, zeros
    elsewhere: ``g (N, C_out, H_out, W_out)`` laid out as the sums of images ``b0:b1``."""
    ho, wo = g.shape[2], U(g.shape[3])
    rows[:] = 0
    for b in range(b0, b1):
        for o in range(g.shape[1]):
            for i in range(ho):
                at = U((b - b0) * plane + (top + i) * wp + left)
                for j in range(wo):
                    rows[o, at + j] = g[b, o, i, j]


@njit(cache=True, nogil=True)
def _put(sums, b0, b1, c, plane, wp, top, left, sh, sw, grad_x):
    """``grad_x[b, c, y, x] = sums[p sW + q, (b - b0) P + i wp + j]`` where ``(y + top, x +
    left) = (i sH + p, j sW + q)``: channel ``c``'s phases put back in place, ``b0 <= b <
    b1``, each row written in order. The last branch serves any stride; strides 1 and 2
    have their own, whose constant steps the compiler vectorizes (benchmarks/README.md)."""
    h, w = grad_x.shape[2], grad_x.shape[3]
    for b in range(b0, b1):
        for y in range(h):
            p, i = (y + top) % sh, (y + top) // sh
            at = U((b - b0) * plane + i * wp + left // sw)
            if sw == 1:
                for x in range(U(w)):
                    grad_x[b, c, y, x] = sums[p, at + x]
            elif sw == 2:               # even and odd columns from their two phases
                r0, r1 = p * 2 + left % 2, p * 2 + (left + 1) % 2
                a1 = at + U((left + 1) // 2 - left // 2)
                for k in range(U(w // 2)):
                    grad_x[b, c, y, 2 * k] = sums[r0, at + k]
                    grad_x[b, c, y, 2 * k + 1] = sums[r1, a1 + k]
                if w % 2:
                    grad_x[b, c, y, w - 1] = sums[r0, at + U(w // 2)]
            else:                       # the columns' phases in turn
                q = left % sw
                for x in range(w):
                    grad_x[b, c, y, x] = sums[p * sw + q, at]
                    q += 1
                    if q == sw:
                        q, at = 0, at + U(1)


@njit(cache=True, nogil=True)
def to_phases(x, top, left, sh, sw, hp, wp, n0, n1, rows):
    """The padded input's phases as rows, images ``n0:n1``: ``rows[(c sH + p) sW + q, n P
    + i wp + j] = x[n, c, y, x]`` where ``(y + top, x + left) = (i sH + p, j sW + q)``
    (``P = hp wp``, a phase's plane); the rest of ``rows`` (the padding) is left as it is."""
    for c in range(x.shape[1]):
        for p in range(sh):
            y0 = (p - top) % sh                     # the first row in phase p
            for q in range(sw):
                x0 = (q - left) % sw                # the first column in phase q
                row = (c * sh + p) * sw + q
                cols, first, step = U((x.shape[3] - x0 + sw - 1) // sw), U(x0), U(sw)
                for n in range(n0, n1):
                    for y in range(y0, x.shape[2], sh):
                        at = U(n * hp * wp + (y + top) // sh * wp + (x0 + left) // sw)
                        for k in range(cols):
                            rows[row, at + k] = x[n, c, y, first + k * step]


@njit(cache=True, nogil=True)
def forward(src, w, bias, kw, plane, wp, dh, dw, n0, n1, sums, out):
    """``out[n0:n1] (N, C_out, H_out, W_out)`` for ``src (C_in, N P + room)`` (planes of
    ``P = plane`` numbers, ``wp`` wide), ``w (C_out, C_g, kH kW)`` (kernels ``kw`` wide),
    ``bias (C_out,)``; ``sums (4 block P,)``: four outputs of one group at a time."""
    c_in, c_out, c_g = src.shape[0], w.shape[0], w.shape[1]
    block, per_group = sums.shape[0] // (4 * plane), c_out // (c_in // c_g)
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        length = (b1 - b0) * plane        # four contiguous sums of this length:
        s0, s1 = sums[:length], sums[length:2 * length]
        s2, s3 = sums[2 * length:3 * length], sums[3 * length:4 * length]
        o = 0
        while o < c_out:
            first = (o // per_group) * c_g
            if o + 4 <= c_out and (o + 3) // per_group == o // per_group:   # one group's
                _add_taps4(src[first:first + c_g], b0 * plane, w[o:o + 4], bias[o:o + 4], kw,
                           wp, dh, dw, s0, s1, s2, s3)
                _keep(s0, b0, b1, o, plane, wp, out)
                _keep(s1, b0, b1, o + 1, plane, wp, out)
                _keep(s2, b0, b1, o + 2, plane, wp, out)
                _keep(s3, b0, b1, o + 3, plane, wp, out)
                o += 4
            else:
                _add_taps(src[first:first + c_g], b0 * plane, w[o], bias[o], kw, wp, dh, dw,
                          s0)
                _keep(s0, b0, b1, o, plane, wp, out)
                o += 1


@njit(cache=True, nogil=True)
def input_grad(g, w_t, kw, plane, wp, dh, dw, top, left, sh, sw, n0, n1, rows, sums, grad_x):
    """``grad_x[n0:n1] (N, C_in, H, W)``: the sums of ``g (N, C_out, H_out, W_out)``,
    spread into ``rows (C_out, block P + room)`` with the kernel's extent ``(dH (kH - 1),
    dW (kW - 1))`` before it (planes of ``P = plane``, ``wp`` wide), and ``w_t (C_in, M,
    kH kW)``, the weights flipped and transposed: one phase of the input gradient a row
    (stride ``(sH, sW)``), a channel's phases summed into ``sums (sH sW, block P)`` and put
    in place together (``top``, ``left``: the input's corner in its padding)."""
    c_out, c_in, per_in = g.shape[1], w_t.shape[0], w_t.shape[1]
    taps, phases = w_t.shape[2], sh * sw
    ph, pw = (taps - 1) // kw * dh, (kw - 1) * dw
    block, per_group = sums.shape[1] // plane, c_in // (c_out // per_in)
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        _spread(g, b0, b1, ph, pw, plane, wp, rows)
        length = (b1 - b0) * plane
        for c in range(c_in // phases):
            for s in range(phases):         # one channel's phases, then put in place
                o = c * phases + s
                first = (o // per_group) * per_in
                _add_taps(rows[first:first + per_in], 0, w_t[o], 0.0, kw, wp, dh, dw,
                          sums[s, :length])
            _put(sums, b0, b1, c, plane, wp, top, left, sh, sw, grad_x)


@njit(cache=True, nogil=True, fastmath=REDUCE)
def _dots(grad, row, kw, wp, dh, dw, zero, sums):
    """``sums[t] += grad . row[shift(t):]`` for every tap ``t`` of one output."""
    length, taps = grad.shape[0], sums.shape[0]
    t = 0
    while t < taps:
        if t + 4 <= taps:               # four taps: one pass over g
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


@njit(cache=True, nogil=True, fastmath=REDUCE)
def _dots4(g0, g1, g2, g3, row, kw, wp, dh, dw, zero, sums):
    """``_dots`` for four outputs that read the same row (``sums (4, taps)``): each tap's
    shifted row is read once for the four."""
    length, taps = g0.shape[0], sums.shape[1]
    t = 0
    while t < taps:
        if t + 2 <= taps:               # two taps, four outputs: eight sums a pass
            s0, s1 = _shift(t, kw, wp, dh, dw), _shift(t + 1, kw, wp, dh, dw)
            v0, v1 = row[s0:s0 + length], row[s1:s1 + length]
            a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = zero
            for k in range(length):
                x0, x1 = v0[k], v1[k]
                a00 += g0[k] * x0
                a01 += g0[k] * x1
                a10 += g1[k] * x0
                a11 += g1[k] * x1
                a20 += g2[k] * x0
                a21 += g2[k] * x1
                a30 += g3[k] * x0
                a31 += g3[k] * x1
            sums[0, t] += a00
            sums[0, t + 1] += a01
            sums[1, t] += a10
            sums[1, t + 1] += a11
            sums[2, t] += a20
            sums[2, t + 1] += a21
            sums[3, t] += a30
            sums[3, t + 1] += a31
            t += 2
        else:
            s0 = _shift(t, kw, wp, dh, dw)
            v0 = row[s0:s0 + length]
            a00 = a10 = a20 = a30 = zero
            for k in range(length):
                x0 = v0[k]
                a00 += g0[k] * x0
                a10 += g1[k] * x0
                a20 += g2[k] * x0
                a30 += g3[k] * x0
            sums[0, t] += a00
            sums[1, t] += a10
            sums[2, t] += a20
            sums[3, t] += a30
            t += 1


@njit(cache=True, nogil=True)
def weight_grad(src, g, kw, plane, wp, dh, dw, n0, n1, rows, zero, grad_w):
    """``grad_w (C_out, C_g, kH kW)`` (float64) += each tap's dot product of its shifted
    row of ``src`` (as in ``forward``) with ``g (N, C_out, H_out, W_out)`` spread into
    ``rows (C_out, block P)``, for images ``n0:n1``, four outputs of one group at a time
    where they read the same channels; ``zero`` is 0 in their dtype, where each sum
    starts (``g[0] * 0`` instead was 1.5x slower)."""
    c_in, (c_out, c_g, taps) = src.shape[0], grad_w.shape
    block, per_group = rows.shape[1] // plane, c_out // (c_in // c_g)
    part = np.zeros((4, taps), g.dtype)         # a block's sums, then added in float64
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        _spread(g, b0, b1, 0, 0, plane, wp, rows)
        length, start = (b1 - b0) * plane, b0 * plane
        o = 0
        while o < c_out:
            first = (o // per_group) * c_g
            four = o + 4 <= c_out and (o + 3) // per_group == o // per_group
            for c in range(c_g):
                row = src[first + c, start:]
                part[:] = 0
                if four:
                    _dots4(rows[o, :length], rows[o + 1, :length], rows[o + 2, :length],
                           rows[o + 3, :length], row, kw, wp, dh, dw, zero, part)
                    for q in range(4):
                        for t in range(taps):
                            grad_w[o + q, c, t] += part[q, t]
                else:
                    _dots(rows[o, :length], row, kw, wp, dh, dw, zero, part[0])
                    for t in range(taps):
                        grad_w[o, c, t] += part[0, t]
            o += 4 if four else 1
