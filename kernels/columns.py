"""A convolution by columns ``cols = im2col(x)``, chunk by chunk: the fast engine's im2col.

The same formulas as ``textbook`` and ``Conv2D``'s docstring; with ``G`` groups
the columns are seen as ``(G, K, N L)``, ``K = C/G kH kW``, ``L = H_out W_out``,
so ONE batched product convolves every group at once::

    out2 = W2 @ cols                    (G, C_out/G, N L)   forward
    dW2  = g2 @ cols.T                  (G, C_out/G, K)     backward
    dx   = col2im(W2.T @ g2)            (N, C, H, W)

What is added to the formulas is only where and when: the batch's chunks
(``chunks.Chunked``: bounded memory, the CPU's threads, columns kept for backward
when they fit, the input then let go) and the loops that build the columns
(``loops``: Numba on the CPU, numba.cuda on the GPU). Zero padding on both sides
alike is read by ``im2col`` itself; any other padding pads ``x`` first
(``textbook.pad``) and backward folds it back (``textbook.pad_adjoint``).
"""
from ..backend import get_array_module
from . import textbook
from .checks import expect_shape
from .chunks import Chunked
from .textbook import output_hw, pad, pad_adjoint


class Columns(Chunked):
    """``cols = im2col(x)`` for one batch, seen as ``(G, K, N L)``; see the module docstring.

    ``pads`` is ``((top, bottom), (left, right))``; ``loops`` the module whose
    ``im2col``/``col2im`` run on ``x``'s device; ``max_bytes`` bounds one chunk's
    columns (default ``chunks.MAX_COLS_BYTES`` of ``x``'s device).
    """

    def __init__(self, x, kernel, stride, pads, dilation=(1, 1), groups=1, padding_mode="zeros",
                 loops=None, max_bytes=None):
        self.loops = loops or textbook
        self.kernel, self.stride, self.dilation, self.groups = kernel, stride, dilation, groups
        self.pads, self.padding_mode = pads, padding_mode
        (top, bottom), (left, right) = pads
        self.explicit = padding_mode != "zeros" or top != bottom or left != right
        self.x = pad(x, pads, padding_mode) if self.explicit else x
        self.x_shape, self.dtype = self.x.shape, self.x.dtype      # x itself: see Chunked.keep
        self.padding = (0, 0) if self.explicit else (top, left)
        self.out_hw = output_hw(self.x.shape[2:], kernel, stride, self.padding, dilation)
        c = x.shape[1]
        bytes_per_image = c * kernel[0] * kernel[1] * self.out_hw[0] * self.out_hw[1] * x.itemsize
        super().__init__(x, bytes_per_image, max_bytes)

    def _cols(self, chunk):
        """The columns of the images ``x[chunk]``: ``(G, K, n_chunk L)``."""
        def build(chunk):
            cols = self.loops.im2col(self.x[chunk], self.kernel, self.stride, self.padding,
                                     self.dilation)
            return cols.reshape(self.groups, -1, cols.shape[1])
        return self.keep(chunk, build)

    def _chunk_shape(self, chunk):
        """The shape of ``x[chunk]`` (``x`` itself may be gone: ``Chunked.keep``)."""
        return (chunk.stop - chunk.start,) + self.x_shape[1:]

    def _expect_weights(self, w2):
        """``w2`` must be ``(G, M, C/G kH kW)``: one row of weights per column of ``cols``."""
        k = self.x_shape[1] // self.groups * self.kernel[0] * self.kernel[1]
        expect_shape("Columns", "w2", w2, (self.groups,) + w2.shape[1:2] + (k,))

    def _per_group(self, g, chunk):
        """``g[chunk] (n_chunk, G M, L)`` -> ``g2 (G, M, n_chunk L)``, laid out as ``cols``."""
        channels = g.shape[1]
        return g[chunk].transpose(1, 0, 2).reshape(self.groups, channels // self.groups, -1)

    def product(self, w2, bias=None):
        """``out2 = w2 @ cols (+ bias)`` for ``w2 (G, M, K)``, ``bias (G M,)``, laid out
        per image: ``(N, G M, L)``, in ``x``'s dtype."""
        xp = get_array_module(w2)
        g_m, length = w2.shape[0] * w2.shape[1], self.out_hw[0] * self.out_hw[1]
        self._expect_weights(w2)
        if bias is not None:
            expect_shape("Columns.product", "bias", bias, (g_m,))
        out = xp.empty((self.x_shape[0], g_m, length), dtype=self.dtype)

        def one_chunk(chunk):                   # each chunk writes its own images
            out[chunk] = (w2 @ self._cols(chunk)).reshape(g_m, -1, length).transpose(1, 0, 2)
            if bias is not None:
                out[chunk] += bias[:, None]     # while the chunk is still in cache
        self.run(one_chunk)
        return out

    def backward(self, w2, g, weights=True, inputs=True):
        """For the output gradient ``g (N, G M, L)``: ``(dW2, dx)`` with
        ``dW2 = g2 @ cols.T (G, M, K)`` and ``dx = col2im(w2.T @ g2) (N, C, H, W)``.
        ``weights=False`` skips ``dW2`` (``None``) and so the columns: an explanation's
        backward pass needs only ``dx``; ``inputs=False`` skips ``dx`` (``None``): a
        network's first layer in training needs only ``dW2``."""
        xp = get_array_module(g)
        self._expect_weights(w2)
        expect_shape("Columns.backward", "g", g, (self.x_shape[0], w2.shape[0] * w2.shape[1],
                                                  self.out_hw[0] * self.out_hw[1]))
        dx = xp.empty(self.x_shape, dtype=self.dtype) if inputs else None

        def one_chunk(chunk):
            g2 = self._per_group(g, chunk)
            dw2 = g2 @ self._cols(chunk).transpose(0, 2, 1) if weights else None
            if inputs:
                dcols = w2.transpose(0, 2, 1) @ g2          # (G, K, n_chunk L)
                dx[chunk] = self.loops.col2im(dcols.reshape(-1, g2.shape[2]),
                                              self._chunk_shape(chunk), self.kernel, self.stride,
                                              self.padding, self.dilation)
            return dw2           # the chunk's columns are freed here, before the next one's
        dw2 = None
        if weights:
            dw2 = self.total(one_chunk)
        else:
            self.run(one_chunk)
        if inputs and self.explicit:
            dx = pad_adjoint(dx, self.pads, self.padding_mode)
        return dw2, dx
