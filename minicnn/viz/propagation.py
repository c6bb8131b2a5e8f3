"""Propagation methods: the backward pass with a rule per layer (``minicnn.viz.rules``),
run by ``minicnn.viz.backward.propagate``. The methods::

    gradient_x_input     x * d target / d x
    lrp                  relevance R = the target's logit at the output, rules by layer
    deeplift             multipliers against a baseline; attributions m * (x - x')
    excitation_backprop  z+ at conv and dense layers (zennit's ExcitationBackprop)

Which rule each layer gets (``LRP_DEFAULTS`` below, then the ``rule``, the
``composite`` or per-index ``rules`` you pass) is the one readable place.
Every method takes ``x (N, C, H, W)`` on the CPU or the GPU and returns an
array shaped like ``x`` on the same device.
"""
from ..layers import AvgPool2D, Conv2D, Dense, MaxPool2D, ReLU
from .backward import backprop, propagate
from .rules import (AlphaBeta, Epsilon, Flat, Gamma, Gradient, Norm, Pass, Proportional, Rescale,
                    RescaleMaxPool, ZBox, ZPlus)
from .targets import as_baseline, resolve_target

LINEAR = (Conv2D, Dense)
LRP_RULES = {"0": lambda o: Epsilon(0.0), "epsilon": lambda o: Epsilon(o["epsilon"]),
             "gamma": lambda o: Gamma(o["gamma"]), "alpha2beta1": lambda o: AlphaBeta(2, 1),
             "alpha1beta0": lambda o: AlphaBeta(1, 0), "zplus": lambda o: ZPlus()}
# Depth-dependent mixes (zennit's composites, after Montavon et al. 2019, section 10.3):
# (rule of the first linear layer or None, rule of the other convs, rule of dense layers).
COMPOSITES = {
    "epsilon_gamma_box": (lambda o: ZBox(o["low"], o["high"]), lambda o: Gamma(o["gamma"]),
                          lambda o: Epsilon(o["epsilon"])),
    "epsilon_plus": (None, lambda o: ZPlus(), lambda o: Epsilon(o["epsilon"])),
    "epsilon_alpha2_beta1": (None, lambda o: AlphaBeta(2, 1), lambda o: Epsilon(o["epsilon"])),
    "epsilon_plus_flat": (lambda o: Flat(), lambda o: ZPlus(), lambda o: Epsilon(o["epsilon"])),
    "epsilon_alpha2_beta1_flat": (lambda o: Flat(), lambda o: AlphaBeta(2, 1),
                                  lambda o: Epsilon(o["epsilon"])),
}


def _lrp_default(layer, stabilizer=1e-6):
    """What a non-linear layer does with relevance in LRP (zennit's layer_map_base)."""
    if isinstance(layer, ReLU) or type(layer).__name__.startswith("BatchNorm"):
        return Pass()              # ReLU: R flows on; BatchNorm without merging: passed
    if isinstance(layer, AvgPool2D):
        return Norm(stabilizer)    # a linear map with positive weights: the z-rule
    return Gradient()              # max pooling: winner takes all; Flatten, Dropout (eval)


def gradient_x_input(model, x, target):
    """``x * d target / d x`` (Shrikumar et al. 2016), ``(N, C, H, W)``; on a ReLU
    network it equals LRP-0 (Ancona et al. 2018)."""
    return backprop(model, x, target, "gradient")[0] * x


def lrp_rule_map(model, rule="epsilon", composite=None, rules=None, maxpool="winner",
                 epsilon=1e-6, gamma=0.25, low=None, high=None):
    """``rule_for(i, layer)``: the LRP rule of each layer. One ``rule`` for every conv and
    dense layer, or a ``composite`` by depth; ``rules={index: Rule}`` overrides single
    layers; ``maxpool``: ``"winner"`` (the switches) or ``"proportional"``."""
    if maxpool not in ("winner", "proportional"):
        raise ValueError(f"lrp maxpool must be 'winner' or 'proportional', got {maxpool!r}")
    options = dict(epsilon=epsilon, gamma=gamma, low=low, high=high)
    if composite is not None:
        if composite not in COMPOSITES:
            raise ValueError(f"unknown LRP composite {composite!r}; choose from "
                             f"{sorted(COMPOSITES)}")
        first, conv, dense = (r and r(options) for r in COMPOSITES[composite])
    elif rule in LRP_RULES:
        first, conv, dense = None, LRP_RULES[rule](options), LRP_RULES[rule](options)
    else:
        raise ValueError(f"unknown LRP rule {rule!r}; choose from {sorted(LRP_RULES)}")
    linear = [i for i, layer in enumerate(model.layers) if isinstance(layer, LINEAR)]
    if composite == "epsilon_gamma_box":   # zennit: the box rule belongs to the first conv
        linear = [i for i in linear if isinstance(model.layers[i], Conv2D)]
    first_index = linear[0] if linear and first is not None else None
    overrides = dict(rules or {})
    pool_eps = 0.0 if rule == "0" and composite is None else 1e-6   # LRP-0: nothing added

    def rule_for(i, layer):
        if i in overrides:
            return overrides[i]
        if i == first_index:
            return first
        if isinstance(layer, Conv2D):
            return conv
        if isinstance(layer, Dense):
            return dense
        if isinstance(layer, MaxPool2D) and maxpool == "proportional":
            return Proportional()
        return _lrp_default(layer, pool_eps)
    return rule_for


def lrp(model, x, target, rule="epsilon", composite=None, rules=None, maxpool="winner",
        epsilon=1e-6, gamma=0.25, low=None, high=None, record=None):
    """Layer-wise relevance propagation, ``(N, C, H, W)``.

    The relevance starts as the target's pre-softmax logit (all other outputs 0)
    and is redistributed layer by layer by the rules of ``lrp_rule_map`` (see
    ``minicnn.viz.rules``). ``low``/``high``: the pixel bounds of the box rule
    (default: the batch's smallest and largest value).
    """
    if low is None or high is None:
        low = float(x.min()) if low is None else low
        high = float(x.max()) if high is None else high
    rule_for = lrp_rule_map(model, rule, composite, rules, maxpool, epsilon, gamma, low, high)
    return propagate(model, x, target, rule_for, start="value", record=record)[0]


def excitation_backprop(model, x, target):
    """Zhang et al.'s excitation backprop as zennit builds it: z+ at every conv and
    dense layer, the z-rule at average pools, the gradient elsewhere; started at 1 at
    the target (a probability to share out). ``(N, C, H, W)``, non-negative for
    non-negative inputs."""
    return propagate(model, x, target, excitation_rule, start="one")[0]


def excitation_rule(i, layer):
    """Excitation backprop's rule of layer ``i`` (a ``rule_for``)."""
    if isinstance(layer, LINEAR):
        return ZPlus()
    return Norm(1e-6) if isinstance(layer, AvgPool2D) else Gradient()


def deeplift_rule(i, layer):
    """DeepLIFT's (rescale) rule of layer ``i`` (a ``rule_for``): ``Rescale`` at ReLUs,
    ``RescaleMaxPool`` at max pools, the gradient elsewhere."""
    if isinstance(layer, ReLU):
        return Rescale()
    return RescaleMaxPool() if isinstance(layer, MaxPool2D) else Gradient()


def deeplift(model, x, target, baseline=None, return_delta=False):
    """DeepLIFT with the rescale rule (Shrikumar et al. 2017), ``(N, C, H, W)``.

    Multipliers ``m`` run down from the target as the gradient does, except at
    ReLUs (``Rescale``) and max pools (``RescaleMaxPool``); the attribution is
    ``m * (x - baseline)`` (default baseline: zeros). Summation to delta: per
    image, the attributions add up to ``f(x) - f(baseline)``; ``return_delta=True``
    also returns ``sum - (f(x) - f(baseline))``, ``(N,)``.
    """
    baseline = as_baseline(x, baseline, "deeplift")
    target = resolve_target(model, x, target)
    m, value, ref_value = propagate(model, x, target, deeplift_rule, baseline=baseline)
    attr = m * (x - baseline)
    if return_delta:
        return attr, attr.reshape(x.shape[0], -1).sum(axis=1) - (value - ref_value)
    return attr


__all__ = ["propagate", "gradient_x_input", "lrp", "lrp_rule_map", "deeplift",
           "excitation_backprop", "deeplift_rule", "excitation_rule", "LRP_RULES", "COMPOSITES"]
