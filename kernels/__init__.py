"""Hot-path kernels for convolution and pooling (installed as ``minicnn.kernels``).

Layers call the functions exported here; each one hands its arrays to the
fastest implementation for where they live:

=================  ===========================  ======================================
arrays             implementation               module
=================  ===========================  ======================================
NumPy              Numba-compiled loops         ``cpu.py``
CuPy               ``numba.cuda`` kernels       ``cuda.py`` (imported on first use)
either, fallback   strided slices of NumPy/CuPy ``vectorized.py``
=================  ===========================  ======================================

The fallback is used when Numba (or ``numba.cuda``) cannot be imported, or
when the environment variable ``MINICNN_KERNELS=vectorized`` is set before
import (benchmarks use it to compare; another value is ignored with a one-line
note). ``reference`` holds the plain-loop versions that tests hold every fast
path equal to.

All implementations share one layout: ``im2col(x)`` is
``(C*kH*kW, N*H_out*W_out)``, so a convolution is one matrix product
(``columns.Columns`` does it for ``Conv2D``, in chunks of the batch). On the
CPU, stride-1 3x3 and 5x5 convolutions of 16 channels or more run as Winograd
tiles instead (``winograd.py``, its loops in ``winograd_cpu.py``; fewer
multiplications); ``convolution`` picks one of the two for each batch.
Where an array lives is asked of ``minicnn.backend`` (``device_of``). On the
CPU the chunks of a batch run on several threads (``threads.py``).

Kernels import nothing from ``minicnn.layers``: they work on bare arrays.
"""
import math
import os
import sys
import warnings

from ..backend import device_of
from . import reference, threads, vectorized
from .geometry import (PADDING_MODES, avgpool_divisors, output_hw, output_size, pair,
                       windows_inside)

# Default bound on one im2col buffer, by device (see batch_chunks). On the CPU a
# chunk that stays in cache is faster than one big buffer (lenet batch 256, one
# thread: about 1.6x less CPU time than one 160 MB buffer; benchmarks/README.md);
# on the GPU big products win.
MAX_COLS_BYTES = {"cpu": 8 * 2 ** 20, "gpu": 256 * 2 ** 20}
# Forward's columns are kept for backward (not built twice) when the whole
# batch's stay under this bound. lenet: conv1's are kept at batch 64 (5 MB),
# not at 256 (20 MB: the step's peak memory would grow from 88 to 107 MiB).
MAX_KEPT_BYTES = {"cpu": 16 * 2 ** 20, "gpu": 256 * 2 ** 20}


def _vectorized_only():
    """Whether ``MINICNN_KERNELS=vectorized`` asks for the NumPy/CuPy fallback only."""
    value = os.environ.get("MINICNN_KERNELS", "").strip()
    if value not in ("", "vectorized"):
        threads.note(f"MINICNN_KERNELS={value!r} ignored: the one value it takes is "
                     f"'vectorized' (the NumPy fallback); the Numba kernels run")
    return value == "vectorized"


VECTORIZED_ONLY = _vectorized_only()
_cpu = None
if not VECTORIZED_ONLY:
    threads.drop_unusable_numba_setting()      # before Numba reads it
    try:
        from . import cpu as _cpu
    except ImportError as err:       # Numba missing or broken: NumPy still works
        warnings.warn(f"minicnn: Numba kernels unavailable ({err}); using vectorized NumPy")
_cuda = None                         # loaded on the first CuPy array


def _gpu_module():
    """``cuda.py``, or ``vectorized`` when numba.cuda cannot be imported."""
    global _cuda
    if _cuda is None:
        _cuda = vectorized
        if not VECTORIZED_ONLY:
            threads.drop_unusable_numba_setting()
            try:
                from . import cuda as _cuda
            except ImportError as err:
                warnings.warn(f"minicnn: numba.cuda kernels unavailable ({err}); "
                              "using vectorized CuPy")
    return _cuda


def backend_for(x):
    """The module whose kernels run on ``x``: ``cpu``, ``cuda`` or ``vectorized``."""
    if device_of(x) == "gpu":
        return _gpu_module()
    return _cpu if _cpu is not None else vectorized


IMPLEMENTATIONS = ("fast", "reference")


def implementation(impl, layer_name):
    """The kernels a layer's ``impl`` names: ``"fast"``, this package (each call
    dispatched by where its arrays live), or ``"reference"``, the plain loops."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"{layer_name} impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
    return reference if impl == "reference" else sys.modules[__name__]


def batch_chunks(n_batch, bytes_per_example, max_bytes, workers=1):
    """Split ``range(n_batch)`` into as few slices as keep each im2col buffer
    under ``max_bytes``, sizes differing by at most one (10 examples, 3 per
    chunk -> 3, 3, 2, 2); at least one example each. With ``workers`` threads
    the count is rounded up to a multiple of ``workers`` (while there are
    examples enough), so that every thread gets the same share."""
    per_chunk = max(1, min(n_batch, max_bytes // max(1, bytes_per_example)))
    n_chunks = math.ceil(n_batch / per_chunk)
    n_chunks = min(n_batch, math.ceil(n_chunks / workers) * workers)
    sizes = [n_batch // n_chunks + (k < n_batch % n_chunks) for k in range(n_chunks)]
    starts = [sum(sizes[:k]) for k in range(n_chunks)]
    return [slice(start, start + size) for start, size in zip(starts, sizes)]


def max_cols_bytes(x):
    """The default im2col bound for where ``x`` lives: ``MAX_COLS_BYTES[device]``."""
    return MAX_COLS_BYTES[device_of(x)]


def max_kept_bytes(x):
    """The bound on columns kept from forward for backward: ``MAX_KEPT_BYTES[device]``."""
    return MAX_KEPT_BYTES[device_of(x)]


# -- the functions layers call: same signatures in cpu, cuda and vectorized ------
# (pooling windows are not dilated in average pooling, as in PyTorch)

def im2col(x, kernel, stride, padding, dilation=(1, 1)):
    """``x (N, C, H, W)`` -> ``cols (C*kH*kW, N*H_out*W_out)`` (zero padding)."""
    return backend_for(x).im2col(x, kernel, stride, padding, dilation)


def col2im(cols, x_shape, kernel, stride, padding, dilation=(1, 1)):
    """Adjoint of ``im2col``: ``cols`` -> ``(N, C, H, W)``; overlaps add up."""
    return backend_for(cols).col2im(cols, x_shape, kernel, stride, padding, dilation)


def maxpool_forward(x, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """``(out, switches)``, both ``(N, C, H_out, W_out)``; see ``reference.maxpool_forward``."""
    return backend_for(x).maxpool_forward(x, kernel, stride, padding, dilation, ceil_mode)


def maxpool_backward(grad_out, switches, x_shape):
    return backend_for(grad_out).maxpool_backward(grad_out, switches, x_shape)


def maxunpool_forward(x, switches, out_hw):
    """``out[n, c, switch] = x``, zeros elsewhere (indexing: ``vectorized`` on every device)."""
    return vectorized.maxunpool_forward(x, switches, out_hw)


def maxunpool_backward(grad_out, switches):
    return vectorized.maxunpool_backward(grad_out, switches)


def avgpool_forward(x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                    divisor_override=None):
    return backend_for(x).avgpool_forward(x, kernel, stride, padding, ceil_mode,
                                          count_include_pad, divisor_override)


def avgpool_backward(grad_out, x_shape, kernel, stride, padding, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
    return backend_for(grad_out).avgpool_backward(grad_out, x_shape, kernel, stride, padding,
                                                  ceil_mode, count_include_pad,
                                                  divisor_override)


def matmul(a, b):
    """``a @ b`` for 2-D arrays; on the CPU shared between the chunk threads (``threads``)."""
    return threads.matmul(a, b) if device_of(a) == "cpu" else a @ b


def _cpu_or_formula(x):
    """``cpu`` for NumPy arrays when Numba is there, else ``vectorized`` (the formula)."""
    return _cpu if device_of(x) == "cpu" and _cpu is not None else vectorized


def relu_forward(x):
    """``(y, active)``: ``active = x > 0``, ``y = x * active`` (one pass on the CPU)."""
    return _cpu_or_formula(x).relu_forward(x)


def relu_backward(grad_out, derivative):
    """``grad_out * derivative`` (the mask, or LeakyReLU's slopes; one pass on the CPU)."""
    return _cpu_or_formula(grad_out).relu_backward(grad_out, derivative)


def adam_update(w, g, m, v, step_size, b1, b2, eps, correction2):
    """Adam's step on one parameter, in place; see ``vectorized.adam_update``
    (fused into one pass on the CPU; the GPU runs the formula)."""
    _cpu_or_formula(w).adam_update(w, g, m, v, step_size, b1, b2, eps, correction2)


from .columns import Columns, pad, pad_adjoint  # noqa: E402  (uses the functions above)
from . import winograd  # noqa: E402

# False: every convolution runs as im2col + matrix products (benchmarks compare the two)
USE_WINOGRAD = _cpu is not None


def convolution(x, kernel, stride, pads, dilation=(1, 1), groups=1, padding_mode="zeros",
                out_channels=1, max_bytes=None):
    """How ``Conv2D`` convolves one batch ``x``: ``winograd.Winograd`` where it suits
    (stride-1 3x3 and 5x5 convolutions of enough channels on the CPU), else
    ``Columns`` (im2col). Both have ``product(w2, bias)`` and ``backward(w2, g)``."""
    if USE_WINOGRAD and winograd.suits(x, kernel, stride, dilation, groups, padding_mode,
                                       out_channels):
        return winograd.Winograd(x, kernel, pads, out_channels, max_bytes)
    return Columns(x, kernel, stride, pads, dilation, groups, padding_mode, max_bytes)

__all__ = ["reference", "vectorized", "pair", "output_hw", "output_size", "avgpool_divisors",
           "windows_inside",
           "PADDING_MODES", "backend_for", "IMPLEMENTATIONS", "implementation", "batch_chunks",
           "max_cols_bytes", "MAX_COLS_BYTES", "max_kept_bytes", "MAX_KEPT_BYTES", "threads",
           "im2col", "col2im", "Columns", "convolution", "USE_WINOGRAD", "winograd", "pad",
           "pad_adjoint", "maxpool_forward", "maxpool_backward", "maxunpool_forward",
           "maxunpool_backward", "avgpool_forward", "avgpool_backward", "adam_update", "matmul",
           "relu_forward", "relu_backward"]
