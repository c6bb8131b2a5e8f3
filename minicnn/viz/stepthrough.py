"""A backward step-through: what each layer's backward received, returned, and whether
it is right.

``step_through(model, x, target, rule)`` runs the forward pass up to the target's layer
``k`` and the backward pass (``propagate``) from the target down, and returns one record
per layer in forward order, ``i = 0 .. k``; each a dict::

    index, name       i and the layer's label (its repr)
    input             the layer's input in the forward pass, (N, ...)
    grad_out          the signal that arrived at the layer's output, shaped like its output
    grad_in           what the layer's backward (or the rule) sent on: the signal at its input
    formula           one line: the ``Backward:`` line of the layer's (or the rule's) docstring
    rule              "gradient", or the rule this layer used (its repr)
    check             plain gradient only: the relative error of a float64 directional
                      finite-difference check of this layer's backward on this input
    rule_vs_gradient  a swapped rule only: ||rule(g) - backward(g)|| / ||backward(g)||, the
                      rule's signal against the layer's plain backward of the same ``g``

``grad_out`` of layer ``i`` is ``grad_in`` of layer ``i + 1`` (equal values), and the
first record's ``grad_in`` is the method's map: ``d target / d x`` for the gradient.
Arrays are NumPy copies. A bug in one layer's backward shows as a large ``check`` at that
layer only: each check feeds the layer the ``grad_out`` it really got.

**The check's direction.** ``L(a) = sum(layer(a) * grad_out)`` has ``dL/da = grad_in``, so
``sum(grad_in * d) ~ (L(a + h d) - L(a - h d)) / 2h``. A random ``d`` would cross the kinks
of ReLU (at 0) and max pooling (ties: on MNIST's background whole windows are equal),
where no derivative exists. Here ``d = phi(a)``, a fixed smooth random function of each
value with ``phi(0) = 0``: equal values move together and zeros stay zero, so every kink
is kept and the directional derivative exists at any input. Docstring formulas follow one
convention: a line ``Backward: ``formula```` (and ``Backward (rule): ...`` for a ReLU rule).
"""
import copy
import re
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy, get_array_module
from ..gradcheck import directional_derivative
from ..layers import Layer
from ..parameter import Parameter
from .backward import propagate, relu_rules
from .probe import probing
from .propagation import COMPOSITES, LRP_RULES, deeplift_rule, excitation_rule, lrp_rule_map
from .rules import RELU_RULES, Gradient, Rule
from .targets import as_baseline, resolve_target

LRP_METHODS = [f"lrp-{r}" for r in LRP_RULES] + [f"lrp-{c.replace('_', '-')}" for c in COMPOSITES]
METHODS = list(RELU_RULES) + LRP_METHODS + ["deeplift", "excitation-backprop"]
STEP = 1e-6                 # h of the central difference, relative to the input's scale


@dataclass
class Method:
    """How a backward pass is run: ``rule_for(i, layer)``, the start (``"one"``: a one-hot
    gradient; ``"value"``: LRP's relevance) and DeepLIFT's ``baseline`` (or None)."""
    name: str
    rule_for: object
    start: str = "one"
    baseline: object = None

    @property
    def plain(self):
        return self.name == "gradient"


def backward_method(model, x, rule=None, baseline=None, **options):
    """``rule`` as a ``Method``: ``None`` or a name of ``METHODS`` ("gradient", "guided",
    "lrp-epsilon", "lrp-epsilon-gamma-box", "deeplift", ...) or a ``rule_for(i, layer)``.
    ``options`` go to ``lrp_rule_map`` (``epsilon``, ``gamma``, ``low``, ``high``, ...);
    DeepLIFT's ``baseline`` defaults to zeros."""
    if callable(rule):
        return Method(getattr(rule, "__name__", "rules"), rule)
    name = "gradient" if rule is None else rule
    if name == "gradient":
        return Method(name, lambda i, layer: Gradient())
    if name in RELU_RULES:
        return Method(name, relu_rules(name))
    if name in LRP_METHODS:
        kind = name[len("lrp-"):].replace("-", "_")
        options.setdefault("low", float(x.min()))
        options.setdefault("high", float(x.max()))
        if kind in COMPOSITES:
            return Method(name, lrp_rule_map(model, composite=kind, **options), "value")
        return Method(name, lrp_rule_map(model, rule=kind, **options), "value")
    if name == "deeplift":
        return Method(name, deeplift_rule, baseline=as_baseline(x, baseline, "deeplift"))
    if name == "excitation-backprop":
        return Method(name, excitation_rule)
    raise ValueError(f"unknown backward rule {rule!r}; choose from {METHODS} or pass "
                     f"rule_for(i, layer)")


def step_through(model, x, target=None, rule=None, baseline=None, check=True, **options):
    """One record per layer up to the target's, in forward order (see the module's
    docstring). ``x (N, C, H, W)``; ``target`` as in ``minicnn.viz`` (``None``: the
    predicted class); ``rule`` as in ``backward_method``; ``check=False`` skips the
    finite-difference checks (``check`` is then ``None``)."""
    target = resolve_target(model, x, target)
    method = backward_method(model, x, rule, baseline, **options)
    steps, inputs = [], []
    propagate(model, x, target, method.rule_for, baseline=method.baseline,
              start=method.start, record=steps, inputs=inputs)
    records = []
    with probing(model):
        for i, above, below in sorted(steps, key=lambda s: s[0]):
            layer, used = model.layers[i], method.rule_for(i, model.layers[i])
            record = dict(index=i, name=layer.label(), input=as_numpy(inputs[i][0]).copy(),
                          grad_out=as_numpy(above).copy(), grad_in=as_numpy(below).copy(),
                          formula=backward_formula(layer, used), check=None,
                          rule="gradient" if type(used) is Gradient else repr(used),
                          rule_vs_gradient=None)
            if method.plain and check:
                record["check"] = check_backward(layer, inputs[i][0], above, seed=i)
            elif not method.plain:
                record["rule_vs_gradient"] = relative_distance(below, layer.backward(above))
            records.append(record)
    return records


def relative_distance(a, b):
    """``||a - b|| / ||b||`` over the whole batch (0 when both are 0, inf when only b is)."""
    diff = float(get_array_module(a).linalg.norm((a - b).ravel()))
    scale = float(get_array_module(b).linalg.norm(b.ravel()))
    return diff / scale if scale else (0.0 if diff == 0 else float("inf"))


def check_backward(layer, x, grad_out, seed=0, step=STEP):
    """The relative error of ``layer``'s backward at ``x`` along ``d = phi(x)`` (module
    docstring), on a float64 copy of the layer and of ``x`` and ``grad_out``:
    ``|sum(backward(g) * d) - (L(x + h d) - L(x - h d)) / 2h| / max(both, tiny)``."""
    twin = float64_copy(layer)
    xp = get_array_module(x)
    a, g = x.astype(np.float64), grad_out.astype(np.float64)
    d = kink_preserving_direction(a, seed)
    twin.forward(a)
    analytic = float((twin.backward(g) * d).sum())
    scale = float(xp.abs(a).max()) or 1.0
    numeric = directional_derivative(lambda: float((twin.forward(a) * g).sum()), a, d,
                                     step * scale)
    denom = max(abs(analytic), abs(numeric))
    return abs(analytic - numeric) / denom if denom > 1e-300 else 0.0


def kink_preserving_direction(a, seed=0, terms=4):
    """``d = s * phi(a / s)`` with ``s = max |a|`` and ``phi(u) = sum_k c_k sin(w_k u) +
    e_k (1 - cos(w_k u))`` (seeded ``c, e ~ N(0, 1)``, ``w in [1, 4]``): ``phi(0) = 0`` and
    equal values get equal directions. Shaped like ``a``."""
    xp = get_array_module(a)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    c, e, w = rng.standard_normal(terms), rng.standard_normal(terms), rng.uniform(1, 4, terms)
    s = float(xp.abs(a).max()) or 1.0
    u = a / s
    return s * sum(ck * xp.sin(wk * u) + ek * (1 - xp.cos(wk * u)) for ck, ek, wk in zip(c, e, w))


def float64_copy(layer):
    """A float64 copy of ``layer`` (its sub-layers too) with frozen parameters; the
    original and its cache are untouched. Works for any layer: no rebuild by name."""
    twin = copy.copy(layer)
    for name in layer.param_names:
        p = getattr(layer, name, None)
        if p is not None:
            q = Parameter(p.value.astype(np.float64))
            q.requires_grad = False
            setattr(twin, name, q)
    for name in layer.buffer_names:
        value = getattr(layer, name)
        setattr(twin, name, value.astype(np.float64) if value.dtype.kind == "f" else value)
    for name, value in vars(layer).items():            # containers: their layers too
        if isinstance(value, Layer):
            setattr(twin, name, float64_copy(value))
        elif isinstance(value, list) and value and all(isinstance(v, Layer) for v in value):
            setattr(twin, name, [float64_copy(v) for v in value])
    return twin


BACKWARD_LINE = re.compile(r"^\s*Backward:(?P<rest>.*)$")


def backward_formula(layer, rule=None):
    """The one-line backward formula of ``layer`` (a ``Layer``) under ``rule`` (a
    ``minicnn.viz.rules`` rule or None): the first double-backquoted text on the
    ``Backward:`` line of the rule's class docstring, else of the layer's (the classes'
    MRO is searched, so a subclass inherits its parent's line)."""
    if isinstance(rule, Rule) and type(rule) is not Gradient:
        return docstring_formula(type(rule))
    return docstring_formula(type(layer))


def docstring_formula(cls):
    """The formula of the first ``Backward:`` docstring line in ``cls.__mro__``; a note
    saying it is missing otherwise."""
    for klass in cls.__mro__:
        for line in (klass.__dict__.get("__doc__") or "").splitlines():
            m = BACKWARD_LINE.match(line)
            if m:
                literal = re.search(r"``(.+?)``", m.group("rest"))
                return literal.group(1) if literal else m.group("rest").strip()
    return f"(no 'Backward:' line in the docstring of {cls.__name__})"


__all__ = ["step_through", "backward_method", "Method", "METHODS", "LRP_METHODS",
           "check_backward", "kink_preserving_direction", "float64_copy", "backward_formula",
           "docstring_formula", "relative_distance"]
