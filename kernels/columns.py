"""A convolution's columns ``cols = im2col(x)``, built chunk by chunk (what ``Conv2D`` uses).

With ``G`` groups the columns are seen as ``(G, K, N*L)`` with ``K = C/G * kH*kW``
(``L = H_out*W_out``): the rows of ``cols`` run over ``(c, u, v)``, so group
``g``'s channels are one block of rows, and ONE batched product
``W2 @ cols`` with ``W2 (G, C_out/G, K)`` convolves every group at once::

    out2 = W2 @ cols                    (G, C_out/G, N*L)   forward
    dW2  = g2 @ cols.T                  (G, C_out/G, K)     backward
    dx   = col2im(W2.T @ g2)            (N, C, H, W)

Memory: ``cols`` holds ``C*kH*kW * N*L`` numbers, hundreds of MB for a big
batch. So the batch is cut into chunks of images whose columns stay under
``max_bytes`` (``MAX_COLS_BYTES``: a few MiB on the CPU, where a chunk that
stays in cache beats one huge buffer; 256 MiB on the GPU). The columns are
kept for backward only when the whole batch fits in one chunk; otherwise
backward builds them again, chunk by chunk.

Padding: zeros on both sides alike are read by ``im2col`` itself. Any other
padding (``"reflect"``, ``"replicate"``, ``"circular"``, or zeros of unequal
sides, as ``"same"`` gives an even kernel) pads ``x`` first (``pad``), as
PyTorch does, and backward folds the padding's gradient back (``pad_adjoint``).
"""
from importlib import import_module
from itertools import chain

from ..backend import get_array_module
from .geometry import source_index


def pad(x, pads, mode):
    """``x (N, C, H, W)`` padded by ``pads = ((top, bottom), (left, right))`` in ``mode``."""
    xp = get_array_module(x)
    if mode == "zeros":
        return xp.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    for axis, (before, after) in zip((2, 3), pads):      # each padded pixel copies one pixel
        size = x.shape[axis]
        sources = [source_index(i, size, before, mode) for i in range(before + size + after)]
        x = xp.take(x, xp.asarray(sources), axis=axis)
    return x


def pad_adjoint(grad, pads, mode):
    """Adjoint of ``pad``: a padded pixel's gradient goes to the pixel it copied."""
    xp = get_array_module(grad)
    for axis, (before, after) in zip((2, 3), pads):
        size = grad.shape[axis] - before - after
        g = xp.moveaxis(grad, axis, 0)
        inner = g[before:before + size].copy()
        if mode != "zeros":
            for i in chain(range(before), range(before + size, before + size + after)):
                inner[source_index(i, size, before, mode)] += g[i]
        grad = xp.moveaxis(inner, 0, axis)
    return xp.ascontiguousarray(grad)


class Columns:
    """``cols = im2col(x)`` for one batch, seen as ``(G, K, N*L)``; see the module docstring.

    ``pads`` is ``((top, bottom), (left, right))``; ``max_bytes`` bounds one
    chunk's columns (default ``MAX_COLS_BYTES`` of ``x``'s device).
    """

    def __init__(self, x, kernel, stride, pads, dilation=(1, 1), groups=1, padding_mode="zeros",
                 max_bytes=None):
        ops = import_module(__package__)    # minicnn.kernels: im2col for where x lives
        self.ops, self.kernel, self.stride, self.dilation = ops, kernel, stride, dilation
        self.groups, self.pads, self.padding_mode = groups, pads, padding_mode
        (top, bottom), (left, right) = pads
        self.explicit = padding_mode != "zeros" or top != bottom or left != right
        self.x = pad(x, pads, padding_mode) if self.explicit else x
        self.padding = (0, 0) if self.explicit else (top, left)
        self.out_hw = ops.output_hw(self.x.shape[2:], kernel, stride, self.padding, dilation)
        n, c = x.shape[:2]
        bytes_per_image = c * kernel[0] * kernel[1] * self.out_hw[0] * self.out_hw[1] * x.itemsize
        self.chunks = ops.batch_chunks(n, bytes_per_image, max_bytes or ops.max_cols_bytes(x))
        self.kept = None

    def _cols(self, chunk):
        """The columns of the images ``x[chunk]``: ``(G, K, n_chunk*L)``."""
        if self.kept is not None:
            return self.kept
        cols = self.ops.im2col(self.x[chunk], self.kernel, self.stride, self.padding,
                               self.dilation)
        cols = cols.reshape(self.groups, -1, cols.shape[1])
        if len(self.chunks) == 1:
            self.kept = cols
        return cols

    def _per_group(self, g, chunk):
        """``g[chunk] (n_chunk, G*M, L)`` -> ``g2 (G, M, n_chunk*L)``, laid out as ``cols``."""
        n_chunk, channels, length = g[chunk].shape
        return g[chunk].transpose(1, 0, 2).reshape(self.groups, channels // self.groups, -1)

    def product(self, w2):
        """``out2 = w2 @ cols`` for ``w2 (G, M, K)``, laid out per image: ``(N, G*M, L)``,
        in ``x``'s dtype."""
        xp = get_array_module(w2)
        g_m, length = w2.shape[0] * w2.shape[1], self.out_hw[0] * self.out_hw[1]
        out = xp.empty((self.x.shape[0], g_m, length), dtype=self.x.dtype)
        for chunk in self.chunks:
            out[chunk] = (w2 @ self._cols(chunk)).reshape(g_m, -1, length).transpose(1, 0, 2)
        return out

    def backward(self, w2, g, weights=True):
        """For the output gradient ``g (N, G*M, L)``: ``(dW2, dx)`` with
        ``dW2 = g2 @ cols.T (G, M, K)`` and ``dx = col2im(w2.T @ g2) (N, C, H, W)``.
        ``weights=False`` skips ``dW2`` (``None``) and so the columns: an explanation's
        backward pass needs only ``dx``."""
        xp = get_array_module(g)
        dw2, dx = (0 if weights else None), []
        for chunk in self.chunks:
            g2 = self._per_group(g, chunk)
            if weights:
                cols = self._cols(chunk)
                dw2 = dw2 + g2 @ cols.transpose(0, 2, 1)
                del cols
            dcols = w2.transpose(0, 2, 1) @ g2          # (G, K, n_chunk*L)
            dx.append(self.ops.col2im(dcols.reshape(-1, g2.shape[2]), self.x[chunk].shape,
                                      self.kernel, self.stride, self.padding, self.dilation))
            del dcols                # before the next chunk's columns are built: peak memory
        dx = dx[0] if len(dx) == 1 else xp.concatenate(dx)
        return dw2, pad_adjoint(dx, self.pads, self.padding_mode) if self.explicit else dx
