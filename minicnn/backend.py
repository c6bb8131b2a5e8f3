"""Choosing NumPy or CuPy from the arrays themselves.

Every function in minicnn starts with ``xp = get_array_module(x)`` and then
writes ``xp.zeros``, ``xp.matmul`` ... so one body of code runs on the CPU
(NumPy) and on the GPU (CuPy). There is no global switch: where the data
lives decides where the work happens.
"""
import numpy as np

try:  # CuPy is optional: the GPU extra installs it.
    import cupy as _cupy
except Exception:  # ImportError, or a broken CUDA install
    _cupy = None

DEVICES = ("cpu", "gpu")


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def gpu_unavailable_reason():
    """Why the GPU cannot be used, or ``None`` when it can."""
    if _cupy is None:
        return "CuPy is not installed (pip install -e .[gpu])"
    try:
        count = _cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # no driver, no device
        return f"CuPy is installed but no CUDA device is usable ({err})"
    if count == 0:
        return "CuPy is installed but no CUDA device was found"
    return None


def gpu_available():
    return gpu_unavailable_reason() is None


def check_device(device):
    """Validate a device name; raise a clear error if 'gpu' cannot be used."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "gpu":
        reason = gpu_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"device 'gpu' requested but {reason}")
    return device


def device_of(x):
    """'gpu' for a CuPy array, 'cpu' otherwise."""
    return "gpu" if get_array_module(x) is not np else "cpu"


def to_device(x, device):
    """Move an array to 'cpu' (NumPy) or 'gpu' (CuPy); no copy if already there."""
    check_device(device)
    if device == "gpu":
        return _cupy.asarray(x)
    return as_numpy(x)


def as_numpy(x):
    """A NumPy array from a NumPy or CuPy array (or anything array-like)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy.asnumpy(x)
    return np.asarray(x)


def synchronize(x=None):
    """Wait for queued GPU work (for honest timings); a no-op on the CPU."""
    if _cupy is not None and (x is None or isinstance(x, _cupy.ndarray)):
        if gpu_available():
            _cupy.cuda.Device().synchronize()
