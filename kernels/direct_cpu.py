"""Numba loops for ``direct.py``: a convolution summed tap by tap over long flat rows.

Layout. Each channel is ONE flat row: its padded planes ``(H_pad, W_pad)`` of every
image, one after the other (``P = H_pad W_pad`` numbers an image), plus ``room`` zeros
at the end. A window tap ``(u, v)`` is then one shift of the whole row, ``u dH W_pad +
v dW``, and the stride-1 output of a run of images, laid out the same way (``full``;
the positions that are no window's, past each plane's last window, are scratch), is a
sum of shifted rows::

    full[o, k] = b[o] + sum_{c, u, v} w[o, c, u, v] * src[g C_g + c, k + u dH W_pad + v dW]

(``o`` in group ``g``; ``M = C_out / G`` outputs and ``C_g`` inputs per group). So each
tap's inner loop runs over a whole block of images (thousands of numbers, however small
the planes: the compiler vectorizes it), four taps at a time (one load and store of
the sum per four products); a block is ``block`` images, sized by ``direct.py`` so that
its rows stay in the core's cache. ``correlate`` then keeps every ``sH``-th row and
``sW``-th column of each plane of ``full``: with stride 2 it computes four times the
outputs it keeps, which still beat strided loops (benchmarks/README.md, issue 28).

``weight_grad`` is each tap's dot product of its shifted row with the output gradient
(laid out as ``full``, zeros where no output was kept), four taps at a time; the input
gradient is ``correlate`` again, of the output gradient padded by the kernel's extent,
with the weights flipped and each group's in and out channels swapped (``direct.py``).

The loops read slice views (``row[shift:shift + length]``): indexing ``row[k + shift]``
instead kept Numba from vectorizing (a negative index is legal in Python) and was 4-8x
slower. ``weight_grad``'s sums are reductions, compiled with ``fastmath={"reassoc",
"contract"}`` (summed in any order, as BLAS does; NaN and inf keep their meaning).
``cache=True``, ``nogil=True``, one thread per call (a call does images ``n0:n1``), as
``cpu.py``.
"""
from numba import njit

REDUCE = {"reassoc", "contract"}


@njit(cache=True, nogil=True)
def _shift(t, kw, wp, dh, dw):
    """Where tap ``t = u kW + v`` reads, relative to the output position."""
    return t // kw * dh * wp + t % kw * dw


@njit(cache=True, nogil=True)
def correlate(src, w, bias, kw, plane, wp, dh, dw, sh, sw, top, left, n0, n1, full, out):
    """``out[n0:n1] (N, C_out, H_out, W_out)``: each plane of ``full`` above from row
    ``top`` and column ``left``, every ``sH``-th row and ``sW``-th column; ``src (C_in,
    N P + room)``: rows of planes of ``P = plane`` numbers, ``wp`` wide; ``w (C_out, C_g,
    kH kW)`` (kernels ``kw`` wide), ``bias (C_out,)``; ``full`` holds a block of planes."""
    c_in, (c_out, c_g, taps) = src.shape[0], w.shape
    ho, wo = out.shape[2], out.shape[3]
    block, per_group = full.shape[0] // plane, c_out // (c_in // c_g)
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        length, start = (b1 - b0) * plane, b0 * plane
        sums = full[:length]
        for o in range(c_out):
            sums[:] = bias[o]
            first = (o // per_group) * c_g
            for c in range(c_g):
                row, weights = src[first + c, start:], w[o, c]
                t = 0
                while t < taps:
                    if t + 4 <= taps:       # four taps: one pass over the sums
                        s0, s1 = _shift(t, kw, wp, dh, dw), _shift(t + 1, kw, wp, dh, dw)
                        s2, s3 = _shift(t + 2, kw, wp, dh, dw), _shift(t + 3, kw, wp, dh, dw)
                        v0, v1 = row[s0:s0 + length], row[s1:s1 + length]
                        v2, v3 = row[s2:s2 + length], row[s3:s3 + length]
                        w0, w1, w2, w3 = weights[t], weights[t + 1], weights[t + 2], weights[t + 3]
                        for k in range(length):
                            sums[k] += w0 * v0[k] + w1 * v1[k] + w2 * v2[k] + w3 * v3[k]
                        t += 4
                    else:
                        s0 = _shift(t, kw, wp, dh, dw)
                        v0, w0 = row[s0:s0 + length], weights[t]
                        for k in range(length):
                            sums[k] += w0 * v0[k]
                        t += 1
            for b in range(b0, b1):
                for i in range(ho):
                    at = (b - b0) * plane + (top + i * sh) * wp + left
                    out[b, o, i] = sums[at:at + sw * (wo - 1) + 1:sw]


@njit(cache=True, nogil=True, fastmath=REDUCE)
def weight_grad(src, g, kw, plane, wp, dh, dw, n0, n1, block, zero, grad_w):
    """``grad_w (C_out, C_g, kH kW)`` (float64) += each tap's dot product of its shifted
    row of ``src`` (as in ``correlate``) with ``g (C_out, N P)``, the output gradient laid
    out as ``full`` (zeros where ``correlate`` keeps nothing), for images ``n0:n1`` in
    blocks of ``block``; ``zero`` is 0 in their dtype, where each sum starts (``g[0] * 0``
    instead was 1.5x slower)."""
    c_in, (c_out, c_g, taps) = src.shape[0], grad_w.shape
    per_group = c_out // (c_in // c_g)
    for b0 in range(n0, n1, block):
        b1 = min(n1, b0 + block)
        length, start = (b1 - b0) * plane, b0 * plane
        for o in range(c_out):
            grad = g[o, start:start + length]
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
