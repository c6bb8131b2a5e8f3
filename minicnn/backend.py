"""Choosing NumPy or CuPy from the arrays themselves.

Every function in minicnn starts with ``xp = get_array_module(x)`` and then
writes ``xp.zeros``, ``xp.matmul`` ... so one body of code runs on the CPU
(NumPy) and on the GPU (CuPy). There is no global switch: where the data
lives decides where the work happens.
"""
import ctypes

import numpy as np

try:  # CuPy is optional: the GPU extras install it.
    import cupy as _cupy
    _CUPY_ERROR = None
except Exception as err:  # ImportError, or a broken CUDA install
    _cupy, _CUPY_ERROR = None, err

DEVICES = ("cpu", "gpu")
# pyproject.toml's GPU extras: the CUDA major version of the driver -> (extra, CuPy wheel)
GPU_EXTRAS = {12: ("gpu", "cupy-cuda12x"), 13: ("gpu-cuda13", "cupy-cuda13x")}


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def cuda_driver_version():
    """``(major, minor)`` of the CUDA version the NVIDIA driver supports, or
    ``None`` without a driver (read from libcuda, which needs no CuPy)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value > 0:
            return version.value // 1000, (version.value % 1000) // 10
    return None


def gpu_install_hint():
    """What to install, chosen from the driver's CUDA version (``GPU_EXTRAS``)."""
    driver = cuda_driver_version()
    if driver is None:
        choices = "; ".join(f"CUDA {major}: pip install -e .[{extra}] ({wheel})"
                            for major, (extra, wheel) in GPU_EXTRAS.items())
        return f"no NVIDIA driver was found; with one, {choices}"
    major, minor = driver
    if major < min(GPU_EXTRAS):
        return (f"the NVIDIA driver supports CUDA {major}.{minor}, older than CuPy's wheels "
                f"need ({min(GPU_EXTRAS)}): update the NVIDIA driver")
    extra, wheel = GPU_EXTRAS[min(major, max(GPU_EXTRAS))]
    return f"pip install -e .[{extra}] (the {wheel} wheel, for the driver's CUDA {major}.{minor})"


def gpu_unavailable_reason():
    """Why the GPU cannot be used, or ``None`` when it can; names what to install."""
    if _cupy is None:
        if _CUPY_ERROR is None or (isinstance(_CUPY_ERROR, ModuleNotFoundError)
                                   and _CUPY_ERROR.name == "cupy"):
            return f"CuPy is not installed: {gpu_install_hint()}"
        return f"CuPy is installed but cannot be imported ({_CUPY_ERROR}): {gpu_install_hint()}"
    try:
        count = _cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # no driver, no device, or a wheel for a newer CUDA than the driver
        return f"CuPy is installed but no CUDA device is usable ({err}); {gpu_install_hint()}"
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
