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
# not active, as ``x * (x > 0)`` gives (-0.0 for negatives, NaN stays NaN). The mask is
# kept packed, eight numbers' bits to a byte: kept for backward, a byte per number was
# the largest thing mobilenet_mnist's step held after the phases (benchmarks/README.md,
# issue 28); the packed loops below take about the bool mask's time (measured there).

class PackedMask:
    """The mask ``x > 0`` of ``shape``, a bit per number: bit ``j`` of ``bits[i]`` is
    number ``8 i + j`` of the flat mask (``np.packbits``' ``bitorder="little"``).
    ``np.asarray(mask)`` unpacks it into the bool array."""

    def __init__(self, bits, shape):
        self.bits, self.shape = bits, tuple(shape)

    @property
    def nbytes(self):
        return self.bits.nbytes

    def __array__(self, dtype=None, copy=None):
        if copy is False:                   # NumPy's protocol: unpacking always copies
            raise ValueError("PackedMask: the bool mask is unpacked into a new array; "
                             "call np.asarray(mask) without copy=False")
        size = int(np.prod(self.shape))
        mask = np.unpackbits(self.bits, count=size, bitorder="little").view(np.bool_)
        return mask.reshape(self.shape) if dtype is None else \
            mask.reshape(self.shape).astype(dtype)


@njit(cache=True, nogil=True)
def _relu_kernel(x, out, bits):
    """``out = x * (x > 0)`` and the mask's bits, numbers ``x[8 i + j]``: the whole bytes
    in one loop, the outputs and the bits each in a loop of a constant count (which the
    compiler unrolls and vectorizes: one loop for both was 1.4x slower, a test for the
    last byte inside it more), then the last byte's tail."""
    whole = x.size // 8
    for i in range(whole):
        for j in range(8):
            v = x[8 * i + j]
            out[8 * i + j] = v if v > 0 else v * 0
        byte = np.uint8(0)
        for j in range(8):
            byte |= np.uint8(x[8 * i + j] > 0) << np.uint8(j)
        bits[i] = byte
    if whole < bits.size:
        byte = np.uint8(0)
        for j in range(x.size - 8 * whole):
            v = x[8 * whole + j]
            out[8 * whole + j] = v if v > 0 else v * 0
            byte |= np.uint8(v > 0) << np.uint8(j)
        bits[whole] = byte


@njit(cache=True, nogil=True)
def _masked_kernel(g, bits, out):
    """``out = g * mask``, the mask's bits unpacked on the way (``g * 0`` where off, as
    NumPy's ``g * False``): four bytes at a time as one 32-bit word, thirty-two numbers
    a pass, which the compiler vectorizes (a byte at a time was 2.3x slower), then the
    rest number by number."""
    words = g.size // 32
    for i in range(words):
        word = np.uint32(0)
        for b in range(4):                  # little-endian: byte b holds numbers 8 b to 8 b + 7
            word |= np.uint32(bits[4 * i + b]) << np.uint32(8 * b)
        for j in range(32):
            k = 32 * i + j
            out[k] = g[k] if (word >> np.uint32(j)) & np.uint32(1) else g[k] * 0
    for k in range(32 * words, g.size):
        out[k] = g[k] if (bits[k // 8] >> (k % 8)) & 1 else g[k] * 0


@njit(cache=True, nogil=True)
def _times_kernel(g, derivative, out):
    for i in range(g.size):              # a bool mask counts as 1 and 0, as in NumPy
        out[i] = g[i] * derivative[i]


def relu_forward(x):
    """``(y, active)`` as ``textbook.relu_forward``, in one pass; ``active`` packed (a
    ``PackedMask``)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out, bits = np.empty_like(flat), np.empty(-(-flat.size // 8), dtype=np.uint8)
    _relu_parts(flat, out, bits, part_bounds(bits.size, flat.size))
    return out.reshape(x.shape), PackedMask(bits, x.shape)


def relu_backward(grad_out, derivative):
    """``grad_out * derivative`` as ``textbook.relu_backward``, in one pass: the mask
    (packed or not), or LeakyReLU's slopes."""
    expect_shape("relu_backward", "derivative", derivative, grad_out.shape)
    flat = np.ascontiguousarray(grad_out).reshape(-1)
    out = np.empty_like(flat)
    if isinstance(derivative, PackedMask):
        bits = derivative.bits
        _masked_parts(flat, bits, out, part_bounds(bits.size, flat.size))
    else:
        _times_parts(flat, np.ascontiguousarray(derivative).reshape(-1), out,
                     part_bounds(flat.size, flat.size))
    return out.reshape(grad_out.shape)


# The packed loops' parts are runs of bytes: part ``p`` has numbers ``8 parts[p, 0]`` to
# ``8 parts[p, 1]`` (the last part: to the end).

@parts_loop
def _relu_parts(x, out, bits, parts):
    for p in prange(parts.shape[0]):
        i, k = slice(parts[p, 0], parts[p, 1]), slice(8 * parts[p, 0], 8 * parts[p, 1])
        _relu_kernel(x[k], out[k], bits[i])


@parts_loop
def _masked_parts(g, bits, out, parts):
    for p in prange(parts.shape[0]):
        i, k = slice(parts[p, 0], parts[p, 1]), slice(8 * parts[p, 0], 8 * parts[p, 1])
        _masked_kernel(g[k], bits[i], out[k])


@parts_loop
def _times_parts(g, derivative, out, parts):
    for p in prange(parts.shape[0]):
        i = slice(parts[p, 0], parts[p, 1])
        _times_kernel(g[i], derivative[i], out[i])
