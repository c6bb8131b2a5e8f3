"""The arithmetic of convolution and pooling, in three engines (installed as ``minicnn.kernels``).

=============  ==========================================================  ===============
impl           what runs                                                   module
=============  ==========================================================  ===============
``textbook``   im2col + one matrix product; pooling by window columns:     ``textbook.py``
               the formulas, in NumPy or CuPy, nothing else
``fast``       the default: compiled loops (Numba on the CPU, numba.cuda   ``fast.py``
               on the GPU), a batch's chunks on the CPU's threads,
               Winograd tiles for stride-1 3x3 and 5x5 convolutions,
               direct loops for depthwise and one-input-channel ones,
               a product per image for 1x1 ones
``reference``  plain loops, slow on purpose: what the tests hold the       ``reference.py``
               other two to
=============  ==========================================================  ===============

Each engine has the same functions (``convolve``, ``convolve_backward``,
``maxpool_forward``, ...); a layer's ``impl`` names one, and ``impl=None`` (the
default) follows the program's choice: ``use_impl("textbook")``, or the variable
``MINICNN_IMPL`` read at import. ``use_impl`` also works as a ``with`` block.

Kernels import nothing from ``minicnn.layers``: they work on bare arrays.
"""
import os

from . import (chunks, columns, direct, fast, pointwise, reference, textbook, threads,
               winograd)
from .textbook import (PADDING_MODES, avgpool_divisors, col2im, im2col, output_hw, output_size,
                       pads_of, pair, windows_inside)

ENGINES = {"fast": fast, "textbook": textbook, "reference": reference}
IMPLS = tuple(ENGINES)


def _impl_from_environment():
    value = os.environ.get("MINICNN_IMPL", "").strip()
    if value and value not in ENGINES:
        threads.note(f"MINICNN_IMPL={value!r} ignored: it takes one of "
                     f"{', '.join(IMPLS)}; the fast engine runs")
        return "fast"
    return value or "fast"


default_impl = _impl_from_environment()     # what impl=None layers run (use_impl sets it)


def check_impl(impl, owner="impl"):
    """``impl`` if it names an engine (or is ``None``: the program's choice), else a
    one-line ``ValueError`` naming ``owner``."""
    if impl is not None and impl not in ENGINES:
        raise ValueError(f"{owner} must be one of {IMPLS} or None, got {impl!r}")
    return impl


class use_impl:
    """``minicnn.use_impl("textbook")``: every convolution and pooling layer whose ``impl``
    is ``None`` (the default) runs that engine from now on; ``with minicnn.use_impl(...):``
    only inside the block. ``winograd=False`` and ``direct=False`` keep the fast engine's
    convolutions to im2col (no Winograd tiles, no direct loops or products: ``fast.plan``)."""

    def __init__(self, impl=None, winograd=None, direct=None):
        global default_impl
        for name, value in (("winograd", winograd), ("direct", direct)):
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"use_impl {name} must be True, False or None, got {value!r}")
        engine = check_impl(impl, "use_impl") or default_impl
        if engine != "fast" and True in (winograd, direct):
            raise ValueError(f"use_impl: winograd= and direct= choose passes of the fast engine; "
                             f"with impl={engine!r} they would change nothing")
        self.saved = (default_impl, fast.WINOGRAD, fast.DIRECT)
        default_impl = engine
        if winograd is not None:
            fast.WINOGRAD = bool(winograd) and fast.cpu is not None
        if direct is not None:
            fast.DIRECT = bool(direct) and fast.cpu is not None

    def __enter__(self):
        return self

    def __exit__(self, *error):
        global default_impl
        default_impl, fast.WINOGRAD, fast.DIRECT = self.saved


# -- what the other layers and Adam call: the fast engine's passes, or the formulas ------

def _passes():
    """``fast`` (fused passes, threads) or, for the textbook and reference engines,
    ``textbook`` (the formulas)."""
    return fast if default_impl == "fast" else textbook


def matmul(a, b, out=None):
    """``a @ b`` for 2-D arrays (the fast engine on the CPU: the rows split on threads),
    written into ``out`` if given (of the result's shape and dtype)."""
    return _passes().matmul(a, b, out)


def relu_forward(x):
    """``(y, active)``: ``active = x > 0``, ``y = x * active``."""
    return _passes().relu_forward(x)


def relu_backward(grad_out, derivative):
    """``grad_out * derivative`` (the mask, or LeakyReLU's slopes)."""
    return _passes().relu_backward(grad_out, derivative)


def adam_update(w, g, m, v, step_size, b1, b2, eps, correction2):
    """Adam's step on one parameter, in place; the formula: ``textbook.adam_update``."""
    _passes().adam_update(w, g, m, v, step_size, b1, b2, eps, correction2)


def fused_norm(x):
    """BatchNorm's fused passes for ``x`` (``fast.norm_loops``) when the fast engine is
    in use, else ``None``: the layer evaluates its formulas (textbook, reference)."""
    return fast.norm_loops(x) if default_impl == "fast" else None


def maxunpool_forward(x, switches, out_hw):
    return textbook.maxunpool_forward(x, switches, out_hw)


def maxunpool_backward(grad_out, switches):
    return textbook.maxunpool_backward(grad_out, switches)


__all__ = ["chunks", "columns", "direct", "fast", "pointwise", "reference", "textbook",
           "threads", "winograd", "ENGINES", "IMPLS", "check_impl", "default_impl", "use_impl",
           "pair", "pads_of",
           "output_hw", "output_size", "avgpool_divisors", "PADDING_MODES", "im2col", "col2im",
           "matmul", "relu_forward", "relu_backward", "adam_update", "fused_norm",
           "maxunpool_forward",
           "maxunpool_backward", "windows_inside"]
