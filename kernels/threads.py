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

Dense layers share their matrix products the same way (``matmul``: the rows of
the left matrix split between the threads). So on the CPU minicnn calls BLAS
with one thread only, everywhere; the cores are used by its own threads.

The thread count is the first of ``ENVIRONMENT`` that is set (so ``OMP_NUM_THREADS=1``
keeps minicnn on one core too), at most the cores this process may run on (more threads
than cores only take turns, each with its chunk's buffers), else those cores;
``set_num_threads(n)`` changes it (taken as given: tests run more threads than cores).
An empty value counts as unset, as for Python's own variables. ``MINICNN_NUM_THREADS`` is
minicnn's own: a value that is not a whole number >= 1 is refused (``ValueError``, which
the command line prints in one line). The others are other libraries' settings too,
which skip a value they cannot use: minicnn skips it as well, with a one-line note, and
removes an unusable ``NUMBA_NUM_THREADS`` before Numba is imported (Numba fails on 0 or
less and warns in nine lines on a non-number; minicnn runs no Numba threads).
Results are put together in chunk order (partial sums are added in the same
order whichever thread made them), so a seeded run is bit-reproducible for a
given thread count.
"""
import os
import queue
import sys
import threading
from contextlib import nullcontext

import numpy as np

# The first one set wins. OPENBLAS_NUM_THREADS before OMP_NUM_THREADS, as OpenBLAS itself
# reads them: minicnn's threads take the place of BLAS's own (BLAS runs on one thread in
# each), so the setting of BLAS's threads in particular wins over OpenMP's general one.
ENVIRONMENT = ("MINICNN_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
               "NUMBA_NUM_THREADS")

_threads = None          # the count in use (None: not read from the environment yet)
_pool = None             # _Helpers: _threads - 1 threads, started on first use
_blas = None             # threadpoolctl's BLAS controllers, found on first use
_NAME = "minicnn-chunks"


def default_threads():
    """The thread count the environment asks for (see the module docstring)."""
    cores = usable_cores()
    for name in ENVIRONMENT:
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        count = thread_count(value, name)
        if count is None and name == "MINICNN_NUM_THREADS":
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r} (unset it "
                             f"to use the {cores} cores this process may run on)")
        if count is None:
            note(f"{name}={value!r} ignored: not a whole number >= 1")
        elif count > cores:
            note(f"{name}={count} capped to the {cores} cores this process may run on")
            return cores
        else:
            return count
    return cores


def thread_count(value, name):
    """The whole number >= 1 in ``value`` (OpenMP's ``OMP_NUM_THREADS`` may list one per
    nesting level, ``"4,2"``: the first), else ``None``."""
    if name == "OMP_NUM_THREADS":
        value = value.split(",")[0].strip()
    whole = value.isascii() and value.isdigit()          # ("\u00b2".isdigit() is True)
    return int(value) if whole and int(value) >= 1 else None


def usable_cores():
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def drop_unusable_numba_setting():
    """Before Numba is imported: remove an empty or unusable ``NUMBA_NUM_THREADS`` from the
    environment (Numba reads it once, at import, and fails on 0 or less, or warns in nine
    lines), with a one-line note for an unusable one."""
    value = os.environ.get("NUMBA_NUM_THREADS")
    if value is not None and thread_count(value.strip(), "NUMBA_NUM_THREADS") is None:
        del os.environ["NUMBA_NUM_THREADS"]
        if value.strip():
            note(f"NUMBA_NUM_THREADS={value!r} ignored: not a whole number >= 1 (removed "
                 f"from this process's environment, so that Numba can start)")


def note(message):
    """One line on stderr: a setting minicnn skips or adjusts."""
    print(f"minicnn: {message}", file=sys.stderr, flush=True)


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


def run(work, items, blas=True, fold=None):
    """``[work(item) for item in items]``, spread over ``num_threads()`` threads (the
    calling thread is one of them), results in the order of ``items``. ``blas``: the
    work calls BLAS, which is then held to one thread per call (also when it all runs
    on the calling thread: one item, or one thread). The helpers run under the caller's
    ``np.errstate`` (NumPy keeps it per thread): a floating-point error the caller
    ignores or raises is ignored or raised there too.

    ``fold``: return ``fold(...fold(fold(r0, r1), r2)..., rn)`` instead of the list, the
    results combined in the order of ``items`` as soon as every earlier one is in (the
    same bits whichever thread made which), so that only the results that finished
    ahead of an unfinished one are held at a time (a weight gradient's partial sums)."""
    global _pool
    items = list(items)
    workers = min(num_threads(), len(items))
    gather = _Gather(len(items), fold)
    if threading.current_thread().name.startswith(_NAME):     # nested: never wait on itself
        for k, item in enumerate(items):
            gather.put(k, work(item))
        return gather.result()
    if workers < 2:
        with one_blas_thread() if blas else nullcontext():   # the same BLAS either way
            for k, item in enumerate(items):
                gather.put(k, work(item))
        return gather.result()
    if _pool is None:
        _pool = _Helpers(num_threads() - 1)
    todo, lock = iter(range(len(items))), threading.Lock()

    def worker():                 # takes the next item until none is left
        while True:
            with lock:
                k = next(todo, None)
            if k is None:
                return
            gather.put(k, work(items[k]))
    errstate = np.geterr()

    def helper():
        with np.errstate(**errstate):
            worker()
    with one_blas_thread() if blas else nullcontext():
        finished = _pool.start(helper, workers - 1)
        try:
            worker()
        finally:                  # all done (or failed) before anything is returned
            errors = [finished.get() for _ in range(workers - 1)]
    for error in errors:
        if error is not None:
            raise error
    return gather.result()


class _Gather:
    """The results of ``run``, by item number: kept in a list, or with ``fold`` combined
    in item order as soon as each one's predecessors are in."""

    MISSING = object()       # a result not in yet (None may be a result)

    def __init__(self, count, fold):
        self.results, self.fold, self.lock = [self.MISSING] * count, fold, threading.Lock()
        self.total, self.next = None, 0          # the fold of results[:next]

    def put(self, k, result):
        with self.lock:
            self.results[k] = result
            if self.fold is None:
                return
            while self.next < len(self.results) and self.results[self.next] is not self.MISSING:
                result, self.results[self.next] = self.results[self.next], None
                self.total = result if self.next == 0 else self.fold(self.total, result)
                self.next += 1

    def result(self):
        return self.results if self.fold is None else self.total


def _forget_the_parents_helpers():
    """In a forked child: the parent's helper threads were not copied (only the thread
    that forked is), so waiting for them would hang; the child starts its own."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_the_parents_helpers)


class _Helpers:
    """``count`` daemon threads, each waiting on its own queue for a task: a lighter
    hand-off than ``concurrent.futures`` (benchmarks/README.md, "Behind the kernels'
    choices")."""

    def __init__(self, count):
        self.inboxes = [queue.SimpleQueue() for _ in range(count)]
        for k, inbox in enumerate(self.inboxes):
            threading.Thread(target=self._serve, args=(inbox,), name=f"{_NAME}-{k}",
                             daemon=True).start()

    @staticmethod
    def _serve(inbox):
        while (task := inbox.get()) is not None:
            task()
            del task           # or the last task's arrays stay alive until the next one

    def start(self, worker, count):
        """``worker()`` on ``count`` helpers; each puts its error (or None) in the queue
        returned, when done."""
        finished = queue.SimpleQueue()

        def task():
            try:
                worker()
            except BaseException as error:       # handed to the caller of run
                finished.put(error)
            else:
                finished.put(None)
        for inbox in self.inboxes[:count]:
            inbox.put(task)
        return finished

    def shutdown(self):
        for inbox in self.inboxes:
            inbox.put(None)


class _OneBlasThread:
    """BLAS held to one thread inside a ``with`` block, then put back as it was: a few
    ctypes calls, cheaper than threadpoolctl's ``limit()`` or a ``contextmanager``, and a
    step makes dozens of them (benchmarks/README.md, "Behind the kernels' choices")."""

    def __enter__(self):
        self.saved = [(lib, lib.get_num_threads()) for lib in _blas_libraries()]
        for lib, count in self.saved:
            if count != 1:
                lib.set_num_threads(1)

    def __exit__(self, *error):
        for lib, count in self.saved:
            if count != 1:
                lib.set_num_threads(count)


def _blas_libraries():
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController  # after NumPy loaded its BLAS
        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas


def one_blas_thread():
    """``with one_blas_thread():`` BLAS on one thread inside (``run`` uses it): for the
    few matrix products minicnn makes outside ``run``, whose BLAS workers would
    otherwise spin beside the chunk threads afterwards."""
    return _OneBlasThread()


def matmul(a, b):
    """``a @ b`` for 2-D NumPy arrays, the rows of ``a`` shared between the threads
    (each part one BLAS call of one thread, written into its rows of the result)."""
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))

    def rows(part):
        np.matmul(a[part], b, out=out[part])
    run(rows, parts(a.shape[0], size=a.size + out.size))
    return out


# Below this much work (numbers touched) a kernel stays on one thread: handing work to
# another thread costs about what such a kernel takes (benchmarks/README.md).
MIN_PARALLEL_SIZE = 2 ** 17


def split(n, count):
    """``range(n)`` as ``count`` slices of near-equal size, the larger ones first
    (10 in 4 -> 3, 3, 2, 2): the one way a batch is cut, for threads and for chunks."""
    sizes = [n // count + (k < n % count) for k in range(count)]
    starts = [sum(sizes[:k]) for k in range(count)]
    return [slice(start, start + size) for start, size in zip(starts, sizes)]


def parts(n, size=None, count=None):
    """``range(n)`` cut into ``count`` (default ``num_threads()``) slices, none empty:
    one per thread for kernels that loop over a batch; one slice when the whole work
    ``size`` is under ``MIN_PARALLEL_SIZE``."""
    count = count or num_threads()
    if size is not None and size < MIN_PARALLEL_SIZE:
        count = 1
    return split(n, max(1, min(n, count)))
