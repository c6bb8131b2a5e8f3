"""Per-layer conservation: the total relevance (contribution) at every layer of one pass.

``relevance_by_layer(model, x, target, method)`` returns ``(K + 2, N)`` for a target in
layer ``K`` (``K + 1`` layers take part): row ``i`` is the signal summed over layer
``i``'s input (every axis but the batch), the last row the total at the output::

    LRP ("lrp-0", "lrp-epsilon", composites)  sum R at layer i's input; last: the logit
    "deeplift"                                 sum m_i (a_i - a_i'); last: f(x) - f(x')
    "integrated-gradients"                     sum (a_i - a_i') int_0^1 df/da_i da; last:
                                               f(x) - f(x'), along the straight path
                                               from a_i' to a_i (Captum's
                                               LayerIntegratedGradients)

``a_i`` is layer ``i``'s input on ``x``, ``a_i'`` on the baseline (default zeros). What
each identity says: LRP-0 on a bias-free ReLU net keeps every row equal to the logit
(biases and epsilon absorb the differences, as ``checks.lrp_conservation`` lists);
DeepLIFT's rows all equal ``f(x) - f(x')`` (summation to delta, layer by layer); IG's
rows equal it up to the quadrature's error (completeness at every layer).
``identity_residuals`` gives the per-image residuals of ``minicnn.viz.checks``.
"""
import numpy as np

from ..backend import as_numpy, get_array_module
from .attribution import _quadrature
from .backward import propagate
from .checks import ig_completeness, lrp0_minus_gradient_x_input, lrp_conservation
from .probe import probing
from .propagation import COMPOSITES, deeplift
from .stepthrough import LRP_METHODS, backward_method
from .targets import as_baseline, resolve_target

CONSERVATION_METHODS = LRP_METHODS + ["deeplift", "integrated-gradients"]


def _per_image(a):
    return as_numpy(a).reshape(a.shape[0], -1).sum(axis=1).astype(np.float64)


def relevance_by_layer(model, x, target, method, baseline=None, steps=16,
                       quadrature="gausslegendre", **lrp_options):
    """``(K + 2, N)`` totals per layer (module docstring). ``x (N, C, H, W)``; ``method``
    in ``CONSERVATION_METHODS``; ``baseline`` for DeepLIFT and IG (zeros if None);
    ``steps`` and ``quadrature`` for IG; ``lrp_options`` (``epsilon``, ``gamma``, ...)
    for LRP."""
    target = resolve_target(model, x, target)
    if method in LRP_METHODS:
        kind = method[len("lrp-"):].replace("-", "_")
        options = dict(composite=kind) if kind in COMPOSITES else dict(rule=kind)
        rows = lrp_conservation(model, x, target, **options, **lrp_options)
        return np.stack([row["relevance"] for row in rows])
    baseline = as_baseline(x, baseline, "relevance_by_layer")
    if method == "deeplift":
        record, inputs = [], []
        deeplift_method = backward_method(model, x, "deeplift", baseline)
        _, value, ref_value = propagate(model, x, target, deeplift_method.rule_for,
                                        baseline=baseline, record=record, inputs=inputs)
        below = {i: signal for i, _, signal in record}
        rows = [_per_image(below[i] * (a - ref)) for i, (a, ref) in enumerate(inputs)]
        return np.stack(rows + [as_numpy(value - ref_value).astype(np.float64)])
    if method == "integrated-gradients":
        return _layer_integrated_gradients(model, x, baseline, target, steps, quadrature)
    raise ValueError(f"relevance_by_layer: unknown method {method!r}; choose from "
                     f"{CONSERVATION_METHODS}")


def _layer_integrated_gradients(model, x, baseline, target, steps, quadrature):
    """IG at every layer's input along the straight path between its two activations."""
    k, xp = target.index, get_array_module(x)
    alphas, weights = _quadrature(quadrature, steps)
    n = x.shape[0]
    where = (xp.arange(n * len(alphas)),) + tuple(xp.tile(w, len(alphas))
                                                 for w in target.where[1:])
    with probing(model):
        acts, refs, a, ref = [], [], x, baseline
        for layer in model.layers[:k + 1]:
            acts.append(a)
            refs.append(ref)
            ref = layer.forward(ref)
            a = layer.forward(a)
        value, ref_value = a[target.where], ref[target.where]
        rows = []
        for i in range(k + 1):
            part = model[i:k + 1]
            points = [refs[i] + acts[i].dtype.type(t) * (acts[i] - refs[i]) for t in alphas]
            out = part.forward(xp.concatenate(points))        # every point in one batch
            grad = xp.zeros_like(out)
            grad[where] = 1.0
            grads = part.backward(grad).reshape((len(alphas), n) + acts[i].shape[1:])
            mean = sum(w * grads[j] for j, w in enumerate(weights))
            rows.append(_per_image(mean * (acts[i] - refs[i])))
    return np.stack(rows + [as_numpy(value - ref_value).astype(np.float64)])


def identity_residuals(model, x, target, method, baseline=None, steps=16,
                       quadrature="gausslegendre", **lrp_options):
    """``{name: (N,) residual}`` of the identities of ``minicnn.viz.checks`` that belong
    to ``method``: LRP: ``"LRP-0 - gradient x input (max)"`` and ``"absorbed (logit - sum
    R at the input)"``; DeepLIFT: ``"sum-to-delta"``; IG: ``"completeness"``."""
    target = resolve_target(model, x, target)
    if method in LRP_METHODS:
        table = relevance_by_layer(model, x, target, method, **lrp_options)
        return {"LRP-0 - gradient x input (max)": lrp0_minus_gradient_x_input(model, x, target),
                "absorbed (logit - sum R at the input)": table[-1] - table[0]}
    if method == "deeplift":
        return {"sum-to-delta": as_numpy(deeplift(model, x, target, baseline,
                                                  return_delta=True)[1])}
    if method == "integrated-gradients":
        return {"completeness": ig_completeness(model, x, target, steps, quadrature, baseline)}
    raise ValueError(f"identity_residuals: unknown method {method!r}; choose from "
                     f"{CONSERVATION_METHODS}")


__all__ = ["relevance_by_layer", "identity_residuals", "CONSERVATION_METHODS"]
