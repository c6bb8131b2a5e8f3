"""One-pass loops for the CPU: ReLU's forward and backward, Adam's update.

NumPy makes several passes over memory for each of these (a temporary array per
operation); here each is one pass of a compiled loop over the flat numbers, the same
arithmetic as ``textbook.py``'s formulas (which tests hold them to). A part of the
numbers runs on each thread (``parallel.py``); the loops are memory-bound, so the
second thread gains less than 2x. ``cache=True``, ``nogil=True``, as ``cpu.py``.
"""
import numpy as np
from numba import njit, prange

from .checks import expect_shape
from .parallel import parts_loop
from .threads import part_bounds


# -- Adam -------------------------------------------------------------------------

# NumPy's error model: x / 0 gives inf or NaN, as the formula does in NumPy, instead of
# Python's ZeroDivisionError; its check on every division kept the loop from being
# vectorized (benchmarks/README.md, "The eighth session").
@njit(cache=True, nogil=True, error_model="numpy")
def _adam_kernel(w, g, m, v, step_size, b1, b2, eps, correction2, one_minus_b1, one_minus_b2):
    for i in range(w.size):              # one pass: each number read and written once
        m[i] = b1 * m[i] + one_minus_b1 * g[i]
        v[i] = b2 * v[i] + one_minus_b2 * g[i] * g[i]
        w[i] -= step_size * m[i] / (np.sqrt(v[i] / correction2) + eps)


def adam_update(w, g, m, v, step_size, b1, b2, eps, correction2):
    """Adam's update in place, fused (``textbook.adam_update`` is the formula);
    the scalars in the arrays' dtype, so float32 stays float32 as in NumPy."""
    for name, a in (("g", g), ("m", m), ("v", v)):      # the loop runs over w.size
        expect_shape("adam_update", name, a, w.shape)
    if not (w.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        from .textbook import adam_update as formula  # a strided view: no flat copy
        return formula(w, g, m, v, step_size, b1, b2, eps, correction2)
    flat = [a.reshape(-1) for a in (w, np.ascontiguousarray(g), m, v)]
    scalars = [w.dtype.type(s) for s in (step_size, b1, b2, eps, correction2, 1 - b1, 1 - b2)]
    _adam_parts(*flat, *scalars, part_bounds(w.size, w.size))


@parts_loop
def _adam_parts(w, g, m, v, step_size, b1, b2, eps, correction2, one_minus_b1, one_minus_b2,
                parts):
    for p in prange(parts.shape[0]):
        i = slice(parts[p, 0], parts[p, 1])
        _adam_kernel(w[i], g[i], m[i], v[i], step_size, b1, b2, eps, correction2,
                     one_minus_b1, one_minus_b2)


# -- ReLU ---------------------------------------------------------------------------
# one pass over the numbers for the output and the mask (NumPy makes two); ``x * 0`` where
# not active, as ``x * (x > 0)`` gives (-0.0 for negatives, NaN stays NaN).

@njit(cache=True, nogil=True)
def _relu_kernel(x, out, active):
    for i in range(x.size):
        active[i] = x[i] > 0
        out[i] = x[i] if active[i] else x[i] * 0


@njit(cache=True, nogil=True)
def _times_kernel(g, derivative, out):
    for i in range(g.size):              # a bool mask counts as 1 and 0, as in NumPy
        out[i] = g[i] * derivative[i]


def relu_forward(x):
    """``(y, active)`` as ``textbook.relu_forward``, in one pass."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out, active = np.empty_like(flat), np.empty(flat.shape, dtype=np.bool_)
    _relu_parts(flat, out, active, part_bounds(flat.size, flat.size))
    return out.reshape(x.shape), active.reshape(x.shape)


def relu_backward(grad_out, derivative):
    """``grad_out * derivative`` as ``textbook.relu_backward``, in one pass."""
    expect_shape("relu_backward", "derivative", derivative, grad_out.shape)
    flat = np.ascontiguousarray(grad_out).reshape(-1)
    out = np.empty_like(flat)
    _times_parts(flat, np.ascontiguousarray(derivative).reshape(-1), out,
                 part_bounds(flat.size, flat.size))
    return out.reshape(grad_out.shape)


@parts_loop
def _relu_parts(x, out, active, parts):
    for p in prange(parts.shape[0]):
        i = slice(parts[p, 0], parts[p, 1])
        _relu_kernel(x[i], out[i], active[i])


@parts_loop
def _times_parts(g, derivative, out, parts):
    for p in prange(parts.shape[0]):
        i = slice(parts[p, 0], parts[p, 1])
        _times_kernel(g[i], derivative[i], out[i])
