"""Numba loops for ``direct.py``: a convolution summed tap by tap over long flat rows
(the forward here; its two gradients: ``direct_grad_cpu.py``).

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
the sum per four products); a block is as many images as ``direct.py`` sizes so that
it stays in the core's cache, and each row of ``rows`` and ``sums`` starts on a cache
line (``scratch.py``: rows that straddle lines made these passes up to 2x as slow).
``keep`` then copies each plane's windows into the output. Past ``to_phases`` and its
reverse (``direct_grad_cpu._put``) the loops know no stride: a strided convolution is a
stride-1 one over the input's phases (``direct.py``), its taps listed as (phase row,
shift) pairs (``add_taps``).

``forward``: each channel's phase rows made (``to_phases``) a block of images at a time,
into a small scratch, and their sums, kept into ``out``, while they are in the cache
(the weight gradient makes them again: ``direct_grad_cpu.py``).

The loops read slice views (``row[shift:shift + length]``): indexing ``row[k + shift]``
instead kept Numba from vectorizing (a negative index is legal in Python) and was 4-8x
slower. ``cache=True``, ``nogil=True``, one thread per call (a call does images
``n0:n1``), as ``cpu.py``.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _tap(rows, start, taps, i, length):
    """The ``length`` numbers tap ``i`` reads: ``rows[taps[i, 0], start + taps[i, 1]:]``."""
    at = start + taps[i, 1]
    return rows[taps[i, 0], at:at + length]


@njit(cache=True, nogil=True)
def add_taps(rows, start, weights, taps, bias, sums):
    """``sums[k] = bias + sum_i weights[i] rows[taps[i, 0], start + k + taps[i, 1]]``: an
    output's taps listed as ``(row, shift)`` pairs (a strided layer lists only the taps
    its phases have), four at a time (one load and store of the sums per four products),
    then two, then one."""
    length, count = sums.shape[0], weights.shape[0]
    sums[:] = bias
    i = 0
    while i < count:
        if i + 4 <= count:
            v0, v1 = _tap(rows, start, taps, i, length), _tap(rows, start, taps, i + 1, length)
            v2, v3 = _tap(rows, start, taps, i + 2, length), \
                _tap(rows, start, taps, i + 3, length)
            w0, w1, w2, w3 = weights[i], weights[i + 1], weights[i + 2], weights[i + 3]
            for k in range(length):
                sums[k] += w0 * v0[k] + w1 * v1[k] + w2 * v2[k] + w3 * v3[k]
            i += 4
        elif i + 2 <= count:
            v0, v1 = _tap(rows, start, taps, i, length), _tap(rows, start, taps, i + 1, length)
            w0, w1 = weights[i], weights[i + 1]
            for k in range(length):
                sums[k] += w0 * v0[k] + w1 * v1[k]
            i += 2
        else:
            v0, w0 = _tap(rows, start, taps, i, length), weights[i]
            for k in range(length):
                sums[k] += w0 * v0[k]
            i += 1


@njit(cache=True, nogil=True)
def add_taps4(rows, start, w, taps, bias, s0, s1, s2, s3):
    """``add_taps`` for four outputs with the same taps (``w (4, taps)``, sums ``s0`` to
    ``s3``): each tap's shifted row is read once for the four, so a pass makes sixteen
    products per four reads (one output at a time: four)."""
    length, count = s0.shape[0], w.shape[1]
    s0[:], s1[:], s2[:], s3[:] = bias[0], bias[1], bias[2], bias[3]
    i = 0
    while i < count:
        if i + 4 <= count:               # four taps and four outputs in one pass
            v0, v1 = _tap(rows, start, taps, i, length), _tap(rows, start, taps, i + 1, length)
            v2, v3 = _tap(rows, start, taps, i + 2, length), \
                _tap(rows, start, taps, i + 3, length)
            w00, w01, w02, w03 = w[0, i], w[0, i + 1], w[0, i + 2], w[0, i + 3]
            w10, w11, w12, w13 = w[1, i], w[1, i + 1], w[1, i + 2], w[1, i + 3]
            w20, w21, w22, w23 = w[2, i], w[2, i + 1], w[2, i + 2], w[2, i + 3]
            w30, w31, w32, w33 = w[3, i], w[3, i + 1], w[3, i + 2], w[3, i + 3]
            for k in range(length):
                a, b, c, d = v0[k], v1[k], v2[k], v3[k]
                s0[k] += w00 * a + w01 * b + w02 * c + w03 * d
                s1[k] += w10 * a + w11 * b + w12 * c + w13 * d
                s2[k] += w20 * a + w21 * b + w22 * c + w23 * d
                s3[k] += w30 * a + w31 * b + w32 * c + w33 * d
            i += 4
        else:
            v0 = _tap(rows, start, taps, i, length)
            w00, w10, w20, w30 = w[0, i], w[1, i], w[2, i], w[3, i]
            for k in range(length):
                a = v0[k]
                s0[k] += w00 * a
                s1[k] += w10 * a
                s2[k] += w20 * a
                s3[k] += w30 * a
            i += 1


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
def first_row(top, left, sh, sw, wp):
    """Where an image's input row 0 lies among its phases: ``(p, start, q, shift)``, its
    phase row ``p`` (of ``sH``), its start in the image's phase plane, the phase ``q`` of
    its first column and, at stride 2, how far the other column phase starts after it.
    Row ``y + 1`` is in phase row ``p + 1``, or at ``p = sH`` in row 0 again, ``wp``
    further: ``to_phases`` and ``_put`` count along so, rather than dividing ``y + top``
    by ``sH`` per row (an integer division per row took most of their time:
    benchmarks/README.md, issue 28)."""
    return top % sh, (top // sh) * wp + left // sw, left % sw, (left + 1) // 2 - left // 2


@njit(cache=True, nogil=True)
def to_phases(x, c, top, left, sh, sw, hp, wp, n0, n1, rows):
    """Channel ``c``'s padded input as phase rows, images ``n0:n1``: ``rows[p sW + q, (n -
    n0) P + i wp + j] = x[n, c, y, x]`` where ``(y + top, x + left) = (i sH + p, j sW +
    q)`` (``P = hp wp``, a phase's plane), zeros elsewhere in the images' planes (the
    padding: each plane is zeroed first, in the cache) and in the ``room`` after them (the
    last taps read there). Each input row is read once, in order (``_put`` in reverse):
    strides 1 and 2 have their own branches, of constant steps. (On an AVX-512 machine the
    compiler vectorizes them 16 numbers at a time, so rows of under 16 pairs, the zoo's,
    run in the scalar remainder; unrolled runs were faster alone, not in steps:
    benchmarks/README.md, "The eleventh session".)"""
    h, w, plane = x.shape[2], x.shape[3], hp * wp
    rows[:, (n1 - n0) * plane:] = 0
    p0, start, q0, shift = first_row(top, left, sh, sw, wp)
    for n in range(n0, n1):
        rows[:, (n - n0) * plane:(n - n0 + 1) * plane] = 0
        p, at = p0, U((n - n0) * plane + start)
        for y in range(h):
            first = p * sw
            if sw == 1:
                for k in range(U(w)):
                    rows[first, at + k] = x[n, c, y, k]
            elif sw == 2:                   # even and odd columns into their two phases
                r0, r1, a1 = first + q0, first + 1 - q0, at + U(shift)
                for k in range(U(w // 2)):
                    rows[r0, at + k] = x[n, c, y, 2 * k]
                    rows[r1, a1 + k] = x[n, c, y, 2 * k + 1]
                if w % 2:
                    rows[r0, at + U(w // 2)] = x[n, c, y, w - 1]
            else:                           # the columns' phases in turn
                q, a = q0, at
                for k in range(w):
                    rows[first + q, a] = x[n, c, y, k]
                    q += 1
                    if q == sw:
                        q, a = 0, a + U(1)
            p += 1
            if p == sh:                     # the next row of phases
                p, at = 0, at + U(wp)


@njit(cache=True, nogil=True)
def forward(x, top, left, sh, sw, hp, wp, rows, w, taps, bias, n0, n1, block, sums, out):
    """``out[n0:n1] (N, C_out, H_out, W_out)``, group ``c`` reading channel ``c`` of ``x
    (N, C_in, H, W)``: a block of images at a time, each channel's phases made into
    ``rows (sH sW, >= block P + room)`` (``to_phases``), then its group's outputs summed
    while they are in the cache, four at a time (``sums (4, >= block P)``), with ``w (C_out,
    kH kW)`` and ``taps (kH kW, 2)``, where each tap reads (phase row, shift), ``bias
    (C_out,)``; planes of ``P = hp wp`` numbers."""
    c_out, c_in, plane = w.shape[0], x.shape[1], hp * wp
    per_group = c_out // c_in
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        length = (b1 - b0) * plane        # four sums of this length
        s0, s1, s2, s3 = sums[0, :length], sums[1, :length], sums[2, :length], sums[3, :length]
        for c in range(c_in):
            to_phases(x, c, top, left, sh, sw, hp, wp, b0, b1, rows)
            o, end = c * per_group, (c + 1) * per_group
            while o < end:
                if o + 4 <= end:
                    add_taps4(rows, 0, w[o:o + 4], taps, bias[o:o + 4], s0, s1, s2, s3)
                    _keep(s0, b0, b1, o, plane, wp, out)
                    _keep(s1, b0, b1, o + 1, plane, wp, out)
                    _keep(s2, b0, b1, o + 2, plane, wp, out)
                    _keep(s3, b0, b1, o + 3, plane, wp, out)
                    o += 4
                else:
                    add_taps(rows, 0, w[o], taps, bias[o], s0)
                    _keep(s0, b0, b1, o, plane, wp, out)
                    o += 1
