"""The two gradients of ``direct_cpu.py``'s convolution, in its layout (read its
docstring first): Numba loops, one thread per call (a call does images ``n0:n1``).

- ``weight_grad``: each tap's dot product of its shifted phase row with the output
  gradient ``g``, spread into a block's rows as the sums are laid out (``_spread``: zeros
  where nothing was kept), four taps at a time; the bias gradient, the sums of ``g``,
  from the same rows;
- ``input_grad``: the transposed convolution, i.e. the forward's sums again
  (``direct_cpu.add_taps``), of ``g`` spread into a block's rows with the kernel's extent
  around it, with the weights flipped and each group's in and out channels swapped
  (``direct.py`` passes them so), each channel's phases put back in place (``_put``).

The gradients are spread a block and a group at a time into a small scratch (not the
whole batch: its memory would raise the step's peak); the weight gradient makes the
input's phases again, a block and a channel at a time, as the forward does: the layer
keeps ``x``, not its phases (a step's peak memory: benchmarks/README.md, issue 28). The
dot products are reductions, compiled with ``fastmath={"reassoc", "contract"}`` (summed in
any order, as BLAS does; NaN and inf keep their meaning).
"""
import numpy as np
from numba import njit

from .direct_cpu import U, add_taps, first_row, to_phases

REDUCE = {"reassoc", "contract"}


@njit(cache=True, nogil=True)
def _shift(t, kw, wp, dh, dw):
    """Where tap ``t = u kW + v`` reads, relative to the output position."""
    return t // kw * dh * wp + t % kw * dw


@njit(cache=True, nogil=True)
def _spread(g, b0, b1, o0, top, left, plane, wp, rows):
    """``rows[o - o0, (b - b0) P + (top + i) wp + left + j] = g[b, o, i, j]``, zeros
    elsewhere: outputs ``o0:o0 + len(rows)`` of ``g (N, C_out, H_out, W_out)`` laid out
    as the sums of images ``b0:b1``."""
    ho, wo = g.shape[2], U(g.shape[3])
    rows[:] = 0
    for b in range(b0, b1):
        for o in range(rows.shape[0]):
            for i in range(ho):
                at = U((b - b0) * plane + (top + i) * wp + left)
                for j in range(wo):
                    rows[o, at + j] = g[b, o0 + o, i, j]


@njit(cache=True, nogil=True)
def _put(sums, b0, b1, c, plane, wp, top, left, sh, sw, grad_x):
    """``grad_x[b, c, y, x] = sums[p sW + q, (b - b0) P + i wp + j]`` where ``(y + top, x +
    left) = (i sH + p, j sW + q)``: channel ``c``'s phases put back in place, ``b0 <= b <
    b1``, each row written in order. The last branch serves any stride; strides 1 and 2
    have their own, of constant steps (vectorized as ``to_phases``' are)."""
    h, w = grad_x.shape[2], grad_x.shape[3]
    p0, start, q0, shift = first_row(top, left, sh, sw, wp)
    for b in range(b0, b1):
        p, at = p0, U((b - b0) * plane + start)
        for y in range(h):
            if sw == 1:
                for x in range(U(w)):
                    grad_x[b, c, y, x] = sums[p, at + x]
            elif sw == 2:               # even and odd columns from their two phases
                r0, r1, a1 = p * 2 + q0, p * 2 + 1 - q0, at + U(shift)
                for k in range(U(w // 2)):
                    grad_x[b, c, y, 2 * k] = sums[r0, at + k]
                    grad_x[b, c, y, 2 * k + 1] = sums[r1, a1 + k]
                if w % 2:
                    grad_x[b, c, y, w - 1] = sums[r0, at + U(w // 2)]
            else:                       # the columns' phases in turn
                q, a = q0, at
                for x in range(w):
                    grad_x[b, c, y, x] = sums[p * sw + q, a]
                    q += 1
                    if q == sw:
                        q, a = 0, a + U(1)
            p += 1
            if p == sh:                 # the next row of phases
                p, at = 0, at + U(wp)


@njit(cache=True, nogil=True)
def input_grad(g, w_t, taps, counts, ph, pw, plane, wp, top, left, sh, sw, n0, n1, block, rows,
               sums, grad_x):
    """``grad_x[n0:n1] (N, C_in, H, W)``: the sums of ``g (N, C_out, H_out, W_out)``,
    ``block`` images and a group's outputs at a time spread into ``rows (M, >= block P +
    room)`` with the kernel's extent ``(ph, pw)`` before it (planes of ``P = plane``, ``wp``
    wide), and ``w_t (C_in sH sW, taps)``, the weights flipped and transposed: one phase of
    the input gradient a row (stride ``(sH, sW)``), phase ``s`` with the first
    ``counts[s]`` of its listed ``taps[s]`` ((row of the group's ``g``, shift) pairs); a
    channel's phases summed into ``sums (sH sW, >= block P)`` and put in place together
    (``top``, ``left``: the input's corner in its padding)."""
    phases = sh * sw
    c_in = w_t.shape[0] // phases
    per_in = g.shape[1] // c_in                                     # M outputs a group
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        length = (b1 - b0) * plane
        for c in range(c_in):
            _spread(g, b0, b1, c * per_in, ph, pw, plane, wp, rows)
            for s in range(phases):         # one channel's phases, then put in place
                count = counts[s]
                add_taps(rows, 0, w_t[c * phases + s, :count], taps[s, :count], 0.0,
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


@njit(cache=True, nogil=True, fastmath=REDUCE)
def total(row, zero):
    """``sum(row)``, from ``zero`` (0 in the row's dtype)."""
    added = zero
    for k in range(row.shape[0]):
        added += row[k]
    return added


@njit(cache=True, nogil=True)
def weight_grad(x, top, left, sh, sw, hp, wp, g, kw, dh, dw, n0, n1, block, phases, rows, zero,
                grad_w, grad_b):
    """``grad_w (C_out, sH sW, kH kW)`` (float64) += each tap's dot product of its shifted
    phase row of ``x (N, C_in, H, W)`` (made again as in ``forward``, into ``phases (sH
    sW, >= block P + room)``) with ``g (N, C_out, H_out, W_out)``, a group's outputs spread
    into ``rows (M, >= block P)``, for images ``n0:n1``, ``block`` at a time, four
    outputs at a time where a group has them; ``zero`` is 0 in their dtype, where each
    sum starts (``g[0] * 0`` instead was 1.5x slower). ``grad_b (C_out,)`` (float64) +=
    the sums of ``g``, the bias gradient, from the spread rows while they are in the cache
    (``grad_b`` empty: none)."""
    c_in, (c_out, c_g, taps) = x.shape[1], grad_w.shape
    plane = hp * wp
    per_group = c_out // c_in
    part = np.zeros((4, taps), g.dtype)         # a block's sums, then added in float64
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        length = (b1 - b0) * plane
        for c in range(c_in):
            to_phases(x, c, top, left, sh, sw, hp, wp, b0, b1, phases)
            first = c * per_group
            _spread(g, b0, b1, first, 0, 0, plane, wp, rows)
            if grad_b.shape[0]:                 # sum g (zeros where nothing was kept)
                for m in range(per_group):
                    grad_b[first + m] += total(rows[m, :length], zero)
            m = 0
            while m < per_group:
                o, four = first + m, m + 4 <= per_group
                for q in range(c_g):
                    row = phases[q]
                    part[:] = 0
                    if four:
                        _dots4(rows[m, :length], rows[m + 1, :length], rows[m + 2, :length],
                               rows[m + 3, :length], row, kw, wp, dh, dw, zero, part)
                        for k in range(4):
                            for t in range(taps):
                                grad_w[o + k, q, t] += part[k, t]
                    else:
                        _dots(rows[m, :length], row, kw, wp, dh, dw, zero, part[0])
                        for t in range(taps):
                            grad_w[o, q, t] += part[0, t]
                m += 4 if four else 1
