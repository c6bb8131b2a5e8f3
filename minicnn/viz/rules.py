"""Backward rules: what a layer sends back in an explanation's backward pass.

The ordinary backward pass sends back the gradient. Every explanation method is
that same pass with some layers' step swapped for a *rule* (``minicnn.viz.backward``
runs it)::

    signal_in = rule.backward(layer, x, signal_out, ref)

``x`` is the layer's input in the forward pass and ``ref`` its input on the
baseline (DeepLIFT only). ``Gradient`` is ``layer.backward(signal_out)``.

Deconvnet and guided backprop swap only the ReLU's step (``RELU_RULES``), keeping the
gradient everywhere else (conv and dense through their transposed weights, max pooling
through its switches)::

    Gradient    g * (x > 0)             the chain rule: saliency
    Deconvnet   max(g, 0)               which units were on is forgotten, negatives cut
    Guided      g * (x > 0) * (g > 0)   both: the gradient of the positive signal only

LRP rules on a linear layer (Conv2D, Dense, AvgPool2D) follow Montavon et al.'s
four steps ("Layer-wise relevance propagation: an overview", 2019), with
``rho`` a change of the weights and ``a = x``::

    z = rho-layer(a)                  forward with modified weights (and bias)
    s = R / stabilize(z)              stabilize(z) = z + eps * sign(z), sign(0) = 1
    c = rho-layer.backward(s)         the transposed map: sum_k rho(w_jk) s_k
    R_in = a * c

Each term is literally the layer's own forward and backward on a copy holding
the modified weights (``_term``), so a rule works for any layer with ``weight``
and ``bias`` parameters. The rules (zennit's definitions; ``a+ = max(a, 0)``,
``a- = min(a, 0)``, likewise for the weights ``w+``, ``w-`` and bias)::

    Epsilon(eps)    rho = id; eps = 0 is LRP-0
    Gamma(g)        rho(w) = w + g w+ for positive outputs (from a+ w + a- w- terms),
                    w + g w- for negative ones (generalized to signed inputs)
    AlphaBeta(a,b)  alpha * (a+ w+ + a- w-) share - beta * (a+ w- + a- w+) share
    ZPlus           AlphaBeta(1, 0)
    ZBox(lo, hi)    z = w a - w+ lo - w- hi: the input layer, pixels in [lo, hi]
    WSquare, Flat   rho(w) = w^2 / 1, input replaced by ones: the input layer

The bias enters ``z`` (it absorbs relevance); rules that split by sign give the
negative-input terms no bias, as zennit does. ``Pass`` hands the relevance on
unchanged (ReLU and BatchNorm in LRP); max pooling keeps ``Gradient`` (its
switches: winner takes all) or ``Proportional`` (shared by the window's inputs).
"""
import copy

from ..backend import get_array_module
from ..parameter import Parameter


class Rule:
    """The ordinary gradient; subclasses override ``backward``."""

    def backward(self, layer, x, signal, ref=None):
        return layer.backward(signal)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


Gradient = Rule


class Pass(Rule):
    """Hand the signal on unchanged (an elementwise layer in LRP).

    Backward: ``R_in = R``
    """

    def backward(self, layer, x, signal, ref=None):
        return signal


class Deconvnet(Rule):
    """Zeiler & Fergus's deconvnet at a ReLU: the positive part of the signal, whatever
    the ReLU's input was (LeakyReLU alike).

    Backward: ``dx = max(g, 0)``
    """

    def backward(self, layer, x, signal, ref=None):
        return signal * (signal > 0)


class Guided(Rule):
    """Springenberg et al.'s guided backprop at a ReLU: the ReLU's own gradient of the
    signal's positive part (LeakyReLU: its slopes instead of the mask).

    Backward: ``dx = g * (x > 0) * (g > 0)``
    """

    def backward(self, layer, x, signal, ref=None):
        return layer.backward(signal * (signal > 0))


RELU_RULES = {"gradient": Gradient, "deconvnet": Deconvnet, "guided": Guided}


def stabilize(z, eps):
    """``z + eps * sign(z)`` with ``sign(0) = 1`` (zennit's and iNNvestigate's convention)."""
    xp = get_array_module(z)
    return z + eps * xp.where(z >= 0, 1, -1).astype(z.dtype)


def divide(r, z, eps):
    """``r / stabilize(z, eps)``; where ``eps == 0`` and ``z == 0`` the share is 0."""
    xp = get_array_module(z)
    if eps:
        return r / stabilize(z, eps)
    zero = z == 0
    return xp.where(zero, 0, r / xp.where(zero, 1, z))


def _positive(v):
    return get_array_module(v).maximum(v, 0)


def _negative(v):
    return get_array_module(v).minimum(v, 0)


def _zero(v):
    return get_array_module(v).zeros_like(v)


def _term(layer, a, weight=None, bias=None):
    """``(z, back)``: the layer's forward of ``a`` with ``weight(w)`` and ``bias(b)`` in
    place of its parameters, on a copy, and that copy's backward (``s -> c``)."""
    twin = copy.copy(layer)                       # same geometry; own cache and parameters
    if weight is not None and getattr(layer, "weight", None) is not None:
        twin.weight = _frozen(weight(layer.weight.value))
    if bias is not None and getattr(layer, "bias", None) is not None:
        twin.bias = _frozen(bias(layer.bias.value))
    return twin.forward(a), twin.backward


def _frozen(value):
    p = Parameter(value)
    p.requires_grad = False            # the rule needs only what flows to the input
    return p


class Epsilon(Rule):
    """LRP-epsilon (LRP-0 for ``epsilon=0``): ``R_in = a * W^T (R / stabilize(z))``.

    Backward: ``R_in = a * W^T (R / stabilize(W a + b))``
    """

    def __init__(self, epsilon=1e-6):
        self.epsilon = float(epsilon)

    def backward(self, layer, x, signal, ref=None):
        z, back = _term(layer, x)
        return x * back(divide(signal, z, self.epsilon))


Norm = Epsilon          # zennit's name for the epsilon rule on a weightless layer (AvgPool2D)


class Gamma(Rule):
    """LRP-gamma, generalized to signed inputs (zennit's ``Gamma``): favours positive
    contributions by ``gamma``; for ``a >= 0`` it is Montavon's ``w + gamma w+``.

    Backward: ``R_in = a * rho(W)^T (R / stabilize(rho(W) a + rho(b)))``, a >= 0, z > 0
    (``rho(w) = w + gamma w+``)
    """

    def __init__(self, gamma=0.25, stabilizer=1e-6):
        self.gamma, self.stabilizer = float(gamma), float(stabilizer)

    def backward(self, layer, x, signal, ref=None):
        g = self.gamma
        up = lambda w: w + g * _positive(w)                       # noqa: E731
        down = lambda w: w + g * _negative(w)                     # noqa: E731
        a_pos, a_neg = _positive(x), _negative(x)
        z1, b1 = _term(layer, a_pos, up, up)                      # positive outputs ...
        z2, b2 = _term(layer, a_neg, down, _zero)
        z3, b3 = _term(layer, a_pos, down, down)                  # ... and negative ones
        z4, b4 = _term(layer, a_neg, up, _zero)
        z = _term(layer, x)[0]
        s_pos = (z > 0) * divide(signal, z1 + z2, self.stabilizer)
        s_neg = (z < 0) * divide(signal, z3 + z4, self.stabilizer)
        return a_pos * b1(s_pos) + a_neg * b2(s_pos) + a_pos * b3(s_neg) + a_neg * b4(s_neg)


class AlphaBeta(Rule):
    """LRP-alpha-beta: ``alpha`` times the positive contributions' share minus ``beta``
    times the negative ones' (``alpha - beta = 1``).

    Backward: ``R_in = alpha a W+^T (R / z+) - beta a W-^T (R / z-)``, a >= 0
    (``z+ = W+ a + b+``, ``z- = W- a + b-``)
    """

    def __init__(self, alpha=2.0, beta=1.0, stabilizer=1e-6):
        if alpha < 0 or beta < 0 or abs(alpha - beta - 1) > 1e-12:
            raise ValueError(f"AlphaBeta needs alpha, beta >= 0 and alpha - beta = 1, "
                             f"got alpha={alpha}, beta={beta}")
        self.alpha, self.beta, self.stabilizer = float(alpha), float(beta), float(stabilizer)

    def backward(self, layer, x, signal, ref=None):
        a_pos, a_neg = _positive(x), _negative(x)
        z1, b1 = _term(layer, a_pos, _positive, _positive)       # positive contributions
        z2, b2 = _term(layer, a_neg, _negative, _zero)
        s = divide(signal, z1 + z2, self.stabilizer)
        positive = a_pos * b1(s) + a_neg * b2(s)
        if not self.beta:
            return self.alpha * positive
        z3, b3 = _term(layer, a_pos, _negative, _negative)       # negative contributions
        z4, b4 = _term(layer, a_neg, _positive, _zero)
        s = divide(signal, z3 + z4, self.stabilizer)
        return self.alpha * positive - self.beta * (a_pos * b3(s) + a_neg * b4(s))


class ZPlus(AlphaBeta):
    """LRP-z+ (AlphaBeta with alpha=1, beta=0).

    Backward: ``R_in = a * W+^T (R / stabilize(W+ a + b+))`` (a >= 0)
    """

    def __init__(self, stabilizer=1e-6):
        super().__init__(1.0, 0.0, stabilizer)


class ZBox(Rule):
    """LRP-z^B for the input layer, pixels bounded by ``low`` and ``high``::

        z = w x - w+ low - w- high            R_in = x c - low c+ - high c-

    Backward: ``R_in = x c - low c+ - high c-``, ``c = W^T (R / stabilize(z))``
    """

    def __init__(self, low, high, stabilizer=1e-6):
        self.low, self.high, self.stabilizer = low, high, float(stabilizer)

    def backward(self, layer, x, signal, ref=None):
        xp = get_array_module(x)
        low = xp.broadcast_to(xp.asarray(self.low, dtype=x.dtype), x.shape)
        high = xp.broadcast_to(xp.asarray(self.high, dtype=x.dtype), x.shape)
        z1, b1 = _term(layer, x)
        z2, b2 = _term(layer, low, _positive, _positive)
        z3, b3 = _term(layer, high, _negative, _negative)
        s = divide(signal, z1 - z2 - z3, self.stabilizer)
        return x * b1(s) - low * b2(s) - high * b3(s)


class WSquare(Rule):
    """LRP-w^2 for an unbounded input layer: ``R_in = sum_k w_jk^2 R_k / sum_j w_jk^2``.

    Backward: ``R_in = (W^2)^T (R / stabilize(W^2 1 + b^2))``
    """
    weight = staticmethod(lambda w: w * w)
    bias = staticmethod(lambda b: b * b)

    def __init__(self, stabilizer=1e-6):
        self.stabilizer = float(stabilizer)

    def backward(self, layer, x, signal, ref=None):
        ones = get_array_module(x).ones_like(x)
        z, back = _term(layer, ones, self.weight, self.bias)
        return back(divide(signal, z, self.stabilizer))


class Flat(WSquare):
    """LRP-flat: like ``WSquare`` with every weight 1 (and no bias): relevance spread
    evenly over each output's receptive field.

    Backward: ``R_in = 1^T (R / stabilize(1 1))``, every weight 1
    """
    weight = staticmethod(lambda w: get_array_module(w).ones_like(w))
    bias = staticmethod(_zero)


class Proportional(Rule):
    """Max pooling shared by the window's inputs, ``R_i = x_i / sum(window) * R``,
    instead of winner-takes-all: the epsilon rule of the window's sum.

    Backward: ``R_i = x_i / stabilize(sum(window)) * R``
    """

    def __init__(self, stabilizer=1e-6):
        self.stabilizer = float(stabilizer)

    def backward(self, layer, x, signal, ref=None):
        from ..layers import AvgPool2D
        if getattr(layer, "dilation", (1, 1)) != (1, 1) or getattr(layer, "ceil_mode", False):
            raise ValueError(f"Proportional max-pool relevance needs dilation 1 and "
                             f"ceil_mode=False, got {layer!r}; use the winner rule")
        pool = AvgPool2D(layer.kernel_size, layer.stride, layer.padding)
        return Epsilon(self.stabilizer).backward(pool, x, signal)


# -- DeepLIFT (Shrikumar et al. 2017): multipliers against a baseline ------------------
# A multiplier m satisfies sum m_in * (x - ref) = sum m_out * (y - y_ref) for each layer,
# so chained from the target down they give attributions m * (x - x_ref) that add up to
# f(x) - f(baseline). Linear layers (conv, dense, average pooling, batch norm in eval
# mode, flatten) keep the gradient: for them the multiplier *is* the gradient.

class Rescale(Rule):
    """DeepLIFT's rescale rule at an elementwise nonlinearity (ReLU, LeakyReLU):
    ``m = g * (y - y_ref) / (x - x_ref)``, or the gradient where ``|x - x_ref| <= eps``
    (Captum's threshold, 1e-10). ``y`` comes from the layer's own forward (on a copy).

    Backward: ``m_in = m_out * (y - y_ref) / (x - x_ref)``
    """

    def __init__(self, eps=1e-10):
        self.eps = float(eps)

    def backward(self, layer, x, signal, ref=None):
        xp = get_array_module(x)
        on_x, on_ref = copy.copy(layer), copy.copy(layer)
        dy, dx = on_x.forward(x) - on_ref.forward(ref), x - ref
        small = xp.abs(dx) <= self.eps
        local = on_x.backward(xp.ones_like(x))             # the derivative at x
        return signal * xp.where(small, local, dy / xp.where(small, 1, dx))


class RescaleMaxPool(Rule):
    """DeepLIFT at a max pool, per window: the window's difference ``dy = max(x) - max(x_ref)``
    (times the signal) goes to one input: the winner in ``x`` where the output rose, the
    winner in ``x_ref`` where it fell (Captum's "cross maximum"); overlapping windows add
    up. As a multiplier: that contribution divided by the input's ``x - x_ref``, which is
    at least ``|dy|`` there, so the division is safe.

    Backward: ``m_in = m_out * (max(x) - max(x_ref)) / (x - x_ref)`` at one winner per window
    """

    def __init__(self, eps=1e-10):
        self.eps = float(eps)

    def backward(self, layer, x, signal, ref=None):
        xp = get_array_module(x)
        on_x, on_ref = copy.copy(layer), copy.copy(layer)
        y, y_ref = on_x.forward(x), on_ref.forward(ref)
        top = xp.maximum(y, y_ref)
        contribution = (on_x.backward(signal * (top - y_ref))       # rose: x's winner
                        + on_ref.backward(signal * (y - top)))      # fell: x_ref's winner
        dx = x - ref
        small = xp.abs(dx) <= self.eps            # there the contribution is 0
        return xp.where(small, layer.backward(signal), contribution / xp.where(small, 1, dx))
