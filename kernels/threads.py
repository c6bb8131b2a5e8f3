"""Chunks of a batch on several CPU threads: how minicnn uses every core outside BLAS.

A convolution's chunks are independent: each one's im2col, matrix products and
col2im touch only its own images. So on the CPU ``Columns`` hands its chunks to
a small pool of threads, one chunk per thread at a time, and each core does a
whole chunk's work. Two things make that work in Python:

- the Numba kernels are compiled ``nogil=True``, and NumPy's matrix product
  releases the GIL too, so the threads really run at once;
- inside the pool BLAS is held to ONE thread per call (``threadpoolctl``, for
  the duration of the parallel section only, then restored): otherwise its own
  workers would fight the pool's for the same cores, and stay spinning after
  each call, which slows down whatever runs next (benchmarks/README.md).

Outside the pool (dense layers, one-chunk batches) BLAS keeps its own threads.

The thread count is ``MINICNN_NUM_THREADS`` if set, else the first of
``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``NUMBA_NUM_THREADS`` that is set
(so ``OMP_NUM_THREADS=1`` keeps minicnn on one core too), else the cores this
process may run on; ``set_num_threads(n)`` changes it.
Results are put together in chunk order (partial sums are added in the same
order whichever thread made them), so a seeded run is bit-reproducible for a
given thread count.
"""
import os
from concurrent.futures import ThreadPoolExecutor

ENVIRONMENT = ("MINICNN_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
               "NUMBA_NUM_THREADS")

_threads = None          # the count in use (None: not read from the environment yet)
_pool = None             # ThreadPoolExecutor of _threads workers, made on first use
_blas = None             # threadpoolctl's controller, made on first use


def default_threads():
    """The thread count the environment asks for (see the module docstring)."""
    for name in ENVIRONMENT:
        value = os.environ.get(name, "").strip()
        if value:
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
            return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def num_threads():
    """How many threads run a batch's chunks on the CPU."""
    global _threads
    if _threads is None:
        _threads = default_threads()
    return _threads


def set_num_threads(n):
    """Run chunks on ``n`` threads from now on (1: everything on the calling thread)."""
    global _threads, _pool
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"minicnn.kernels.threads.set_num_threads needs an int >= 1, got {n!r}")
    if n != _threads and _pool is not None:
        _pool.shutdown()
        _pool = None
    _threads = n


def run(work, items):
    """``[work(item) for item in items]``, spread over ``num_threads()`` threads,
    in the order of ``items``. One item, or one thread: on the calling thread."""
    global _pool, _blas
    items = list(items)
    if num_threads() == 1 or len(items) < 2:
        return [work(item) for item in items]
    if _pool is None:
        _pool = ThreadPoolExecutor(num_threads(), thread_name_prefix="minicnn")
    if _blas is None:
        from threadpoolctl import ThreadpoolController   # after NumPy loaded its BLAS
        _blas = ThreadpoolController()
    with _blas.limit(limits=1, user_api="blas"):
        return list(_pool.map(work, items))


def parts(n, count=None):
    """``range(n)`` cut into ``count`` (default ``num_threads()``) slices of
    near-equal size, none empty: one per thread for kernels that loop over a batch."""
    count = max(1, min(n, count or num_threads()))
    bounds = [n * k // count for k in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]
