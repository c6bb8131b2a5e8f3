"""Keeping freed memory for the next training step: the C allocator's thresholds (glibc).

A training step allocates its activations and gradients afresh (every layer returns new
arrays) and frees them when it ends. glibc's ``malloc`` serves a block above its mmap
threshold (128 KiB at first, raised as large blocks are freed) from fresh pages, and
gives the top of its heap back to the system past its trim threshold: so a step can pay
a page fault for every 4 KiB it touches first. Measured (issue 28, benchmarks/README.md):
fast_cnn at batch 64 on one thread, 1,435 page faults and 2.8-4 ms of system time a
step, against 8.2 ms for the step itself without them.

``keep_freed_memory()`` raises both thresholds (mmap: 32 MiB, the most glibc allows;
trim: 512 MiB), so the next step reuses the memory the last one freed: the process keeps
its peak working set instead of handing it back between steps. The ``minicnn`` command
calls it when it starts (a program decides about its own process; the library never
changes it); a training script of one's own may call it too. It does nothing off Linux,
where the C library has no ``mallopt``, or when ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` is set (the user chose).
"""
import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # glibc's mallopt parameters
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory(mmap_threshold=32 * 2 ** 20, trim_threshold=512 * 2 ** 20):
    """Raise the C allocator's mmap and trim thresholds (see the module docstring);
    ``True`` if both were set."""
    if not sys.platform.startswith("linux") or any(v in os.environ for v in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt          # the process's C library
    except (OSError, AttributeError):                # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and \
        bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
