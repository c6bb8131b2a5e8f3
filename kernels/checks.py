"""The compiled loops' last line of defence: shape checks at their Python entries.

A Numba or CUDA loop indexes its arrays with numbers computed from its other
arguments and checks nothing: a wrong shape reads or writes outside an array
(garbage, or a crash). So each Python entry that hands arrays to such a loop
(``cpu.py``, ``cuda.py``, ``columns.py``, ``winograd.py``) checks them first:
a few comparisons, and a ``ValueError`` that names the kernel.
"""
from .textbook import output_hw


def expect_shape(where, name, array, shape):
    """A ``ValueError`` naming the kernel unless ``array.shape == shape``."""
    if array.shape != shape:                           # (callers pass tuples)
        raise ValueError(f"minicnn.kernels.{where}: {name} has shape {tuple(array.shape)}, "
                         f"expected {tuple(shape)}")


def window_hw(where, x_shape, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """``output_hw`` for an ``(N, C, H, W)`` input, after checking that the settings are
    windows (kernel, stride and dilation >= 1, padding >= 0) and leave at least one."""
    if len(x_shape) != 4 or min(*kernel, *stride, *dilation) < 1 or min(padding) < 0:
        raise ValueError(f"minicnn.kernels.{where}: needs an (N, C, H, W) input and kernel, "
                         f"stride, dilation >= 1, padding >= 0; got shape {tuple(x_shape)}, "
                         f"kernel {kernel}, stride {stride}, padding {padding}, "
                         f"dilation {dilation}")
    hw = output_hw(x_shape[2:], kernel, stride, padding, dilation, ceil_mode)
    if min(hw) < 1:
        raise ValueError(f"minicnn.kernels.{where}: no window of kernel {kernel} (dilation "
                         f"{dilation}, padding {padding}) fits the input {tuple(x_shape)}")
    return hw
