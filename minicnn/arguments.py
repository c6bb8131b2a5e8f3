"""Checking the arguments a user gives a layer, an optimizer or an explanation function.

Each check returns the value as the type the code computes with, or raises a
``ValueError`` in one line that names the owner (the layer, optimizer or function)
and the argument, e.g. ``Dense in_features must be >= 1, got 0``: a bad number is
refused where it is given, not met later as a division by zero or a NaN step.
"""
import math
from numbers import Integral, Real


def whole_number(owner, name, value):
    """``value`` as an int >= 1 (NumPy integers too, not bools)."""
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise ValueError(f"{owner} {name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{owner} {name} must be >= 1, got {value!r}")
    return int(value)


def finite_number(owner, name, value, above=None, at_least=None, below=None):
    """``value`` as a finite float, ``> above``, ``>= at_least`` and ``< below`` where
    those are given (``below`` goes with one of the other two)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) \
        and (above is None or value > above) and (at_least is None or value >= at_least) \
        and (below is None or value < below)
    if not ok:
        if below is not None:
            low = f"({above:g}" if above is not None else f"[{at_least:g}"
            bound = f"in {low}, {below:g})"
        else:
            bound = "a finite number" + (f" > {above:g}" if above is not None else
                                         f" >= {at_least:g}" if at_least is not None else "")
        raise ValueError(f"{owner} {name} must be {bound}, got {value!r}")
    return float(value)
