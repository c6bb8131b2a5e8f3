"""Output-size arithmetic shared by convolution and pooling.

For an input of size ``H``, a window ``k``, stride ``s`` and zero padding ``p``
on each side, the number of window positions is::

    H_out = (H + 2 p - k) // s + 1
"""


def pair(value, name="value"):
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``; anything else is an error."""
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def output_size(size, kernel, stride, padding):
    """Number of window positions along one axis (may be < 1 for bad input)."""
    return (size + 2 * padding - kernel) // stride + 1


def output_hw(hw, kernel, stride, padding):
    """``(H_out, W_out)`` for input ``hw = (H, W)`` and pair-valued settings."""
    return (output_size(hw[0], kernel[0], stride[0], padding[0]),
            output_size(hw[1], kernel[1], stride[1], padding[1]))
