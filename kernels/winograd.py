"""Winograd's minimal filtering: stride-1 3x3 and 5x5 convolutions in fewer multiplications.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (2016). An
``m x m`` tile of an ``r x r`` convolution's output needs an ``A x A`` tile of
its input, ``A = m + r - 1``: F(4x4, 3x3) (``A = 6``) and F(4x4, 5x5) (``A = 8``)
here. With three constant matrices ``AT (m, A)``, ``G (A, r)``, ``BT (A, A)``::

    U = G w G^T          (A, A) for each (o, c): the weights, transformed once a step
    V = BT d BT^T        (A, A) for each (tile, c): an input tile d, transformed
    P[xi] = V[xi] @ U[xi].T      for each of the A*A positions xi: (T, C) @ (C, C_out)
    y = AT P AT^T        (m, m) for each (tile, o): the output tile

So the channels are summed by ``A*A`` matrix products (BLAS) instead of one
with ``r*r`` times more columns: 36 / 16 = 2.25 multiplications per output
pixel and channel pair for 3x3 (im2col: 9), 64 / 16 = 4 for 5x5 (im2col: 25).
The transforms cost less: each is shared by all channels of the other side.

Backward is the exact adjoint of those linear steps::

    dP = AT^T dy AT      (A, A) for each (tile, o)
    dU[xi] = dP[xi].T @ V[xi]    (C_out, C)    ->  dw = G^T dU G
    dV[xi] = dP[xi] @ U[xi]      (T, C)        ->  dx = BT^T dV BT, overlapping tiles added

The matrices come from the points 0, 1, -1, 2, -2 (and 1/2, -1/2 for ``A = 8``)
and infinity (``transforms``): the output is the product of two polynomials
evaluated there and interpolated back. In float64 the result equals the direct
convolution to about 1e-13; in float32 to a few 1e-6 of the output's scale
(tests/test_winograd.py).

``Winograd`` is ``chunks.Chunked`` with ``Columns``' interface (``product``, ``backward``,
``out_hw``); ``fast.plan`` picks it where ``suits`` says so. The loops
are Numba's, in ``winograd_cpu.py``, run a part of the batch on each thread by
``parallel.py``; the CPU only (the GPU keeps im2col).
"""
from functools import lru_cache

import numpy as np

from . import threads
from .checks import expect_shape
from .chunks import Chunked

KERNELS = {3: 4, 5: 4}               # kernel side r -> output tile side m
# the points, besides infinity, for an input tile of side A = m + r - 1
POINTS = {6: (0.0, 1.0, -1.0, 2.0, -2.0), 8: (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)}
# Below this many channels on either side the transforms cost about what they save, and
# such convolutions stay im2col (one input channel: direct.py). 16 until issue 28, which
# measured tiny_cnn's 4 -> 8 and lenet5's 6 -> 16 faster as tiles (benchmarks/README.md).
MIN_CHANNELS = 4
# A chunk holds whole images, about this many tiles, and its V and P (A*A numbers per tile
# and channel) stay under MAX_CHUNK_BYTES: small chunks keep the memory peak down and share
# out between the threads evenly. 98, not 392, since the chunks' weight gradients are added
# as they come in (Chunked.total): measured lower peaks and no slower steps for every model
# (benchmarks/README.md, "Behind the kernels' choices").
TILES_PER_CHUNK = 98
MAX_CHUNK_BYTES = 8 * 2 ** 20
# A tile transform (winograd_cpu.py) takes this many numbers (tiles times channels) at
# once, however few the channels: long enough to vectorize, small enough to stay in cache
# (benchmarks/README.md, "Behind the kernels' choices").
RUN_NUMBERS = 64


@lru_cache(maxsize=None)
def transforms(m, r):
    """``(AT (m, A), G (A, r), BT (A, A))`` in float64 for F(m, r), ``A = m + r - 1``.

    ``AT[i, k] = p_k ** i`` and ``G[k, j] = p_k ** j / prod_{l != k} (p_k - p_l)``
    (the point at infinity: the last column of ``AT``, the last row of ``G``);
    ``BT`` is solved for from what F(m, r) must compute, for every input ``d`` and
    filter ``g``: ``sum_k AT[i, k] (G g)[k] (BT d)[k] = sum_j g[j] d[i + j]``.
    """
    alpha = m + r - 1
    p = np.array(POINTS[alpha])
    at = np.zeros((m, alpha))
    at[:, :-1] = p[None, :] ** np.arange(m)[:, None]
    at[-1, -1] = 1
    scale = np.array([np.prod([pk - pl for pl in p if pl != pk]) for pk in p])
    g = np.zeros((alpha, r))
    g[:-1] = p[:, None] ** np.arange(r)[None, :] / scale[:, None]
    g[-1, -1] = 1
    # linear in BT: one equation per (i, j, d-index)
    system = np.einsum("ik,kj,de->ijdke", at, g, np.eye(alpha))
    system = system.reshape(m * r * alpha, alpha * alpha)
    target = np.array([[[float(d == i + j) for d in range(alpha)] for j in range(r)]
                       for i in range(m)]).ravel()
    bt = np.linalg.solve(system.T @ system, system.T @ target).reshape(alpha, alpha)
    bt = np.round(bt, 12)                                   # quarters: exact in float32
    assert np.allclose(system @ bt.ravel(), target, atol=1e-12), "F(m, r) has no exact BT"
    return at, g, bt


@lru_cache(maxsize=None)
def transforms_in(m, r, dtype):
    """``(AT, BT, GG)`` of ``transforms(m, r)`` in ``dtype``, ``GG = G kron G (A*A, r*r)``
    mapping a flattened ``r x r`` kernel to its flattened ``G w G^T``; read-only (shared
    by every layer: made once, not at each step)."""
    at, g, bt = (mat.astype(dtype) for mat in transforms(m, r))
    matrices = at, bt, np.kron(g, g)
    for mat in matrices:
        mat.flags.writeable = False
    return matrices


def suits(x, kernel, stride, dilation, groups, padding_mode, out_channels):
    """Whether ``Winograd`` runs this convolution: NumPy arrays of float32/float64, a
    3x3 or 5x5 kernel, stride 1, no dilation, one group, zero padding, at least
    ``MIN_CHANNELS`` channels in and out."""
    return (isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
            and kernel[0] == kernel[1] and kernel[0] in KERNELS and stride == (1, 1)
            and dilation == (1, 1) and groups == 1 and padding_mode == "zeros"
            and min(x.shape[1], out_channels) >= MIN_CHANNELS)


class Winograd(Chunked):
    """One batch's convolution by Winograd's tiles; ``Columns``' interface (``G = 1``).

    ``x (N, C, H, W)``, ``pads ((top, bottom), (left, right))`` of zeros;
    ``max_bytes`` bounds one chunk's transformed tiles (default ``MAX_CHUNK_BYTES``).
    Keeps for backward the transformed input tiles ``V`` when the batch's fit
    ``chunks.MAX_KEPT_BYTES`` (``kept``: every chunk's, one after the other; ``x`` is then
    let go), else ``x``, to make them again chunk by chunk. The chunks run in one
    parallel loop, a run of whole chunks on each thread (``parallel.py``).
    """

    def __init__(self, x, kernel, pads, out_channels, max_bytes=None):
        # imported here: without Numba, minicnn.kernels must still import (and never get here)
        from . import parallel
        self.loops = parallel
        self.r = kernel[0]
        self.m = KERNELS[self.r]
        self.area = (self.m + self.r - 1) ** 2           # A * A transform-domain positions
        self.AT, self.BT, self.GG = transforms_in(self.m, self.r, x.dtype)
        (top, bottom), (left, right) = pads
        n, c, h, w = x.shape
        self.x, self.corner, self.out_channels = np.ascontiguousarray(x), (top, left), out_channels
        self.x_shape, self.dtype = self.x.shape, self.x.dtype      # x itself: see Chunked.keep
        self.out_hw = (h + top + bottom - self.r + 1, w + left + right - self.r + 1)
        self.tiles = tuple(-(-size // self.m) for size in self.out_hw)
        # the padded input covers every tile's window (zeros past the bottom/right padding)
        self.padded_hw = tuple(t * self.m + self.r - 1 for t in self.tiles)
        bytes_per_channel = self.area * self.tiles[0] * self.tiles[1] * x.itemsize
        bytes_per_image = bytes_per_channel * (c + out_channels)      # V and P
        images = -(-TILES_PER_CHUNK // (self.tiles[0] * self.tiles[1]))
        bound = min(images * bytes_per_image, max_bytes or MAX_CHUNK_BYTES)
        super().__init__(x, bytes_per_image, bound, kept_bytes_per_image=bytes_per_channel * c)

    @staticmethod
    def _tiles_a_run(channels):
        """How many consecutive tiles a transform takes at once: ``RUN_NUMBERS`` numbers."""
        return max(1, RUN_NUMBERS // channels)

    def _scratch(self, parts, c_out, way, tiles_kept=False):
        """Each part's work arrays for ``way`` (forward or backward), a row a part: one
        chunk's at a time (its largest), as the parallel loops cut them (parallel.py)."""
        images = max(chunk.stop - chunk.start for chunk in self.chunks)
        tiles, c = images * self.tiles[0] * self.tiles[1], self.x_shape[1]
        padded = images * self.padded_hw[0] * self.padded_hw[1] * c
        if way == "forward":             # V (unless kept), then padded planes or P
            size = (0 if tiles_kept else self.area * tiles * c) + \
                max(padded, self.area * tiles * c_out)
        else:                            # dP, V or dV, then padded planes or a chunk's dU
            size = self.area * tiles * (c_out + c) + max(padded, self.area * c_out * c)
        return np.empty((parts, size), self.dtype)

    def _weights(self, w2):
        """``U (A*A, C_out, C)``: ``G w G^T`` for each (o, c)."""
        # the tile loops index by C_out and C: checked here, at their entry, with bias and g
        expect_shape("Winograd", "w2", w2, (1, self.out_channels, self.x_shape[1] * self.r ** 2))
        # G w G^T for every (o, c) at once: (G kron G) times the flattened kernels, one
        # product (einsum planned its path anew at each call: benchmarks/README.md)
        with threads.one_blas_thread():       # no BLAS workers left spinning afterwards
            u = self.GG @ w2.reshape(-1, self.r * self.r).T      # (A*A, C_out C)
        return u.reshape(self.area, self.out_channels, self.x_shape[1])

    def product(self, w2, bias=None):
        """The convolution of ``x`` with ``w2 (1, C_out, C r r)`` plus ``bias``:
        ``(N, C_out, H_out W_out)``, as ``Columns.product``."""
        u_t = np.ascontiguousarray(self._weights(w2).transpose(0, 2, 1))   # (A*A, C, C_out)
        c_out = u_t.shape[2]
        self.biased = bias is not None
        bias = np.zeros(c_out, self.dtype) if bias is None else bias.astype(self.dtype)
        expect_shape("Winograd.product", "bias", bias, (c_out,))
        out = np.empty((self.x_shape[0], c_out) + self.out_hw, dtype=self.dtype)
        size = self.area * self.x_shape[0] * self.tiles[0] * self.tiles[1] * self.x_shape[1]
        made, kept = self.kept_for_loop(size)                     # the tiles V
        parts, images = self.chunk_bounds()
        self.loops.winograd_forward(self.input_or_empty(), *self.corner, self.BT, self.AT,
                                    self.m, *self.tiles, *self.padded_hw,
                                    self._tiles_a_run(self.x_shape[1]), self._tiles_a_run(c_out),
                                    u_t, bias, parts, images, made, kept,
                                    self._scratch(len(parts), c_out, "forward", made > 0), out)
        if made == 1:
            self.keep_all(kept)
        return out.reshape(out.shape[0], c_out, -1)

    def backward(self, w2, grad, weights=True, inputs=True):
        """``(dw2 (1, C_out, C r r), dx (N, C, H, W))`` for ``grad (N, C_out, L)``, as
        ``Columns.backward`` (``weights=False`` / ``inputs=False`` skip one: ``None``)."""
        u = np.ascontiguousarray(self._weights(w2))                 # (A*A, C_out, C)
        expect_shape("Winograd.backward", "grad", grad, (self.x_shape[0], self.out_channels,
                                                         self.out_hw[0] * self.out_hw[1]))
        grad = np.ascontiguousarray(grad, dtype=self.dtype).reshape(grad.shape[:2] + self.out_hw)
        dx = np.empty(self.x_shape if inputs else (0,) * 4, dtype=self.dtype)
        parts, images = self.chunk_bounds()
        # each part's dU, its chunks' added in chunk order, in its own slot
        du = np.empty((len(parts),) + (u.shape if weights else (0, 0, 0)), self.dtype)
        grad_b = np.zeros((len(parts), u.shape[1] if weights and self.biased else 0))  # float64
        self.loops.winograd_backward(self.input_or_empty(), *self.corner, self.BT, self.AT, self.m,
                                     *self.tiles, *self.padded_hw,
                                     self._tiles_a_run(self.x_shape[1]),
                                     self._tiles_a_run(u.shape[1]), u, grad, self.dtype.type(0),
                                     parts, images, self.kept_or_empty(), du, grad_b, weights,
                                     dx, inputs, self._scratch(len(parts), u.shape[1], "backward"))
        if not weights:
            self.bias_grad = None
            return None, dx
        self.bias_grad = threads.add_in_order(grad_b).astype(self.dtype) if self.biased else None
        with threads.one_blas_thread():       # dw = G^T dU G for every (o, c), as above
            dw = threads.add_in_order(du).reshape(self.area, -1).T @ self.GG  # (C_out C, r r)
        return dw.reshape(1, u.shape[1], -1), (dx if inputs else None)
