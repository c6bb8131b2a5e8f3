"""The identities that define the propagation methods, as checks a learner can run.

=====================================  ==============================================
identity                               check
=====================================  ==============================================
LRP conservation (layer by layer)      ``lrp_conservation``: relevance per layer and
                                       what each layer absorbed (biases, epsilon)
LRP-0 = gradient x input (ReLU nets)   ``lrp0_minus_gradient_x_input``
DeepLIFT summation to delta            ``deeplift(..., return_delta=True)``
integrated gradients completeness      ``ig_completeness`` (shrinks as steps grow)
=====================================  ==============================================

Each returns NumPy numbers per image, so a learner can print them.
"""
import numpy as np

from ..backend import as_numpy
from .attribution import integrated_gradients
from .propagation import gradient_x_input, lrp


def _per_image(a):
    return as_numpy(a).reshape(a.shape[0], -1).sum(axis=1)


def lrp_conservation(model, x, target, **lrp_options):
    """Rows from the input layer up: ``{"layer": i, "name", "relevance": sum of R at
    layer i's input (N,), "absorbed": what layer i kept, R above minus R below (N,)}``,
    then a last row ``{"layer": "output", "relevance": R at the target}``. LRP-0 on a
    net without biases absorbs nothing; biases and epsilon absorb the rest."""
    record = []
    lrp(model, x, target, record=record, **lrp_options)
    rows = []
    for i, above, below in sorted(record, key=lambda r: r[0]):
        rows.append({"layer": i, "name": type(model.layers[i]).__name__,
                     "relevance": _per_image(below),
                     "absorbed": _per_image(above) - _per_image(below)})
    top = max(record, key=lambda r: r[0])[1]
    rows.append({"layer": "output", "name": "target", "relevance": _per_image(top),
                 "absorbed": np.zeros(x.shape[0])})
    return rows


def lrp0_minus_gradient_x_input(model, x, target):
    """The largest ``|LRP-0 - gradient x input|`` per image (0 up to rounding on ReLU nets)."""
    diff = as_numpy(lrp(model, x, target, rule="0") - gradient_x_input(model, x, target))
    return np.abs(diff).reshape(x.shape[0], -1).max(axis=1)


def ig_completeness(model, x, target, steps=50, method="trapezoid", baseline=None):
    """``sum(IG) - (f(x) - f(x'))`` per image (``x'``: ``baseline``, default zeros): how far
    integrated gradients is from complete."""
    return as_numpy(integrated_gradients(model, x, target, baseline=baseline, steps=steps,
                                         method=method, return_delta=True)[1])


__all__ = ["lrp_conservation", "lrp0_minus_gradient_x_input", "ig_completeness"]
