"""How many threads minicnn runs on the CPU, and how a batch is cut into their parts.

On the CPU the fast engine's layers run their parts of a batch on Numba's threads, one
part per thread, in one compiled parallel loop each (``parallel.py``). This module says
how many (``num_threads``), how a batch is cut (``parts``, ``split``), and holds BLAS
to one thread where minicnn's own threads use the cores (``one_blas_thread``): BLAS's
workers would fight them for the same cores, and stay spinning after each call, which
slows down whatever runs next (benchmarks/README.md). It imports no Numba: ``fast.py``
checks ``NUMBA_NUM_THREADS`` here before Numba is imported.

The thread count is the first of ``ENVIRONMENT`` that is set (so ``OMP_NUM_THREADS=1``
keeps minicnn on one core too), at most the cores this process may run on (more threads
than cores only take turns), else those cores; ``set_num_threads(n)`` changes it (taken as
given: tests cut batches into more parts than cores; Numba then runs at most its own
``NUMBA_NUM_THREADS`` of them at once). An empty value counts as unset, as for Python's
own variables. ``MINICNN_NUM_THREADS`` is minicnn's own: a value that is not a whole
number >= 1 is refused (``ValueError``, which the command line prints in one line). The
others are other libraries' settings too, which skip a value they cannot use: minicnn
skips it as well, with a one-line note, and removes an unusable ``NUMBA_NUM_THREADS``
before Numba is imported (Numba fails on 0 or less and warns in nine lines on a
non-number). A part's partial sums are added in part order (``parallel.py``), so a
seeded run is bit-reproducible for a given thread count.
"""
import functools
import os
import sys

import numpy as np

# The first one set wins. OPENBLAS_NUM_THREADS before OMP_NUM_THREADS, as OpenBLAS itself
# reads them: minicnn's threads take the place of BLAS's own (BLAS runs on one thread in
# each), so the setting of BLAS's threads in particular wins over OpenMP's general one.
ENVIRONMENT = ("MINICNN_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
               "NUMBA_NUM_THREADS")

_threads = None          # the count in use (None: not read from the environment yet)
_blas = None             # threadpoolctl's BLAS controllers, found on first use


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
    """How many threads run a batch's parts on the CPU."""
    global _threads
    if _threads is None:
        _threads = default_threads()
    return _threads


def set_num_threads(n):
    """Cut batches into parts for ``n`` threads from now on (1: one part)."""
    global _threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"minicnn.kernels.threads.set_num_threads needs an int >= 1, got {n!r}")
    _threads = n


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
        import scipy.linalg  # noqa: F401  (its own BLAS: the one the compiled loops call)
        from threadpoolctl import ThreadpoolController  # after NumPy and SciPy loaded theirs
        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas


def one_blas_thread():
    """``with one_blas_thread():`` BLAS on one thread inside: around every parallel loop
    (``parallel.py``), and the few matrix products minicnn makes outside them, whose
    BLAS workers would otherwise spin beside minicnn's threads afterwards."""
    return _OneBlasThread()


# Below this much work (numbers touched) a kernel stays on one thread: handing work to
# another thread would cost about what such a kernel takes (the measurements that chose
# it: benchmarks/README.md, "The sixth session").
MIN_PARALLEL_SIZE = 2 ** 15


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


def bounds(slices):
    """``(k, 2)`` starts and stops of ``slices``: how the compiled loops take parts."""
    return np.array([[part.start, part.stop] for part in slices], np.int64)


def part_bounds(n, size):
    """``bounds(parts(n, size))``: a batch of ``n`` (``size`` numbers of work in all) as a
    parallel loop's parts, one per thread (one part for small work). The same array for
    the same cut (the loops only read it): every kernel call asks, dozens a step."""
    return _bounds_of_cut(n, size < MIN_PARALLEL_SIZE, num_threads())


@functools.lru_cache(maxsize=1024)
def _bounds_of_cut(n, small, count):
    return bounds(parts(n, count=1 if small else count))


def add_in_order(slots):
    """``((slots[0] + slots[1]) + slots[2]) + ...``: the parts' sums in part order (the
    same bits whichever thread made which part)."""
    total = slots[0]
    for slot in slots[1:]:
        total = total + slot
    return total
