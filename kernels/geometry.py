"""Output-size arithmetic shared by convolution and pooling.

For an input of size ``H``, a window ``k`` with dilation ``d`` (its taps ``d``
pixels apart, so it spans ``d (k - 1) + 1`` pixels), stride ``s`` and padding
``p`` on each side, the number of window positions is::

    H_out = (H + 2 p - d (k - 1) - 1) // s + 1

Pooling's ``ceil_mode`` rounds the division up instead, but, as in PyTorch, a
last window that would start beyond the input and its left padding
(``(H_out - 1) s >= H + p``) is dropped.
"""
from numbers import Integral

import numpy as np


def pair(value, name="value"):
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``; NumPy integers too; anything else is an error."""
    def is_int(v):
        return isinstance(v, Integral) and not isinstance(v, bool)
    if is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def output_size(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """Number of window positions along one axis (may be < 1 for bad input)."""
    span = dilation * (kernel - 1) + 1
    room = size + 2 * padding - span
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def output_hw(hw, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """``(H_out, W_out)`` for input ``hw = (H, W)`` and pair-valued settings."""
    return tuple(output_size(hw[a], kernel[a], stride[a], padding[a], dilation[a], ceil_mode)
                 for a in range(2))


def avgpool_divisors(hw, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                     divisor_override=None):
    """``(H_out, W_out)`` float64 array: what each average-pooling window divides its sum by.

    PyTorch's rules: a window is cut at the far edge of the padding (a
    ``ceil_mode`` window may reach beyond it); ``count_include_pad`` counts the
    padded pixels left inside, otherwise only the input pixels count;
    ``divisor_override`` replaces them all.
    """
    ho, wo = output_hw(hw, kernel, stride, padding, ceil_mode=ceil_mode)
    counts = []
    for a, n_out in enumerate((ho, wo)):
        start = np.arange(n_out) * stride[a] - padding[a]
        stop = np.minimum(start + kernel[a], hw[a] + padding[a])
        if not count_include_pad:
            start, stop = np.maximum(start, 0), np.minimum(stop, hw[a])
        counts.append((stop - start).astype(np.float64))
    if divisor_override is not None:
        return np.full((ho, wo), float(divisor_override))
    return counts[0][:, None] * counts[1][None, :]


def first_inside(n_out, stride, padding, dilation):
    """Per output position, the first window tap that lies inside the input
    (taps before it read padding): where an all ``-inf`` max-pooling window routes."""
    start = np.arange(n_out) * stride - padding
    return np.maximum(0, -(start // dilation))          # ceil(-start / d), at least 0


def windows_inside(size, n_out, kernel, stride, padding, dilation):
    """Whether each of the ``n_out`` windows along an axis has a tap inside the input. With
    dilation a window's taps may step over a small input (taps at -1 and 1 of a 1-pixel
    input): such a window has no maximum to take, nor a pixel to send its gradient to."""
    start = np.arange(n_out) * stride - padding
    first = first_inside(n_out, stride, padding, dilation)     # the first tap at or after 0
    return bool(np.all((first < kernel) & (start + first * dilation < size)))


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def pads_of(padding):
    """``(pH, pW)`` -> ``((pH, pH), (pW, pW))``; ``((top, bottom), (left, right))`` unchanged."""
    return tuple(p if isinstance(p, tuple) else (p, p) for p in padding)


def source_index(i, size, before, mode):
    """The input index that padded index ``i`` reads along an axis of ``size``,
    with ``before`` padded pixels in front; ``None`` for a zero (``"zeros"``).

    ``reflect`` mirrors about the edge pixel (``2 1 | 0 1 2 3 | 2 1``),
    ``replicate`` repeats it (``0 0 | 0 1 2 3 | 3 3``), ``circular`` wraps
    around (``2 3 | 0 1 2 3 | 0 1``).
    """
    i -= before
    if 0 <= i < size:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(i, 0), size - 1)
    if mode == "circular":
        return i % size
    return -i if i < 0 else 2 * (size - 1) - i          # reflect


# -- the compiled loops' last line of defence ---------------------------------------------
# A Numba or CUDA loop indexes its arrays with numbers computed from its other arguments and
# checks nothing: a wrong shape reads or writes outside an array (garbage, or a crash). So
# each Python entry that hands arrays to such a loop checks them first (a few comparisons).

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
