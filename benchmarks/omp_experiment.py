"""An experiment, not the engine: the fast engine's convolutions on Numba's OpenMP threads.

minicnn's chunk threads (``kernels/threads.py``) are Python threads: a hand-off wakes a
sleeping helper (a futex, then the GIL: 64-87 us measured) and gains little on small
layers. Here ``Direct``, ``Pointwise`` and ``Winograd`` are patched, while this script
runs, to do their parts inside ONE compiled ``prange`` loop each (``parallel=True``):
Numba's OpenMP workers spin between loops, so a hand-off costs about 2 us. Their matrix
products are ``np.dot`` inside the compiled loops, which Numba hands to BLAS through
SciPy (``scipy.linalg.cython_blas``): minicnn does not depend on SciPy, so this needs it
(``pip install scipy``; the ``studies`` extra brings it). ``Direct`` and ``Winograd`` run
the engine's per-part loops and add the parts in its order: the same bits;
``Pointwise`` sums its weight gradient image by image (the engine: a block of images at
a time): equal to rounding (both checked before timing). Only zero padding is patched
(the zoo's models use nothing else).

With ``--all``, Dense's products run the same way (a part of the rows per iteration) and
pooling and Adam on the calling thread; otherwise the rest of the engine stays on the
chunk threads, and what that costs is part of the result (benchmarks/README.md, "The fifth
session"). Usage, 2 threads:

    OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 MINICNN_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 \\
        python benchmarks/omp_experiment.py --models lenet5 mobilenet_mnist --batch-sizes 64

It prints, per model and batch, the median ms a step of the blocks protocol
(``report.time_blocks``, 3 steps a block after a 0.25 s pause and one untimed step) over
three engines in turn: minicnn as it is, minicnn with the patched convolutions, PyTorch.
``--check`` only checks the patched convolutions' results: about 40 s the first time,
nearly all compiling, which is why the test suite does not run this script.
"""
import argparse
import os
import sys

import numpy as np
import scipy.linalg  # noqa: F401  (Numba's np.dot finds BLAS through it)
from numba import njit, prange
from threadpoolctl import threadpool_limits

from minicnn.kernels import cpu, direct, direct_cpu, pointwise, threads, winograd, winograd_cpu
from minicnn.kernels.direct import top_left

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ON = [False]            # the patched convolutions in use
ALL = [False]           # --all: Dense's products, pooling and Adam too


def bounds_of(parts):
    """``(k, 2)`` starts and stops of the slices ``parts``, for the compiled loops."""
    return np.array([[p.start, p.stop] for p in parts], np.int64)


# -- Direct: the engine's loops, a part per prange iteration ----------------------------

@njit(cache=True, nogil=True, parallel=True)
def direct_phases(x, top, left, sh, sw, hp, wp, bounds, rows):
    for p in prange(bounds.shape[0]):
        direct_cpu.to_phases(x, top, left, sh, sw, hp, wp, bounds[p, 0], bounds[p, 1], rows)


@njit(cache=True, nogil=True, parallel=True)
def direct_forward(src, w, bias, kw, plane, wp, dh, dw, bounds, sums, out):
    for p in prange(bounds.shape[0]):
        direct_cpu.forward(src, w, bias, kw, plane, wp, dh, dw, bounds[p, 0], bounds[p, 1],
                           sums[p], out)


@njit(cache=True, nogil=True, parallel=True)
def direct_backward(src, g, w_t, kw, plane, wp, dh, dw, bounds, rows_w, zero, grad_w,
                    plane_t, wp_t, top, left, sh, sw, rows_t, sums_t, grad_x, do_w, do_x):
    for p in prange(bounds.shape[0]):
        n0, n1 = bounds[p, 0], bounds[p, 1]
        if do_x:
            direct_cpu.input_grad(g, w_t, kw, plane_t, wp_t, dh, dw, top, left, sh, sw, n0,
                                  n1, rows_t[p], sums_t[p], grad_x)
        if do_w:
            direct_cpu.weight_grad(src, g, kw, plane, wp, dh, dw, n0, n1, rows_w[p], zero,
                                   grad_w[p])


ENGINE = {cls: {name: getattr(cls, name) for name in ("__init__", "product", "backward")}
          for cls in (direct.Direct, pointwise.Pointwise, winograd.Winograd)}


def patched(cls, name):
    """The decorated function replaces ``cls``'s method ``name`` while ``ON`` (unless the
    object was made with ``patched = False``)."""
    def wrap(function):
        engine = ENGINE[cls][name]

        def method(self, *args, **kwargs):
            use = ON[0] and getattr(self, "patched", True)
            return (function if use else engine)(self, *args, **kwargs)
        setattr(cls, name, method)
        return function
    return wrap


@patched(direct.Direct, "__init__")
def direct_init(self, x, kernel, stride, pads, dilation=(1, 1), groups=1,
                padding_mode="zeros"):
    self.patched = padding_mode == "zeros"
    engine = ENGINE[direct.Direct]["__init__"]
    if not self.patched:
        return engine(self, x, kernel, stride, pads, dilation, groups, padding_mode)
    engine_run = direct.Direct._run
    direct.Direct._run = lambda *args, **kwargs: None      # no phase copy on the threads
    try:
        engine(self, x, kernel, stride, pads, dilation, groups, padding_mode)
    finally:
        direct.Direct._run = engine_run
    direct_phases(x, *top_left(pads), *self.stride, *self.phase_hw, bounds_of(self.parts),
                  self.src)


@patched(direct.Direct, "product")
def direct_product(self, w2, bias=None):
    w = self._weights(w2)
    c_out, dtype = w.shape[0], self.src.dtype
    bias = np.zeros(c_out, dtype) if bias is None else bias.astype(dtype)
    out = np.empty((self.x_shape[0], c_out) + self.out_hw, dtype=dtype)
    wp, plane = self.phase_hw[1], self.phase_hw[0] * self.phase_hw[1]
    sums = np.empty((len(self.parts), 4 * self._block(plane) * plane), dtype)
    direct_forward(self.src, w, bias, self.kernel[1], plane, wp, *self.dilation,
                   bounds_of(self.parts), sums, out)
    return out.reshape(out.shape[0], c_out, -1)


@patched(direct.Direct, "backward")
def direct_grads(self, w2, g, weights=True, inputs=True):
    w = self._weights(w2)
    n, c_out, dtype = self.x_shape[0], w.shape[0], self.src.dtype
    g = np.ascontiguousarray(g, dtype=dtype).reshape((n, c_out) + self.out_hw)
    (kh, kw), (dh, dw), (hp, wp) = self.kernel, self.dilation, self.phase_hw
    plane, parts = hp * wp, len(self.parts)
    rows_w = np.empty((parts, c_out, self._block(plane) * plane), dtype)
    grad_w = np.zeros((parts,) + w.shape)
    # the input gradient's operands, as Direct._input_grad makes them
    groups, c_g = self.groups, self.src.shape[0] // self.groups
    hw = (hp + dh * (kh - 1), wp + dw * (kw - 1))
    flipped = w.reshape(groups, c_out // groups, c_g, -1)[..., ::-1]
    w_t = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3).reshape(groups * c_g,
                                                                     c_out // groups, -1))
    block, room = self._block(hw[0] * hw[1]), dh * (kh - 1) * hw[1] + dw * (kw - 1)
    rows_t = np.empty((parts, c_out, block * hw[0] * hw[1] + room), dtype)
    sums_t = np.empty((parts, len(self.src) // self.x_shape[1], block * hw[0] * hw[1]), dtype)
    grad_x = np.empty(self.x_shape, dtype)
    direct_backward(self.src, g, w_t, kw, plane, wp, dh, dw, bounds_of(self.parts), rows_w,
                    dtype.type(0), grad_w, hw[0] * hw[1], hw[1], *top_left(self.pads),
                    *self.stride, rows_t, sums_t, grad_x, weights, inputs)
    dw2 = None
    if weights:                         # the parts' sums in part order, as the engine
        total = grad_w[0]
        for k in range(1, parts):
            total = total + grad_w[k]
        grad = total.reshape(c_out, -1, *self.stride, *self.kernel)
        dw2 = grad[(slice(None), slice(None)) + self.taps_at].astype(dtype).reshape(w2.shape)
    return dw2, (grad_x if inputs else None)


# -- Pointwise: a product per image, a part per prange iteration ------------------------

@njit(cache=True, nogil=True, parallel=True)
def pointwise_forward(w, x, bias, bounds, out):
    for p in prange(bounds.shape[0]):
        for n in range(bounds[p, 0], bounds[p, 1]):
            np.dot(w, x[n], out[n])
            for o in range(out.shape[1]):
                out[n, o] += bias[o]


@njit(cache=True, nogil=True, parallel=True)
def pointwise_backward(w_t, x, g, bounds, dx, grad_w, do_x, do_w):
    for p in prange(bounds.shape[0]):
        for n in range(bounds[p, 0], bounds[p, 1]):
            if do_x:
                np.dot(w_t, g[n], dx[n])
            if do_w:
                grad_w[p] += np.dot(g[n], x[n].T)


@patched(pointwise.Pointwise, "__init__")
def pointwise_init(self, x):
    ENGINE[pointwise.Pointwise]["__init__"](self, x)
    self.parts = threads.split(x.shape[0], min(x.shape[0], threads.num_threads()))


@patched(pointwise.Pointwise, "product")
def pointwise_product(self, w2, bias=None):
    w = np.ascontiguousarray(self._weights(w2), self.x.dtype)
    out = np.empty((self.x.shape[0], w.shape[0], self.x.shape[2]), self.x.dtype)
    bias = np.zeros(w.shape[0], self.x.dtype) if bias is None else bias.astype(self.x.dtype)
    pointwise_forward(w, self.x, bias, bounds_of(self.parts), out)
    return out


@patched(pointwise.Pointwise, "backward")
def pointwise_grads(self, w2, g, weights=True, inputs=True):
    w = self._weights(w2).astype(self.x.dtype, copy=False)
    n, c, _ = self.x.shape
    dx = np.empty_like(self.x)
    grad_w = np.zeros((len(self.parts), w.shape[0], c), self.x.dtype)
    pointwise_backward(np.ascontiguousarray(w.T), self.x, np.ascontiguousarray(g),
                       bounds_of(self.parts), dx, grad_w, inputs, weights)
    total = grad_w[0]
    for k in range(1, len(self.parts)):
        total = total + grad_w[k]
    return (total[None] if weights else None), \
        (dx.reshape((n, c) + self.out_hw) if inputs else None)


# -- Winograd: a chunk's transforms and products per prange iteration -------------------
# (the transformed input tiles are made again in backward, not kept)

@njit(cache=True, nogil=True, parallel=True)
def winograd_forward(x, top, left, bt, at, m, th, tw, ph, pw, run_in, run_out, u_t, bias,
                     starts, stops, out):
    area, c, c_out = u_t.shape
    for k in prange(starts.shape[0]):
        n0, n1 = starts[k], stops[k]
        padded = np.zeros((n1 - n0, ph, pw, c), x.dtype)
        winograd_cpu.to_padded_nhwc(x[n0:n1], top, left, padded)
        v = np.empty((area, (n1 - n0) * th * tw, c), x.dtype)
        winograd_cpu.input_tiles(padded, bt, m, th, tw, run_in, v)
        p = np.empty((area, v.shape[1], c_out), x.dtype)
        for a in range(area):
            np.dot(v[a], u_t[a], p[a])
        winograd_cpu.output_tiles(p, at, m, bias, run_out, out[n0:n1])


@njit(cache=True, nogil=True, parallel=True)
def winograd_backward(x, top, left, bt, at, m, th, tw, ph, pw, run_in, run_g, u, grad,
                      starts, stops, du, dx, do_w, do_x):
    area, c_out, c = u.shape
    for k in prange(starts.shape[0]):
        n0, n1 = starts[k], stops[k]
        dp = np.empty((area, (n1 - n0) * th * tw, c_out), x.dtype)
        winograd_cpu.grad_tiles(grad[n0:n1], at, m, run_g, dp)
        if do_w:
            padded = np.zeros((n1 - n0, ph, pw, c), x.dtype)
            winograd_cpu.to_padded_nhwc(x[n0:n1], top, left, padded)
            v = np.empty((area, dp.shape[1], c), x.dtype)
            winograd_cpu.input_tiles(padded, bt, m, th, tw, run_in, v)
            for a in range(area):
                np.dot(dp[a].T, v[a], du[k, a])
        if do_x:
            dv = np.empty((area, dp.shape[1], c), x.dtype)
            for a in range(area):
                np.dot(dp[a], u[a], dv[a])
            padded = np.zeros((n1 - n0, ph, pw, c), x.dtype)
            winograd_cpu.input_grad_tiles(dv, bt, m, th, tw, run_in, padded)
            winograd_cpu.from_padded_nhwc(padded, top, left, dx[n0:n1])


def chunk_bounds(self):
    return (np.array([c.start for c in self.chunks], np.int64),
            np.array([c.stop for c in self.chunks], np.int64))


@patched(winograd.Winograd, "product")
def winograd_product(self, w2, bias=None):
    u_t = np.ascontiguousarray(self._weights(w2).transpose(0, 2, 1))
    c_out = u_t.shape[2]
    bias = np.zeros(c_out, self.x.dtype) if bias is None else bias.astype(self.x.dtype)
    out = np.empty((self.x.shape[0], c_out) + self.out_hw, dtype=self.x.dtype)
    winograd_forward(self.x, *self.corner, self.BT, self.AT, self.m, *self.tiles,
                     *self.padded_hw, self._tiles_a_run(self.x.shape[1]),
                     self._tiles_a_run(c_out), u_t, bias, *chunk_bounds(self), out)
    return out.reshape(out.shape[0], c_out, -1)


@patched(winograd.Winograd, "backward")
def winograd_grads(self, w2, grad, weights=True, inputs=True):
    u = np.ascontiguousarray(self._weights(w2))
    grad = np.ascontiguousarray(grad).reshape(grad.shape[:2] + self.out_hw)
    dx = np.empty(self.x.shape, dtype=self.x.dtype)
    du = np.empty((len(self.chunks),) + u.shape, self.x.dtype)
    winograd_backward(self.x, *self.corner, self.BT, self.AT, self.m, *self.tiles,
                      *self.padded_hw, self._tiles_a_run(self.x.shape[1]),
                      self._tiles_a_run(u.shape[1]), u, grad, *chunk_bounds(self), du, dx,
                      weights, inputs)
    if not weights:
        return None, dx
    total = du[0]
    for k in range(1, len(self.chunks)):                # in chunk order, as the engine
        total = total + du[k]
    dw = total.reshape(self.area, -1).T @ self.GG
    return dw.reshape(1, u.shape[1], -1), (dx if inputs else None)


# -- the rest: Dense's products in the compiled loops, pooling and Adam on one thread ---

@njit(cache=True, nogil=True, parallel=True)
def matmul_rows(a, b, bounds, out):
    for p in prange(bounds.shape[0]):
        np.dot(a[bounds[p, 0]:bounds[p, 1]], b, out[bounds[p, 0]:bounds[p, 1]])


ENGINE_MATMUL, ENGINE_ON_THREADS = threads.matmul, cpu.on_threads


def matmul(a, b):
    """``threads.matmul``: the rows of ``a`` shared between the OpenMP threads."""
    if not (ON[0] and ALL[0]):
        return ENGINE_MATMUL(a, b)
    a = np.ascontiguousarray(a)
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    matmul_rows(a, b, bounds_of(threads.parts(a.shape[0], size=a.size + out.size)), out)
    return out


def on_threads(kernel_call, n, size):
    """``cpu.on_threads``: the whole batch on the calling thread (no chunk threads beside
    the OpenMP workers)."""
    if not (ON[0] and ALL[0]):
        return ENGINE_ON_THREADS(kernel_call, n, size)
    kernel_call(slice(0, n))


threads.matmul, cpu.on_threads = matmul, on_threads


# -- the comparison ---------------------------------------------------------------------

def check_same_bits():
    """The patched convolutions against the engine's, on small random problems."""
    rng = np.random.default_rng(0)

    def data(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    cases = [(direct.Direct, (data(9, 6, 11, 11), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 6),
              data(6, 1, 9)),
             (direct.Direct, (data(9, 1, 12, 12), (5, 5), (1, 1), ((2, 2), (2, 2))),
              data(1, 8, 25)),
             (pointwise.Pointwise, (data(9, 6, 7, 7),), data(1, 10, 6)),
             (winograd.Winograd, (data(9, 6, 14, 14), (5, 5), ((0, 0), (0, 0)), 16),
              data(1, 16, 150))]
    for cls, args, w2 in cases:
        results = []
        for on in (False, True):
            ON[0] = on
            conv = cls(*args)
            y = conv.product(w2)
            g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
            results.append((y,) + tuple(conv.backward(w2, g)))
        ON[0] = False
        pairs = list(zip(*results))
        if not all(np.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in pairs):
            sys.exit(f"omp_experiment.py: the patched {cls.__name__} differs from the engine's")
        same = all(np.array_equal(a, b) for a, b in pairs)
        print(f"# {cls.__name__} {args[0].shape}: as the engine's, "
              + ("the same bits" if same else "equal to float32 rounding"))


class Mode:
    """A minicnn step with the patched convolutions on (``on``) or off."""

    def __init__(self, step, on):
        self.engine, self.on = step, on

    def step(self):
        ON[0] = self.on
        self.engine.step()

    def sync(self):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["lenet5", "mobilenet_mnist"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--all", action="store_true", help="patch Dense, pooling and Adam too")
    p.add_argument("--check", action="store_true",
                   help="only check the patched convolutions' results, time nothing")
    args = p.parse_args()
    ALL[0] = args.all
    if args.check:
        return check_same_bits()
    import report
    from engines import MinicnnStep, TorchStep, torch
    from minicnn.cli.allocator import keep_freed_memory
    threadpool_limits(1, user_api="blas")   # BLAS on one thread in each (as in the engine)
    torch.set_num_threads(threads.num_threads())
    print(f"# C allocator keeps freed memory: {keep_freed_memory()}; threads: "
          f"{threads.num_threads()}; load average before: {os.getloadavg()[0]:.2f}; patched: "
          + ("the convolutions, Dense, pooling, Adam" if args.all else "the convolutions"))
    check_same_bits()
    print("| model | batch | minicnn ms | patched ms | PyTorch ms | minicnn/PyTorch | "
          "patched/PyTorch |\n|---|---|---|---|---|---|---|")
    for name in args.models:
        for batch in args.batch_sizes:
            ours = MinicnnStep(name, batch, "cpu")
            engines = [Mode(ours, False), Mode(ours, True), TorchStep(name, batch, "cpu")]
            for engine in engines * 2:                   # compiled, caches and pools warm
                engine.step()
            (pool, _), (omp, _), (theirs, _) = report.time_blocks(engines, args.blocks, 3,
                                                                  0.25, 1)
            print(f"| {name} | {batch} | {1e3 * pool:.2f} | {1e3 * omp:.2f} | "
                  f"{1e3 * theirs:.2f} | {theirs / pool:.2f} | {theirs / omp:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
