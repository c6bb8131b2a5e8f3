"""``Columns`` on the CPU: its chunks in one parallel loop, a run of chunks on each thread.

The same sums as ``columns.py``'s NumPy lines (which the GPU and the textbook loops run),
chunk by chunk: the chunk's columns ``cols (G K, n L)`` by ``cpu``'s im2col loop (kept
for backward in ``kept``, every chunk's one after the other, when they fit), each group's
product by BLAS (``np.dot``, on one thread), and col2im's loop for the input gradient.
``x`` is the input with its zero padding already put around it (``ph``, ``pw`` of it
were ``padding``); ``chunks`` gives each part's first and last chunk, ``images`` each
chunk's first and last image (``parallel.py``).
"""
import numpy as np
from numba import prange

from .cpu import _col2im_kernel, _im2col_kernel
from .parallel import parts_loop, view


@parts_loop(blas=True)
def forward(x, kh, kw, sh, sw, dh, dw, ho, wo, w2, bias, chunks, images, made, kept, scratch,
            out):
    """``out (N, G M, L) = w2 @ cols + bias`` per chunk; the columns made in the scratch
    (``made`` 0), made into ``kept`` (1) or read there (2)."""
    groups, m, k = w2.shape
    length = ho * wo
    for p in prange(chunks.shape[0]):
        for chunk in range(chunks[p, 0], chunks[p, 1]):
            n0, n1 = images[chunk, 0], images[chunk, 1]
            width = (n1 - n0) * length
            if made:
                cols, start = view(kept, groups * k * n0 * length, (groups * k, width)), 0
            else:
                cols, start = view(scratch[p], 0, (groups * k, width)), groups * k * width
            if made < 2:
                _im2col_kernel(x[n0:n1], kh, kw, sh, sw, dh, dw, ho, wo, cols)
            product = view(scratch[p], start, (m, width))
            for group in range(groups):
                np.dot(w2[group], cols[group * k:(group + 1) * k], product)
                for o in range(m):               # (M, n L) -> each image's rows, plus bias
                    for b in range(n1 - n0):
                        out[n0 + b, group * m + o] = \
                            product[o, b * length:(b + 1) * length] + bias[group * m + o]


@parts_loop(blas=True)
def backward(x, kh, kw, sh, sw, dh, dw, ho, wo, w2, g, chunks, images, kept, dw2, weights,
             dx, inputs, scratch):
    """Per chunk, ``g2 (G, M, n L)`` from ``g (N, G M, L)``; ``dw2[p]``: the sum of part
    ``p``'s chunks' ``g2 @ cols.T`` in chunk order (``weights``; the columns read from
    ``kept``, or made again from ``x`` when it is empty); ``dx`` (padded, ``(N, C, H + 2
    ph, W + 2 pw)``) = col2im of ``w2.T @ g2`` (``inputs``)."""
    groups, m, k = w2.shape
    length = ho * wo
    for p in prange(chunks.shape[0]):
        for chunk in range(chunks[p, 0], chunks[p, 1]):
            n0, n1 = images[chunk, 0], images[chunk, 1]
            width = (n1 - n0) * length
            g2 = view(scratch[p], 0, (groups, m, width))          # laid out as the columns
            for b in range(n1 - n0):
                for o in range(groups * m):
                    g2[o // m, o % m, b * length:(b + 1) * length] = g[n0 + b, o]
            start = groups * m * width               # then the columns or dcols, then dW
            after = start + groups * k * width
            if weights:
                if kept.size:
                    cols = view(kept, groups * k * n0 * length, (groups * k, width))
                else:
                    cols = view(scratch[p], start, (groups * k, width))
                    _im2col_kernel(x[n0:n1], kh, kw, sh, sw, dh, dw, ho, wo, cols)
                first = chunk == chunks[p, 0]
                for group in range(groups):
                    grad = dw2[p, group] if first else view(scratch[p], after, (m, k))
                    np.dot(g2[group], cols[group * k:(group + 1) * k].T, grad)
                    if not first:
                        dw2[p, group] += grad
            if inputs:
                dcols = view(scratch[p], start, (groups * k, width))
                for group in range(groups):
                    np.dot(w2[group].T, g2[group], dcols[group * k:(group + 1) * k])
                _col2im_kernel(dcols, kh, kw, sh, sw, dh, dw, ho, wo, dx[n0:n1])
