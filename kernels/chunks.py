"""A batch in chunks of whole images: the fast engine's one plan for memory.

A convolution's intermediate arrays (im2col's columns, Winograd's tiles) hold
many numbers per image: hundreds of MB for a whole batch. So the fast engine
cuts the batch into chunks whose arrays stay under a bound (a few MiB on the
CPU, where a chunk that stays in cache is faster than one big buffer; 256 MiB
on the GPU, where big products win: benchmarks/README.md), and:

- on the CPU their count is a multiple of the threads (``workers``), so that each
  thread's part of the batch (``parallel.py``) is a run of whole chunks;
- ``run(work)`` does ``work(chunk)`` for every chunk, one after the other
  (``Columns``; on the GPU the GPU itself is parallel);
- ``total(work)`` adds the chunks' weight gradients (``work``'s results) in chunk
  order as they come in, so only one partial sum is held at a time;
- ``keep(chunk, build)`` remembers a chunk's arrays from forward for backward
  when the whole batch's stay under ``MAX_KEPT_BYTES`` (otherwise backward
  builds them again, chunk by chunk from the input ``x``); once every chunk's are
  kept, backward needs only ``x``'s shape (``x_shape``), so ``keep`` drops ``x``
  itself: its memory goes as soon as nothing else holds it, one layer's input less
  at a step's peak (``Winograd`` keeps its tiles the same way, in one array: ``kept``).

``Columns`` (columns.py) and ``Winograd`` (winograd.py) are ``Chunked``.
"""
import math
import operator

import numpy as np

from ..backend import device_of
from . import threads

# Bound on one chunk's columns, by device (see the module docstring).
MAX_COLS_BYTES = {"cpu": 8 * 2 ** 20, "gpu": 256 * 2 ** 20}
# Forward's arrays are kept for backward when the whole batch's stay under this bound: on
# the CPU chosen by speed and peak memory (the measurements: benchmarks/README.md, "The
# sixth session").
MAX_KEPT_BYTES = {"cpu": 8 * 2 ** 20, "gpu": 256 * 2 ** 20}


def batch_chunks(n_batch, bytes_per_example, max_bytes, workers=1):
    """Split ``range(n_batch)`` into as few slices as keep each chunk under
    ``max_bytes`` (at least one example each), their count rounded up to a multiple
    of ``workers`` (while there are examples enough) so every thread gets the same
    share; sizes differ by at most one (10 examples, 3 per chunk -> 3, 3, 2, 2)."""
    per_chunk = max(1, min(n_batch, max_bytes // max(1, bytes_per_example)))
    n_chunks = math.ceil(n_batch / per_chunk)
    return threads.split(n_batch, min(n_batch, math.ceil(n_chunks / workers) * workers))


class Chunked:
    """The chunks of a batch ``x``: ``bytes_per_image`` of work arrays per image,
    at most ``max_bytes`` a chunk (default ``MAX_COLS_BYTES`` of ``x``'s device), and
    ``kept_bytes_per_image`` to keep for backward (see the module docstring)."""

    bias_grad = None        # Columns does not sum g (fast.convolve_backward does); Winograd does
    biased = True           # product says: a bias-less layer's backward sums no g

    def __init__(self, x, bytes_per_image, max_bytes=None, kept_bytes_per_image=None):
        n, device = x.shape[0], device_of(x)
        self.on_cpu = device == "cpu"
        small = n * bytes_per_image // x.itemsize < threads.MIN_PARALLEL_SIZE
        self.workers = threads.num_threads() if self.on_cpu and not small else 1
        self.chunks = batch_chunks(n, bytes_per_image, max_bytes or MAX_COLS_BYTES[device],
                                   self.workers)
        kept = bytes_per_image if kept_bytes_per_image is None else kept_bytes_per_image
        self.kept = {} if n * kept <= MAX_KEPT_BYTES[device] else None

    def run(self, work, fold=None):
        """``[work(chunk) for chunk in self.chunks]``, one after the other; with ``fold``,
        the results combined in chunk order instead."""
        if fold is None:
            return [work(chunk) for chunk in self.chunks]
        total = work(self.chunks[0])
        for chunk in self.chunks[1:]:
            total = fold(total, work(chunk))
        return total

    # -- a parallel loop over every chunk (the CPU: parallel.py, columns_cpu.py) ----------

    def chunk_bounds(self):
        """``(parts, images)``: each part's first and last chunk (a run of whole chunks a
        thread), each chunk's first and last image."""
        count = min(len(self.chunks), self.workers)
        return (threads.bounds(threads.split(len(self.chunks), count)),
                threads.bounds(self.chunks))

    def kept_for_loop(self, size):
        """``(made, kept)``: where forward's loop puts every chunk's arrays. 0 and an empty
        array: not kept (the loop makes them in its scratch); 1 and a new array of
        ``size`` numbers: kept from this pass on (then ``keep_all``); 2 and the arrays an
        earlier pass kept."""
        if self.kept is None:
            return 0, np.empty(0, self.dtype)
        if isinstance(self.kept, np.ndarray):
            return 2, self.kept
        return 1, np.empty(size, self.dtype)

    def keep_all(self, kept):
        """Every chunk's arrays, made by forward's loop into ``kept``, are kept; backward
        needs only ``x``'s shape from now on, so ``x`` is let go."""
        self.kept, self.x = kept, None

    def kept_or_empty(self):
        """For backward's loop: the kept arrays, or an empty array (made again from ``x``)."""
        return self.kept if isinstance(self.kept, np.ndarray) else np.empty(0, self.dtype)

    def input_or_empty(self):
        """``x`` for a loop, or an empty array once it is let go (Numba needs an array)."""
        return self.x if self.x is not None else np.empty((0,) * 4, self.dtype)

    def total(self, work):
        """The sum of ``work(chunk)`` over the chunks, added in chunk order (same bits)."""
        return self.run(work, fold=operator.add)

    def keep(self, chunk, build):
        """``build(chunk)``, remembered for backward when the batch's arrays are kept;
        with the last chunk's, the input ``x`` is let go (the module docstring)."""
        if self.kept is None:
            return build(chunk)
        if chunk.start not in self.kept:
            self.kept[chunk.start] = build(chunk)
            if len(self.kept) == len(self.chunks):     # every build has ended
                self.x = None
        return self.kept[chunk.start]

