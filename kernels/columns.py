"""A convolution by columns ``cols = im2col(x)``, chunk by chunk: the fast engine's im2col.

The same formulas as ``textbook`` and ``Conv2D``'s docstring; with ``G`` groups
the columns are seen as ``(G, K, N L)``, ``K = C/G kH kW``, ``L = H_out W_out``,
so ONE batched product convolves every group at once::

    out2 = W2 @ cols                    (G, C_out/G, N L)   forward
    dW2  = g2 @ cols.T                  (G, C_out/G, K)     backward
    dx   = col2im(W2.T @ g2)            (N, C, H, W)

What is added to the formulas is only where and when: the batch's chunks
(``chunks.Chunked``: bounded memory, columns kept for backward when they fit, the
input then let go) and the loops that build the columns (``loops``: Numba on the CPU,
numba.cuda on the GPU). With the CPU's Numba loops the chunks run in one parallel
loop instead, a run of chunks on each thread, the same sums (``columns_cpu.py``).
Zero padding on both sides alike is read by ``im2col`` itself; any other padding pads
``x`` first
(``textbook.pad``) and backward folds it back (``textbook.pad_adjoint``).
"""
import numpy as np

from ..backend import get_array_module
from . import textbook, threads
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
        # the CPU's Numba loops: the chunks in one parallel loop (columns_cpu.py) instead
        self.in_parts = getattr(self.loops, "__name__", "") == f"{__package__}.cpu"

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
        self.biased = bias is not None
        if bias is not None:
            expect_shape("Columns.product", "bias", bias, (g_m,))
        out = xp.empty((self.x_shape[0], g_m, length), dtype=self.dtype)
        if self.in_parts:
            return self._product_in_parts(w2, bias, out)

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
        self._expect_weights(w2)
        expect_shape("Columns.backward", "g", g, (self.x_shape[0], w2.shape[0] * w2.shape[1],
                                                  self.out_hw[0] * self.out_hw[1]))
        if self.in_parts:
            dw2, dx = self._backward_in_parts(w2, g, weights, inputs)
        else:
            dw2, dx = self._backward_chunks(w2, g, weights, inputs)
        if inputs and self.explicit:
            dx = pad_adjoint(dx, self.pads, self.padding_mode)
        return dw2, dx

    def _backward_chunks(self, w2, g, weights, inputs):
        """``backward``'s ``(dW2, dx)``, chunk by chunk (the padding not yet folded back)."""
        xp = get_array_module(g)
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
        if weights:
            return self.total(one_chunk), dx
        self.run(one_chunk)
        return None, dx

    # -- the CPU: every chunk in one parallel loop (columns_cpu.py) ----------------------

    def _loop_arguments(self):
        """The input with its zero padding put around it (empty once the columns are kept:
        ``x`` is let go), the window's numbers."""
        (ph, pw), x = self.padding, self.input_or_empty()
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if x.size and (ph or pw) else \
            np.ascontiguousarray(x)
        return (x, *self.kernel, *self.stride, *self.dilation, *self.out_hw)

    def _widest_chunk(self):
        """The most images a chunk holds: each part's work arrays are one chunk's."""
        return max(chunk.stop - chunk.start for chunk in self.chunks)

    def _product_in_parts(self, w2, bias, out):
        """``product`` on the CPU: every chunk in one parallel loop, into ``out``."""
        from . import columns_cpu
        bias = np.zeros(out.shape[1], self.dtype) if bias is None else bias.astype(self.dtype)
        size = out.shape[0] * out.shape[2] * w2.shape[0] * w2.shape[2]
        made, kept = self.kept_for_loop(size)                     # the columns
        parts, images = self.chunk_bounds()
        width = self._widest_chunk() * out.shape[2]
        cols = w2.shape[0] * w2.shape[2] * width
        scratch = np.empty((len(parts), (0 if made else cols) + w2.shape[1] * width),
                           self.dtype)                       # the columns, the products
        columns_cpu.forward(*self._loop_arguments(), np.ascontiguousarray(w2, self.dtype),
                            bias, parts, images, made, kept, scratch, out)
        if made == 1:
            self.keep_all(kept)
        return out

    def _backward_in_parts(self, w2, g, weights, inputs):
        """``backward``'s ``(dW2, dx)`` on the CPU: every chunk in one parallel loop, the
        parts' sums added in part order (the padding not yet folded back)."""
        from . import columns_cpu
        (ph, pw), (n, c, h, w) = self.padding, self.x_shape
        parts, images = self.chunk_bounds()
        dw2 = np.empty((len(parts),) + (w2.shape if weights else (0, 0, 0)), self.dtype)
        dx = np.empty((n, c, h + 2 * ph, w + 2 * pw) if inputs else (0,) * 4, self.dtype)
        (groups, m, k), width = w2.shape, self._widest_chunk() * g.shape[2]
        scratch = np.empty((len(parts), groups * (m + k) * width + m * k), self.dtype)
        columns_cpu.backward(*self._loop_arguments(), np.ascontiguousarray(w2, self.dtype),
                             np.ascontiguousarray(g, self.dtype), parts, images,
                             self.kept_or_empty(), dw2, weights, dx, inputs,
                             scratch)                        # g2, the columns or dcols, dW
        if inputs and (ph or pw):
            dx = np.ascontiguousarray(dx[:, :, ph:ph + h, pw:pw + w])
        return (threads.add_in_order(dw2) if weights else None), (dx if inputs else None)
