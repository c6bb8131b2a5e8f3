"""The one backward pass every explanation runs, with a rule per layer.

``propagate`` runs the forward pass layer by layer (keeping each layer's input,
and its input on the baseline for DeepLIFT), then the backward pass from the
target with ``rule_for(index, layer).backward(layer, x, signal, ref)`` at each
layer (``minicnn.viz.rules``). No hooks: the rule *is* the layer's backward step,
and ``Gradient`` is the layer's own backward.

``backprop`` is that pass with the ReLUs' rule swapped and every other layer's
gradient kept::

    "gradient"   Gradient    g * (x > 0)            the chain rule: saliency
    "deconvnet"  Deconvnet   max(g, 0)              Zeiler & Fergus's projection
    "guided"     Guided      g * (x > 0) * (g > 0)  Springenberg's guided backprop

Everything runs in eval mode (dropout off) via ``probing``, which also restores
the training flags and the parameters' ``grad`` arrays afterwards.
"""
from ..backend import get_array_module
from ..layers import ReLU
from .probe import layer_index, probing
from .rules import RELU_RULES, Gradient
from .targets import resolve_target


def propagate(model, x, target, rule_for, baseline=None, start="one", record=None,
              inputs=None, stop=-1):
    """``(signal, target value (N,))`` of the backward pass with ``rule_for(i, layer)``
    at layer ``i``: the signal at the input, or with ``stop=L`` at layer ``L``'s output
    (the pass ends there). ``start``: ``"one"`` (a one-hot gradient) or ``"value"`` (the
    target's value, LRP's starting relevance). ``baseline``: also run the forward pass
    on it and hand each rule its input there (``ref``); then the baseline's target
    value is returned third. ``record``: a list that receives ``(i, signal at layer i's
    output, at its input)``; ``inputs``: a list that receives ``(layer i's input, its
    input on the baseline or None)`` for ``i = 0, 1, ...`` (what each rule was handed)."""
    model.check_device(x)
    target = resolve_target(model, x, target)
    layers = model.layers[:target.index + 1]
    with probing(model):
        refs = [None] * len(layers)
        if baseline is not None:
            out = baseline
            for i, layer in enumerate(layers):
                refs[i], out = out, layer.forward(out)
            ref_value = out[target.where]
        layer_inputs, out = [], x
        for layer in layers:
            layer_inputs.append(out)
            out = layer.forward(out)
        value = out[target.where]
        if inputs is not None:
            inputs.extend(zip(layer_inputs, refs))
        signal = get_array_module(out).zeros_like(out)
        signal[target.where] = 1.0 if start == "one" else value
        for i in range(len(layers) - 1, stop, -1):
            above = signal
            signal = rule_for(i, layers[i]).backward(layers[i], layer_inputs[i], signal, refs[i])
            if record is not None:
                record.append((i, above, signal))
    if baseline is not None:
        return signal, value, ref_value
    return signal, value


def relu_rules(rule):
    """``rule_for(i, layer)``: the ReLU rule named ``rule`` at every ReLU (LeakyReLU
    too), the gradient everywhere else."""
    if rule not in RELU_RULES:
        raise ValueError(f"backward rule must be one of {tuple(RELU_RULES)}, got {rule!r}")
    relu, gradient = RELU_RULES[rule](), Gradient()
    return lambda i, layer: relu if isinstance(layer, ReLU) else gradient


def backprop(model, x, target, rule="gradient", to_layer=None):
    """One forward and one backward pass from ``target`` with the ReLU rule ``rule``.

    ``x (N, C, H, W)`` -> ``(grad, value, activation)``:

    - ``grad``: the backward signal at the input, ``(N, C, H, W)``, or, with
      ``to_layer=L``, at layer ``L``'s output (the pass stops there);
    - ``value (N,)``: the target's value for each image;
    - ``activation``: ``x``, or layer ``L``'s output when ``to_layer`` is given.
    """
    resolved = resolve_target(model, x, target)
    stop = -1 if to_layer is None else layer_index(model, to_layer)
    if stop >= resolved.index:
        raise ValueError(f"to_layer={to_layer} must come before the target's layer "
                         f"{resolved.index}")
    inputs = []
    grad, value = propagate(model, x, resolved, relu_rules(rule), inputs=inputs, stop=stop)
    return grad, value, x if stop < 0 else inputs[stop + 1][0]
