"""The fast engine: what ``impl="fast"`` (the default) runs, the same sums as ``textbook``.

================  ==============================================================
convolution       ``Winograd`` tiles (winograd.py) for stride-1 3x3 and 5x5
                  convolutions of 4+ channels on the CPU; ``Direct`` loops
                  (direct.py) on the CPU where each group reads one input
                  channel (depthwise, or one input channel); ``Pointwise``
                  products (pointwise.py) for 1x1 ones on the CPU; otherwise
                  ``Columns`` (columns.py): im2col by compiled loops, one
                  product per chunk
batch norm        ``norm_loops(x)``: fused passes on the CPU (norm_cpu.py)
pooling, im2col   ``loops(x)``: Numba loops on the CPU (cpu.py), numba.cuda
                  kernels on the GPU (cuda.py) once their first launch worked
                  (``MINICNN_GPU_KERNELS=cupy``: CuPy's array operations);
                  textbook.py where neither loads
threads           a batch's parts on the CPU's threads, one compiled parallel
                  loop a layer (parallel.py, threads.py); BLAS on one thread
                  inside them
================  ==============================================================

``convolve`` and ``convolve_backward`` have the interface of every engine (see
``minicnn.kernels``). ``WINOGRAD`` and ``DIRECT`` (set through
``minicnn.use_impl(winograd=..., direct=...)``) turn the tiles and the direct loops
and products off: those convolutions then run as im2col.
"""
import os
import warnings

import numpy as np

from ..backend import device_of, gpu_install_hint
from . import direct, pointwise, textbook, threads, winograd
from .columns import Columns

threads.drop_unusable_numba_setting()        # before Numba reads it
try:
    from . import cpu
except ImportError as err:           # Numba missing or broken: the formulas still work
    cpu = None
    warnings.warn(f"minicnn: Numba kernels unavailable ({err}); the CPU runs the textbook "
                  "formulas in chunks")

WINOGRAD = cpu is not None
# MINICNN_GPU_KERNELS: "numba" (the default: numba.cuda kernels, cuda.py) or "cupy" (CuPy's
# array operations, textbook.py); the GPU only: the CPU keeps its Numba loops.
GPU_KERNELS = ("numba", "cupy")
_gpu = None                          # the GPU's loops, chosen with the first CuPy array
gpu_choice = None                    # what the GPU runs, and why (one line; minicnn doctor)
DIRECT = cpu is not None   # direct.py's loops, pointwise.py's products where they suit


def loops(x):
    """The module whose loops run on ``x``'s device: ``cpu``, ``cuda`` or ``textbook``."""
    if device_of(x) == "cpu":
        return cpu if cpu is not None else textbook
    return gpu_loops(x)


def gpu_loops(x):
    """``cuda`` once its first launch on ``x``'s device worked, else ``textbook``. Chosen
    once, at the first GPU call; a failure says in one warning what failed and what to do."""
    global _gpu, gpu_choice
    if _gpu is None:
        _gpu, gpu_choice, failed = _choose_gpu_loops(x)
        if failed:
            warnings.warn(f"minicnn: {gpu_choice}", stacklevel=3)
    return _gpu


def _choose_gpu_loops(x):
    """``(module, one line saying what the GPU runs, whether that is a failure)``."""
    choice = os.environ.get("MINICNN_GPU_KERNELS", "").strip().lower() or "numba"
    vectorized = "the GPU runs CuPy's array operations (kernels/textbook.py)"
    if choice == "cupy":
        return textbook, f"{vectorized}: MINICNN_GPU_KERNELS=cupy", False
    bad = "" if choice in GPU_KERNELS else \
        f" (MINICNN_GPU_KERNELS={choice!r} is not one of {', '.join(GPU_KERNELS)})"
    threads.drop_unusable_numba_setting()        # before numba.cuda reads it
    try:
        from . import cuda
        cuda.first_launch(x)
    except Exception as err:         # ImportError, NVVM or libdevice missing, PTX too new...
        what = " ".join(str(err).split())                  # one line
        return textbook, (f"numba.cuda kernels failed at their first launch "
                          f"({type(err).__name__}: {what[:240]}){bad}; {vectorized} instead. "
                          f"For the kernels install numba-cuda with its NVVM, as the GPU "
                          f"extra does ({gpu_install_hint()}); MINICNN_GPU_KERNELS=cupy "
                          f"chooses the array operations without this warning"), True
    return cuda, f"the GPU runs the numba.cuda kernels (kernels/cuda.py){bad}", bool(bad)


def plan(x, kernel, stride, pads, dilation=(1, 1), groups=1, padding_mode="zeros",
         out_channels=1, max_bytes=None):
    """How one batch ``x`` is convolved: ``Winograd`` where ``winograd.suits`` says so
    (and ``WINOGRAD``), ``Pointwise`` or ``Direct`` where ``pointwise.suits`` or
    ``direct.suits`` does (and ``DIRECT``), else ``Columns``. All have ``product`` and
    ``backward``."""
    if WINOGRAD and winograd.suits(x, kernel, stride, dilation, groups, padding_mode,
                                   out_channels):
        return winograd.Winograd(x, kernel, pads, out_channels, max_bytes)
    if DIRECT and pointwise.suits(x, kernel, stride, pads, groups):
        return pointwise.Pointwise(x)
    if DIRECT and direct.suits(x, stride, groups):
        return direct.Direct(x, kernel, stride, pads, dilation, groups, padding_mode)
    return Columns(x, kernel, stride, pads, dilation, groups, padding_mode, loops(x), max_bytes)


def convolve(x, weight, bias, stride, padding, dilation=(1, 1), groups=1,
             padding_mode="zeros"):
    """``(out (N, C_out, H_out, W_out), saved)``: ``W2 @ cols + b`` by ``plan``;
    ``padding`` is ``((top, bottom), (left, right))``; ``saved`` (the plan) is for
    ``convolve_backward``."""
    c_out, _, kh, kw = weight.shape
    conv = plan(x, (kh, kw), stride, padding, dilation, groups, padding_mode, c_out)
    out = conv.product(weight.reshape(groups, c_out // groups, -1), bias)   # (N, C_out, L)
    return out.reshape(x.shape[0], c_out, *conv.out_hw), conv


def convolve_backward(saved, weight, grad_out, weights=True, inputs=True, **geometry):
    """``(grad_x, grad_w, grad_b)`` from ``convolve``'s ``saved``; ``weights=False`` /
    ``inputs=False`` skip ``grad_w`` / ``grad_x`` (``None``); ``grad_b`` is ``None`` for a
    convolution made without a bias."""
    c_out = weight.shape[0]
    groups = geometry.get("groups", 1)
    g = grad_out.reshape(grad_out.shape[0], c_out, -1)                      # (N, C_out, L)
    gw, gx = saved.backward(weight.reshape(groups, c_out // groups, -1), g, weights, inputs)
    gb = saved.bias_grad        # summed by the backward's loops on the way (not by Columns)
    if gb is None and saved.biased:     # over the images, then along each contiguous row
        gb = g.sum(axis=0).sum(axis=1)  # (axes 0 and 2 at once: a slower strided reduction)
    return gx, (gw.reshape(weight.shape) if weights else None), gb


def maxpool_forward(x, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """``(out, switches)``, both ``(N, C, H_out, W_out)``; see ``textbook.maxpool_forward``."""
    return loops(x).maxpool_forward(x, kernel, stride, padding, dilation, ceil_mode)


def maxpool_backward(grad_out, switches, x_shape):
    return loops(grad_out).maxpool_backward(grad_out, switches, x_shape)


def avgpool_forward(x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                    divisor_override=None):
    return loops(x).avgpool_forward(x, kernel, stride, padding, ceil_mode, count_include_pad,
                                    divisor_override)


def avgpool_backward(grad_out, x_shape, kernel, stride, padding, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
    return loops(grad_out).avgpool_backward(grad_out, x_shape, kernel, stride, padding,
                                            ceil_mode, count_include_pad, divisor_override)


def _compiled(x):
    """Whether the CPU's Numba loops run on ``x``: a NumPy array, and Numba there."""
    return cpu is not None and isinstance(x, np.ndarray)


def _fused(x):
    """The CPU's one-pass Numba loops for ``x`` (passes_cpu.py), or ``None`` (then: the
    formula)."""
    if not _compiled(x):
        return None
    from . import passes_cpu         # Numba is there (cpu loaded)
    return passes_cpu


def matmul(a, b, out=None):
    """``a @ b`` for 2-D arrays, into ``out`` if given; on the CPU the rows of ``a``
    shared between the threads (``parallel.matmul``)."""
    if not (_compiled(a) and _compiled(b)) or b.dtype != a.dtype \
            or a.dtype not in (np.float32, np.float64):
        return textbook.matmul(a, b, out)
    from . import parallel           # Numba is there (cpu loaded)
    return parallel.matmul(a, b, out)


def relu_forward(x):
    """``(y, active)``: ``active = x > 0``, ``y = x * active`` (one pass on the CPU)."""
    return (_fused(x) or textbook).relu_forward(x)


def relu_backward(grad_out, derivative):
    """``grad_out * derivative`` (the mask, or LeakyReLU's slopes; one pass on the CPU)."""
    return (_fused(grad_out) or textbook).relu_backward(grad_out, derivative)


def adam_update(w, g, m, v, step_size, b1, b2, eps, correction2):
    """Adam's step on one parameter, in place (one fused pass on the CPU)."""
    (_fused(w) or textbook).adam_update(w, g, m, v, step_size, b1, b2, eps, correction2)


# -- batch normalization: fused passes (norm_cpu.py) ----------------------------------

def norm_loops(x):
    """BatchNorm's fused passes for ``x`` (``norm_cpu``: Numba loops, one or two passes
    over memory a way), or ``None`` off the CPU or without Numba: then the layer
    evaluates its formulas."""
    if not _compiled(x):
        return None
    from . import norm_cpu           # Numba is there (cpu loaded)
    return norm_cpu
