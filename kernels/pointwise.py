"""A 1x1 convolution (stride 1, no padding, one group) as one matrix product per image.

With a 1x1 kernel im2col's columns are ``x`` itself, only transposed to ``(C, N L)``
(and col2im transposes back): copies for nothing. Here each image ``x[n] (C, L)`` is
multiplied where it lies (``L = H W``)::

    out[n] = W2 @ x[n] + b          (C_out, L)        W2 = weight.reshape(C_out, C)
    dW2    = sum_n g[n] @ x[n].T    (C_out, C)
    dx[n]  = W2.T @ g[n]            (C, L)

``Pointwise`` has ``Columns``' interface (``product``, ``backward``, ``out_hw``);
``fast.plan`` picks it where ``suits`` says so (MobileNet's pointwise layers: 2-3x
faster than im2col's copies, benchmarks/README.md, issue 28). The batch is cut into one
part per thread, the parts run in one parallel loop (``parallel.py``: a BLAS product per
image, BLAS on one thread inside), the weight gradient's per-part sums added in part
order. Kept for backward: ``x`` (as PyTorch keeps it), no copy.
"""
import numpy as np

from . import threads
from .checks import expect_shape


def suits(x, kernel, stride, pads, groups):
    """Whether ``Pointwise`` runs this convolution: NumPy float arrays, a 1x1 kernel,
    stride 1, no padding, one group."""
    return (isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
            and kernel == (1, 1) and stride == (1, 1) and groups == 1
            and pads == ((0, 0), (0, 0)))


class Pointwise:
    """One batch ``x (N, C, H, W)`` convolved by a 1x1 kernel; see the module docstring."""

    def __init__(self, x):
        from . import parallel           # Numba is there (fast.plan checked)
        self.loops = parallel
        n, c, h, w = x.shape
        self.x, self.out_hw = np.ascontiguousarray(x).reshape(n, c, h * w), (h, w)
        self.parts = threads.part_bounds(n, self.x.size)
        self.bias_grad = None       # the sums of g, made by backward with the weights'
        self.biased = True          # product says: a bias-less layer's backward sums no g

    def _weights(self, w2):
        """``w2 (1, C_out, C)``, checked, as the matrix ``(C_out, C)``."""
        expect_shape("Pointwise", "w2", w2, (1,) + w2.shape[1:2] + self.x.shape[1:2])
        return w2[0]

    def product(self, w2, bias=None):
        """``W2 @ x[n] + b`` for every image: ``(N, C_out, L)``, in ``x``'s dtype."""
        w = np.ascontiguousarray(self._weights(w2), dtype=self.x.dtype)
        self.biased = bias is not None
        bias = np.zeros(w.shape[0], self.x.dtype) if bias is None else bias
        expect_shape("Pointwise.product", "bias", bias, w.shape[:1])
        out = np.empty((self.x.shape[0], w.shape[0], self.x.shape[2]), self.x.dtype)
        self.loops.pointwise_forward(w, self.x, bias.astype(self.x.dtype, copy=False),
                                     self.parts, out)
        return out

    def backward(self, w2, g, weights=True, inputs=True):
        """``(dW2 (1, C_out, C), dx (N, C, H, W))`` for ``g (N, C_out, L)``, as
        ``Columns.backward`` (``weights=False`` / ``inputs=False``: ``None``)."""
        w = self._weights(w2).astype(self.x.dtype, copy=False)
        n, c, length = self.x.shape
        expect_shape("Pointwise.backward", "g", g, (n, w.shape[0], length))
        dx = np.empty_like(self.x) if inputs else np.empty((0, 0, 0), self.x.dtype)
        # a part's sum of products in its own slot, added in part order below
        grad_w = np.zeros((len(self.parts), w.shape[0], c), self.x.dtype)
        grad_b = np.zeros((len(self.parts), w.shape[0] if self.biased else 0))  # float64
        self.loops.pointwise_backward(np.ascontiguousarray(w.T), self.x,
                                      np.ascontiguousarray(g, dtype=self.x.dtype),
                                      self.x.dtype.type(0), self.parts, dx, grad_w, grad_b,
                                      inputs, weights)
        dw2 = threads.add_in_order(grad_w)[None] if weights else None
        self.bias_grad = threads.add_in_order(grad_b).astype(self.x.dtype) \
            if weights and self.biased else None
        return dw2, (dx.reshape((n, c) + self.out_hw) if inputs else None)
