"""A 1x1 convolution (stride 1, no padding, one group) as one matrix product per image.

With a 1x1 kernel im2col's columns are ``x`` itself, only transposed to ``(C, N L)``
(and col2im transposes back): copies for nothing. Here each image ``x[n] (C, L)`` is
multiplied where it lies (``L = H W``)::

    out[n] = W2 @ x[n] + b          (C_out, L)        W2 = weight.reshape(C_out, C)
    dW2    = sum_n g[n] @ x[n].T    (C_out, C)
    dx[n]  = W2.T @ g[n]            (C, L)

NumPy's ``matmul`` runs the images' products in one call (one BLAS product each).
``Pointwise`` has ``Columns``' interface (``product``, ``backward``, ``out_hw``);
``fast.plan`` picks it where ``suits`` says so (MobileNet's pointwise layers: 2-3x
faster than im2col's copies, benchmarks/README.md, issue 28). The batch is cut into one
part per chunk thread (BLAS on one thread inside), the weight gradient's per-part sums
added in part order. Kept for backward: ``x`` (as PyTorch keeps it), no copy.
"""
import operator

import numpy as np

from . import threads
from .checks import expect_shape


def suits(x, kernel, stride, pads, groups):
    """Whether ``Pointwise`` runs this convolution: NumPy float arrays, a 1x1 kernel,
    stride 1, no padding, one group."""
    return (isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
            and kernel == (1, 1) and stride == (1, 1) and groups == 1
            and pads == ((0, 0), (0, 0)))


# A block of images' weight-gradient products (``_weight_grad``) stays under this many
# numbers: a few hundred KiB, where the whole batch's stack took MiBs.
BLOCK_NUMBERS = 2 ** 16


class Pointwise:
    """One batch ``x (N, C, H, W)`` convolved by a 1x1 kernel; see the module docstring."""

    def __init__(self, x):
        n, c, h, w = x.shape
        self.x, self.out_hw = np.ascontiguousarray(x).reshape(n, c, h * w), (h, w)
        self.parts = threads.parts(n, size=self.x.size)

    def _weights(self, w2):
        """``w2 (1, C_out, C)``, checked, as the matrix ``(C_out, C)``."""
        expect_shape("Pointwise", "w2", w2, (1,) + w2.shape[1:2] + self.x.shape[1:2])
        return w2[0]

    def product(self, w2, bias=None):
        """``W2 @ x[n] + b`` for every image: ``(N, C_out, L)``, in ``x``'s dtype."""
        w = self._weights(w2).astype(self.x.dtype, copy=False)
        if bias is not None:
            expect_shape("Pointwise.product", "bias", bias, w.shape[:1])
        out = np.empty((self.x.shape[0], w.shape[0], self.x.shape[2]), self.x.dtype)

        def one_part(part):
            np.matmul(w, self.x[part], out=out[part])
            if bias is not None:
                out[part] += bias[:, None]            # while the part is still in cache
        threads.run(one_part, self.parts)
        return out

    def backward(self, w2, g, weights=True, inputs=True):
        """``(dW2 (1, C_out, C), dx (N, C, H, W))`` for ``g (N, C_out, L)``, as
        ``Columns.backward`` (``weights=False`` / ``inputs=False``: ``None``)."""
        w = self._weights(w2).astype(self.x.dtype, copy=False)
        n, c, length = self.x.shape
        expect_shape("Pointwise.backward", "g", g, (n, w.shape[0], length))
        dx = np.empty_like(self.x) if inputs else None

        def one_part(part):
            if inputs:
                np.matmul(w.T, g[part], out=dx[part])
            return self._weight_grad(g, part) if weights else None
        total = threads.run(one_part, self.parts, fold=operator.add if weights else None)
        dw2 = total[None] if weights else None
        return dw2, (dx.reshape((n, c) + self.out_hw) if inputs else None)

    def _weight_grad(self, g, part):
        """``sum_n g[n] @ x[n].T`` over the images of ``part``, ``(C_out, C)``: the
        products of a block of images at a time, summed (a stack of the whole part's
        products was the largest array of a MobileNet step's backward)."""
        c_out, c = g.shape[1], self.x.shape[1]
        block = max(1, BLOCK_NUMBERS // (c_out * c))
        total = None
        for start in range(part.start, part.stop, block):
            images = slice(start, min(start + block, part.stop))
            products = np.matmul(g[images], self.x[images].transpose(0, 2, 1)).sum(axis=0)
            total = products if total is None else total + products
        return total
