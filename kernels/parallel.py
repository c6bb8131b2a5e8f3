"""The CPU's cores: Numba's parallel loops, one part of the batch on each thread.

On the CPU the fast engine cuts a layer's batch into parts of whole images (one per
thread: ``threads.parts``) and runs them in ONE compiled ``prange`` loop (Numba,
``parallel=True``): each part calls the one-thread loops of ``direct_cpu.py`` (and
``direct_grad_cpu.py``), ``winograd_cpu.py``, ``cpu.py`` or ``norm_cpu.py`` (those
two and ``passes_cpu.py`` define their own ``parts_loop``s), or BLAS (``np.dot``, which
Numba reaches through SciPy), on its own images only. Numba's OpenMP workers wait
spinning for a while after a loop, so they take the next one without being woken, and
need no GIL (what a hand-off costs: benchmarks/README.md, "The fifth session").

Every loop is a ``parts_loop``, called as a function; its rules, in one place:

- each part writes its own images; a part's partial sums (a weight gradient) go into
  its own slot, and the caller adds the slots in part order: a given thread count gives
  the same bits, whichever thread ran which part;
- BLAS is held to one thread while a loop runs (``threads.one_blas_thread``): its own
  workers would fight OpenMP's for the same cores;
- Numba runs ``threads.num_threads()`` threads, at most its own cap ``NUMBA_NUM_THREADS``
  (read when Numba is imported); the parts stay one per minicnn thread either way;
- the parts' work arrays are NumPy's, allocated by the caller (so that a step's peak
  memory, as tracemalloc counts it, has them), a row of ``scratch`` a part, cut by
  ``view``; the loops themselves allocate buffers of a few KiB at most. A result not asked
  for (``weights=False``, ``inputs=False``) is passed as an empty array of its rank:
  Numba compiles for the arrays' types;
- one loop is launched at a time (a lock): Numba's fallback threading layer, where no
  OpenMP runtime is installed (``workqueue``), ends the process when two Python threads
  launch at once (the explorer serves from several);
- a forked child of a process that ran a parallel loop runs the loops' one-thread twins
  (compiled without ``parallel=True``): GNU OpenMP's runtime cannot run in a forked child,
  and Numba ends it at its first parallel loop.

Also here: the loops that are only BLAS products, for ``Pointwise`` and Dense layers.
"""
import contextlib
import functools
import os
import threading
import types

import numba
import numpy as np
import scipy.linalg  # noqa: F401  (np.dot in compiled code reaches BLAS through SciPy)
from numba import njit, prange

from . import direct_cpu, direct_grad_cpu, threads, winograd_cpu

_launch = threading.Lock()
_launched_in = None               # the process that ran the first parallel loop


def _new_lock_in_child():
    """In a forked child: a parent's thread may have held the lock, and is not here."""
    global _launch
    _launch = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def parts_loop(function=None, *, blas=False):
    """``@parts_loop`` (or ``@parts_loop(blas=True)`` for a loop that calls BLAS) on a
    function whose outer loop is ``prange``: a ``PartsLoop``."""
    if function is None:
        return lambda function: PartsLoop(function, blas)
    return PartsLoop(function, blas)


class PartsLoop:
    """``function`` compiled with ``parallel=True`` and as a one-thread twin, called as
    the function itself under the rules of the module docstring (BLAS held to one thread
    only around the loops that call it: each hold is a few ctypes calls). One part (small
    work) runs the twin on the calling thread: launching the parallel loop for it cost
    several times the twin's call (benchmarks/README.md, "The eighth session")."""

    def __init__(self, function, blas):
        self.blas = blas
        self.parallel = njit(cache=True, nogil=True, parallel=True)(function)
        twin = types.FunctionType(function.__code__, function.__globals__,
                                  function.__name__ + "_one_thread", function.__defaults__)
        twin.__qualname__ = function.__qualname__ + "_one_thread"   # its own cache file
        self.one_thread = njit(cache=True, nogil=True)(twin)
        names = function.__code__.co_varnames[:function.__code__.co_argcount]
        self.parts_at = names.index("parts" if "parts" in names else "chunks")  # (parts, 2)
        functools.update_wrapper(self, function)

    def __call__(self, *args):
        global _launched_in
        if not self.blas and len(args[self.parts_at]) == 1:
            return self.one_thread(*args)     # one part: no hand-off, so no launch to lock
        with _launch, threads.one_blas_thread() if self.blas else contextlib.nullcontext():
            if _launched_in not in (None, os.getpid()):        # a forked child
                return self.one_thread(*args)
            count = min(threads.num_threads(), numba.config.NUMBA_NUM_THREADS)
            if numba.get_num_threads() != count:      # Numba's count is per calling thread
                numba.set_num_threads(count)
            _launched_in = os.getpid()
            return self.parallel(*args)


@njit(cache=True, nogil=True)
def view(buffer, start, shape):
    """``buffer[start:start + size]`` seen as an array of ``shape`` (``size`` its numbers):
    a work array cut from a part's scratch."""
    size = 1
    for side in shape:
        size *= side
    return buffer[start:start + size].reshape(shape)


# -- BLAS products a part at a time ------------------------------------------------

@parts_loop(blas=True)
def matmul_rows(a, b, parts, out):
    """``out = a @ b``, the rows of each part one product."""
    for p in prange(parts.shape[0]):
        r0, r1 = parts[p, 0], parts[p, 1]
        np.dot(a[r0:r1], b, out[r0:r1])


@parts_loop(blas=True)
def matmul_inner(a, b, parts, scratch, sums):
    """``sums[p] = a[:, k0:k1] @ b[k0:k1]`` for each part ``(k0, k1)`` of the inner
    dimension, the columns of ``a`` first copied into the part's ``scratch`` row (BLAS
    takes contiguous arrays)."""
    for p in prange(parts.shape[0]):
        k0, k1 = parts[p, 0], parts[p, 1]
        columns = view(scratch[p], 0, (a.shape[0], k1 - k0))
        columns[:, :] = a[:, k0:k1]
        np.dot(columns, b[k0:k1], sums[p])


def matmul(a, b, out=None):
    """``a @ b`` for 2-D NumPy arrays, the rows of ``a`` shared between the threads (a
    transposed ``b``, as a Dense layer's ``W.T``, read where it lies: BLAS takes either
    order; a large ``b``, as the weights of a Dense layer's ``g @ W``, a part of its rows
    each); written into ``out`` if given (C-contiguous, of the result's shape and dtype,
    else the product is made apart and copied in)."""
    if out is None and a.shape[0] < b.shape[1] and b.flags.f_contiguous \
            and not b.flags.c_contiguous:
        # few rows and b a transposed matrix (a Dense layer's x @ W.T): as (b.T @ a.T).T,
        # b.T's rows shared, each thread reading its part of the weights, not all of them
        # (faster for lenet's dense layer: benchmarks/README.md, "The eighth session")
        return np.ascontiguousarray(matmul(b.T, a.T).T)
    a = np.ascontiguousarray(a)
    b = b if b.flags.c_contiguous or b.flags.f_contiguous else np.ascontiguousarray(b)
    shape = (a.shape[0], b.shape[1])
    if out is not None and not (out.shape == shape and out.dtype == a.dtype
                                and out.flags.c_contiguous):
        out[...] = matmul(a, b)
        return out
    large_b = out is None and b.flags.c_contiguous and b.size > 8 * a.shape[0] * b.shape[1]
    inner = threads.part_bounds(a.shape[1], a.size + b.size) if large_b else None
    if large_b and len(inner) > 1:
        # b far larger than the product (a Dense layer's g @ W at a small batch): each
        # thread reads its rows of b, not all of b, and the parts' products (one more
        # product-sized array each) are added in part order. Measured on lenet's dense
        # layer: 5% faster steps at batch 64, 2% slower at 256, where the product is 4x
        # larger (benchmarks/README.md, issue 28)
        width = int((inner[:, 1] - inner[:, 0]).max())
        sums = np.empty((len(inner),) + shape, dtype=a.dtype)
        matmul_inner(a, b, inner, np.empty((len(inner), a.shape[0] * width), a.dtype), sums)
        return threads.add_in_order(sums)
    out = np.empty(shape, dtype=a.dtype) if out is None else out
    matmul_rows(a, b, threads.part_bounds(a.shape[0], a.size + out.size), out)
    return out


@parts_loop(blas=True)
def pointwise_forward(w, x, bias, parts, out):
    """``out[n] = w @ x[n] + bias`` for ``x (N, C, L)``, ``w (C_out, C)``."""
    for p in prange(parts.shape[0]):
        for n in range(parts[p, 0], parts[p, 1]):
            np.dot(w, x[n], out[n])
            for o in range(out.shape[1]):
                out[n, o] += bias[o]          # while the image is still in cache


@parts_loop(blas=True)
def pointwise_backward(w_t, x, g, zero, parts, dx, grad_w, grad_b, inputs, weights):
    """``dx[n] = w_t @ g[n]``; ``grad_w[p] = sum_n g[n] @ x[n].T`` over part ``p``'s
    images, in image order, and ``grad_b[p]`` (float64) the sums of their ``g`` (the bias
    gradient, while each image is in the cache; ``zero``: 0 in ``g``'s dtype)."""
    for p in prange(parts.shape[0]):
        product = np.empty(grad_w.shape[1:], grad_w.dtype)
        for n in range(parts[p, 0], parts[p, 1]):
            if inputs:
                np.dot(w_t, g[n], dx[n])
            if weights:
                np.dot(g[n], x[n].T, product)
                grad_w[p] += product
                for o in range(grad_b.shape[1]):        # none without a bias
                    grad_b[p, o] += direct_grad_cpu.total(g[n, o], zero)


# -- direct_cpu.py's and direct_grad_cpu.py's loops a part at a time (direct.py) ------

@parts_loop
def direct_forward(x, top, left, sh, sw, hp, wp, rows, w, taps, bias, parts, block, sums, out):
    """``direct_cpu.forward`` for each part's images, ``rows[p]`` and ``sums[p]`` its
    scratch."""
    for p in prange(parts.shape[0]):
        direct_cpu.forward(x, top, left, sh, sw, hp, wp, rows[p], w, taps, bias, parts[p, 0],
                           parts[p, 1], block, sums[p], out)


@parts_loop
def direct_backward(x, top, left, sh, sw, hp, wp, g, kw, dh, dw, parts, block, rows_p, rows_g,
                    zero, grad_w, grad_b, weights, w_t, taps_t, counts, ph, pw, plane_t, wp_t,
                    block_t, rows_t, sums_t, grad_x, inputs, scratch):
    """For each part's images: ``direct_grad_cpu.input_grad`` into ``grad_x`` (``inputs``)
    and ``direct_grad_cpu.weight_grad`` into the part's ``grad_w[p]`` and ``grad_b[p]``
    (``weights``), one after the other, their rows cut from the part's ``scratch`` row
    (shapes: ``rows_t``, ``sums_t``; ``rows_p``, ``rows_g``: the phases', the spread g's)."""
    for p in prange(parts.shape[0]):
        n0, n1 = parts[p, 0], parts[p, 1]
        if inputs:
            rows = view(scratch[p], 0, rows_t)
            sums = view(scratch[p], rows_t[0] * rows_t[1], sums_t)
            direct_grad_cpu.input_grad(g, w_t, taps_t, counts, ph, pw, plane_t, wp_t, top,
                                       left, sh, sw, n0, n1, block_t, rows, sums, grad_x)
        if weights:
            phases = view(scratch[p], 0, rows_p)
            spread = view(scratch[p], rows_p[0] * rows_p[1], rows_g)
            direct_grad_cpu.weight_grad(x, top, left, sh, sw, hp, wp, g, kw, dh, dw, n0, n1,
                                        block, phases, spread, zero, grad_w[p], grad_b[p])


# -- winograd_cpu.py's transforms and the products, a part's chunks at a time -----------
# A part is a run of chunks (``chunks``: each part's first and last chunk; ``images``:
# each chunk's first and last image); kept for backward, a chunk's tiles ``V (A*A, T, C)``
# lie in ``kept``, all the chunks' one after the other. Each part's work arrays are one
# chunk's at a time, cut from its row of ``scratch`` (``view``).

@parts_loop(blas=True)
def winograd_forward(x, top, left, bt, at, m, th, tw, ph, pw, run_in, run_out, u_t, bias,
                     chunks, images, made, kept, scratch, out):
    """``out`` (N, C_out, H_out, W_out): each chunk's tiles, products and output tiles;
    the tiles made in the scratch (``made`` 0), made into ``kept`` (1) or read there (2)."""
    area, c, c_out = u_t.shape
    for p in prange(chunks.shape[0]):
        for k in range(chunks[p, 0], chunks[p, 1]):
            n0, n1 = images[k, 0], images[k, 1]
            tiles = (n1 - n0) * th * tw
            if made:
                v, start = view(kept, area * c * n0 * th * tw, (area, tiles, c)), 0
            else:
                v, start = view(scratch[p], 0, (area, tiles, c)), area * tiles * c
            if made < 2:
                padded = view(scratch[p], start, (n1 - n0, ph, pw, c))
                _winograd_tiles(x[n0:n1], top, left, bt, m, th, tw, run_in, padded, v)
            prod = view(scratch[p], start, (area, tiles, c_out))     # padded is done
            for a in range(area):
                np.dot(v[a], u_t[a], prod[a])
            winograd_cpu.output_tiles(prod, at, m, bias, run_out, out[n0:n1])


@njit(cache=True, nogil=True)
def _winograd_tiles(x, top, left, bt, m, th, tw, run, padded, v):
    """``V`` of the images ``x``, through their channels-last zero-padded copy."""
    padded[:] = 0
    winograd_cpu.to_padded_nhwc(x, top, left, padded)
    winograd_cpu.input_tiles(padded, bt, m, th, tw, run, v)


@parts_loop(blas=True)
def winograd_backward(x, top, left, bt, at, m, th, tw, ph, pw, run_in, run_g, u, grad, zero,
                      chunks, images, kept, du, grad_b, weights, dx, inputs, scratch):
    """Each chunk's ``dP`` from ``grad``; ``du[p]``: the sum of part ``p``'s chunks'
    ``dP[xi].T @ V[xi]`` in chunk order and ``grad_b[p]`` (float64) the sums of their
    ``grad``, the bias gradient (``weights``; ``zero``: 0 in ``grad``'s dtype); ``dx``
    from ``dP[xi] @ U[xi]`` (``inputs``). ``kept``: the forward's tiles, or empty: then
    made again from ``x``."""
    area, c_out, c = u.shape
    for p in prange(chunks.shape[0]):
        for k in range(chunks[p, 0], chunks[p, 1]):
            n0, n1 = images[k, 0], images[k, 1]
            tiles = (n1 - n0) * th * tw
            dp = view(scratch[p], 0, (area, tiles, c_out))
            winograd_cpu.grad_tiles(grad[n0:n1], at, m, run_g, dp)
            if weights:                              # the chunk's grad is in the cache
                for n in range(n0, n1):
                    for o in range(grad_b.shape[1]):    # none without a bias
                        grad_b[p, o] += direct_grad_cpu.total(grad[n, o].reshape(-1), zero)
            start = area * tiles * c_out             # then V or dV, then padded planes
            after = start + area * tiles * c
            padded = view(scratch[p], after, (n1 - n0, ph, pw, c))
            if weights:
                if kept.size:
                    v = view(kept, area * c * n0 * th * tw, (area, tiles, c))
                else:
                    v = view(scratch[p], start, (area, tiles, c))
                    _winograd_tiles(x[n0:n1], top, left, bt, m, th, tw, run_in, padded, v)
                first = k == chunks[p, 0]
                chunk_du = du[p] if first else view(scratch[p], after, (area, c_out, c))
                for a in range(area):
                    np.dot(dp[a].T, v[a], chunk_du[a])
                if not first:
                    du[p] += chunk_du
            if inputs:
                dv = view(scratch[p], start, (area, tiles, c))
                for a in range(area):
                    np.dot(dp[a], u[a], dv[a])
                padded[:] = 0
                winograd_cpu.input_grad_tiles(dv, bt, m, th, tw, run_in, padded)
                winograd_cpu.from_padded_nhwc(padded, top, left, dx[n0:n1])
