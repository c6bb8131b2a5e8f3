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
stays in cache beats one huge buffer; 256 MiB on the GPU). On the CPU the
chunks run on threads (``threads``), as many chunks per thread. The columns are
kept for backward when the whole batch's fit ``MAX_KEPT_BYTES``; otherwise
backward builds them again, chunk by chunk.

Padding: zeros on both sides alike are read by ``im2col`` itself. Any other
padding (``"reflect"``, ``"replicate"``, ``"circular"``, or zeros of unequal
sides, as ``"same"`` gives an even kernel) pads ``x`` first (``pad``), as
PyTorch does, and backward folds the padding's gradient back (``pad_adjoint``).
"""
from importlib import import_module
from itertools import chain

from ..backend import device_of, get_array_module
from . import threads
from .geometry import expect_shape, source_index


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
        # on the CPU the chunks run on threads (kernels.threads): as many per thread,
        # unless the work is too small to share
        on_cpu = device_of(x) == "cpu"
        self.run = threads.run if on_cpu else _serial
        numbers = n * bytes_per_image // x.itemsize
        workers = threads.num_threads() if on_cpu and numbers >= threads.MIN_PARALLEL_SIZE else 1
        self.chunks = ops.batch_chunks(n, bytes_per_image, max_bytes or ops.max_cols_bytes(x),
                                       workers)
        # small enough: forward's columns are kept for backward, not built twice
        self.kept = {} if n * bytes_per_image <= ops.max_kept_bytes(x) else None

    def _cols(self, chunk):
        """The columns of the images ``x[chunk]``: ``(G, K, n_chunk*L)``."""
        if self.kept is not None and chunk.start in self.kept:
            return self.kept[chunk.start]
        cols = self.ops.im2col(self.x[chunk], self.kernel, self.stride, self.padding,
                               self.dilation)
        cols = cols.reshape(self.groups, -1, cols.shape[1])
        if self.kept is not None:
            self.kept[chunk.start] = cols
        return cols

    def _expect_weights(self, w2):
        """``w2`` must be ``(G, M, C/G kH kW)``: one row of weights per column of ``cols``."""
        k = self.x.shape[1] // self.groups * self.kernel[0] * self.kernel[1]
        expect_shape("Columns", "w2", w2, (self.groups,) + w2.shape[1:2] + (k,))

    def _per_group(self, g, chunk):
        """``g[chunk] (n_chunk, G*M, L)`` -> ``g2 (G, M, n_chunk*L)``, laid out as ``cols``."""
        n_chunk, channels, length = g[chunk].shape
        return g[chunk].transpose(1, 0, 2).reshape(self.groups, channels // self.groups, -1)

    def product(self, w2, bias=None):
        """``out2 = w2 @ cols (+ bias)`` for ``w2 (G, M, K)``, ``bias (G*M,)``, laid out
        per image: ``(N, G*M, L)``, in ``x``'s dtype."""
        xp = get_array_module(w2)
        g_m, length = w2.shape[0] * w2.shape[1], self.out_hw[0] * self.out_hw[1]
        self._expect_weights(w2)
        if bias is not None:
            expect_shape("Columns.product", "bias", bias, (g_m,))
        out = xp.empty((self.x.shape[0], g_m, length), dtype=self.x.dtype)

        def one_chunk(chunk):                   # each chunk writes its own images
            out[chunk] = (w2 @ self._cols(chunk)).reshape(g_m, -1, length).transpose(1, 0, 2)
            if bias is not None:
                out[chunk] += bias[:, None]     # while the chunk is still in cache
        self.run(one_chunk, self.chunks)
        return out

    def backward(self, w2, g, weights=True, inputs=True):
        """For the output gradient ``g (N, G*M, L)``: ``(dW2, dx)`` with
        ``dW2 = g2 @ cols.T (G, M, K)`` and ``dx = col2im(w2.T @ g2) (N, C, H, W)``.
        ``weights=False`` skips ``dW2`` (``None``) and so the columns: an explanation's
        backward pass needs only ``dx``; ``inputs=False`` skips ``dx`` (``None``): a
        network's first layer in training needs only ``dW2``."""
        xp = get_array_module(g)
        self._expect_weights(w2)
        expect_shape("Columns.backward", "g", g, (self.x.shape[0], w2.shape[0] * w2.shape[1],
                                                  self.out_hw[0] * self.out_hw[1]))
        dx = xp.empty(self.x.shape, dtype=self.x.dtype) if inputs else None

        def one_chunk(chunk):
            g2 = self._per_group(g, chunk)
            dw2 = g2 @ self._cols(chunk).transpose(0, 2, 1) if weights else None
            if inputs:
                dcols = w2.transpose(0, 2, 1) @ g2          # (G, K, n_chunk*L)
                dx[chunk] = self.ops.col2im(dcols.reshape(-1, g2.shape[2]), self.x[chunk].shape,
                                            self.kernel, self.stride, self.padding,
                                            self.dilation)
            return dw2           # the chunk's columns are freed here, before the next one's
        partial = self.run(one_chunk, self.chunks)
        dw2 = sum(partial[1:], partial[0]) if weights else None    # in chunk order: same bits
        if inputs and self.explicit:
            dx = pad_adjoint(dx, self.pads, self.padding_mode)
        return dw2, dx


def _serial(work, items):
    """``threads.run``'s GPU counterpart: the chunks one after the other (the GPU is parallel)."""
    return [work(item) for item in items]
