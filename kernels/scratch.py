"""Work arrays whose rows start on cache lines (64 bytes), for the loops that add into
them over and over (``direct_cpu``'s sums).

NumPy places an array where the C allocator put its block: 16-byte aligned, so at any
of four offsets within a cache line, and a process keeps the offset it first drew (the
allocator hands each step the blocks the last one freed). Where a loop loads and
stores the same rows pass after pass (``add_taps4``: four sums a pass, for every four
taps), a row that straddles cache lines splits each 64-byte vector load and store in
two: the zoo's first convolutions' tap passes took 0.9-2.0x as long (mostly longer) with
their sums 4 to 48 bytes off a line as on one (benchmarks/README.md, issue 28, "The
twelfth session"). A loop that passes over memory once (ReLU's forward, its input or
output 4-32 bytes off) measured the same either way, so only such work rows are placed.
"""
import math

import numpy as np

LINE = 64                     # bytes


def line_up(count, dtype):
    """``count`` numbers of ``dtype``, rounded up to whole cache lines."""
    per_line = LINE // np.dtype(dtype).itemsize
    return -(-count // per_line) * per_line


def rows(shape, length, dtype):
    """An uninitialized ``shape + (line_up(length),)`` array, each row of ``length``
    numbers (and the rest of its last line) starting on a cache line."""
    dtype = np.dtype(dtype)
    width = line_up(length, dtype)
    size = math.prod(shape) * width * dtype.itemsize
    block = np.empty(size + LINE, np.uint8)
    start = -block.ctypes.data % LINE
    return block[start:start + size].view(dtype).reshape(tuple(shape) + (width,))
