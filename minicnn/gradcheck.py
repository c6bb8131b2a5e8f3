"""Gradient checking by central differences, in float64.

For a scalar function ``f`` of an array ``x``, each partial derivative is
estimated as::

    df/dx[i] ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

and compared with the analytic gradient by a relative error with an absolute
floor::

    |a - n| <= atol + rtol * max(|a|, |n|)

A failure names the worst index and both values. For large arrays,
``directional=True`` checks one random direction ``d`` instead:
``(f(x + eps d) - f(x - eps d)) / (2 eps)`` against ``sum(grad * d)``.

``check_layer`` also refuses the layers that a plain comparison lets through
(each has a deliberately broken layer in ``tests/test_trust_gradcheck.py``):

- a backward that changes the gradient it was given (``g *= 2``): the check's
  own target would move with it. Backward gets a copy, which must come back
  unchanged. (It may return a view of it, as ``Flatten`` does: no backward
  changes its argument, so the view stays right.)
- a forward or backward that changes the layer's input in place;
- a forward that is not deterministic (dropout in training mode): there is no
  function of ``x`` to differentiate;
- a backward that assigns a parameter's gradient (``p.grad = dW``) instead of
  adding into it: right while gradients start at zero, wrong for a parameter
  that two layers share or for gradients summed over batches. Gradients start
  from known nonzero values, and a second backward, of twice the gradient,
  must add twice as much;
- a backward that returns an array it reuses (the first result changes at the
  next call);
- a gradient of the wrong shape, dtype or device, or not finite (a NaN
  compares False with any tolerance);
- a parameter not stored in C order (Fortran order, a view): every array is
  perturbed in place, element by element (``reshape(-1)`` would perturb a copy
  and see a gradient of zero);
- a ``Parameter`` attribute missing from ``param_names`` (nothing would check
  or train it), and a forward that returns another dtype or device than its
  input's (the check needs float64 throughout);
- a check that saw no signal: numerical and analytic gradients both zero
  everywhere (ReLU on negative inputs only) compare nothing, and are refused
  (except for a frozen parameter, ``requires_grad = False``, which backward
  leaves alone).
"""
import numpy as np

from .arguments import finite_number
from .backend import as_numpy, device_of, get_array_module
from .parameter import Parameter


class GradientCheckError(AssertionError):
    """The analytic gradient disagrees with the numerical one, or the check could not
    be trusted (the message says which)."""


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of scalar ``f()`` with respect to ``x`` (changed
    in place, element by element, and restored)."""
    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):    # x itself, whatever its memory order
        old = x[index].item()
        x[index] = old + eps
        plus = float(f())
        x[index] = old - eps
        minus = float(f())
        x[index] = old
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def directional_derivative(f, x, d, eps=1e-6):
    """``(f(x + eps d) - f(x - eps d)) / (2 eps)``: the derivative of scalar ``f()``
    along ``d`` (shaped like ``x``), with ``x`` changed in place and restored."""
    x0 = x.copy()
    try:
        x[...] = x0 + eps * d
        plus = float(f())
        x[...] = x0 - eps * d
        minus = float(f())
    finally:
        x[...] = x0
    return (plus - minus) / (2 * eps)


def check_gradient(f, x, analytic, name="x", eps=1e-6, rtol=1e-5, atol=1e-7,
                   directional=False, seed=0, signal=True):
    """Raise ``GradientCheckError`` unless ``analytic`` is ``d f() / d x``.

    ``x`` must be float64 and is perturbed in place (then restored); ``f``
    must recompute from it. ``analytic`` must have ``x``'s shape, dtype and
    device. ``signal=False`` accepts gradients that are both zero everywhere
    (otherwise the check refuses: it compared nothing). Returns the worst
    relative error.
    """
    eps = finite_number("check_gradient", "eps", eps, above=0)
    rtol = finite_number("check_gradient", "rtol", rtol, at_least=0)
    atol = finite_number("check_gradient", "atol", atol, at_least=0)
    if x.dtype != np.float64:
        raise TypeError(f"gradient check of {name} needs float64, got {x.dtype}")
    _like(analytic, x, f"the analytic gradient of {name}", name)
    analytic = as_numpy(analytic).astype(np.float64)
    if directional:
        xp = get_array_module(x)
        d = xp.asarray(np.random.default_rng(seed).standard_normal(x.shape))
        numeric = np.array([directional_derivative(f, x, d, eps)])
        with np.errstate(invalid="ignore"):     # inf - inf: a nan, refused below
            analytic = np.array([float((analytic * as_numpy(d)).sum())])
    else:
        numeric = numerical_gradient(f, x, eps)
    size = np.maximum(np.abs(analytic), np.abs(numeric))
    with np.errstate(invalid="ignore"):
        error = np.abs(analytic - numeric) - (atol + rtol * size)
    error[~(np.isfinite(analytic) & np.isfinite(numeric))] = np.inf   # (nan > 0 is False)
    worst = np.unravel_index(int(np.argmax(error)), error.shape)
    if error[worst] > 0:
        where = "along a random direction" if directional else f"at index {tuple(map(int, worst))}"
        raise GradientCheckError(
            f"gradient of {name} wrong {where}: analytic {analytic[worst]:.10g}, "
            f"numerical {numeric[worst]:.10g} (atol={atol}, rtol={rtol})")
    if signal and (size <= atol).all():
        raise GradientCheckError(
            f"gradient of {name}: the check saw no signal: the numerical and analytic "
            f"gradients are both 0 everywhere (within atol={atol}), so nothing was compared; "
            f"check at an input where the output depends on {name} (e.g. not every ReLU "
            f"input negative)")
    return float((np.abs(analytic - numeric) / (size + atol)).max())


def check_layer(layer, x, seed=0, directional=False, **tolerances):
    """Gradient-check ``layer.backward`` for the input and every parameter.

    Uses the scalar ``L = sum(forward(x) * R)`` with a fixed random ``R``, so
    ``dL/d(output) = R``. ``layer`` (float64 parameters) and ``x`` (float64)
    may live on the CPU or GPU. Returns ``{name: worst relative error}``; a
    parameter shared by two layers is checked under each name. The module
    docstring lists what else is refused.
    """
    _all_listed(layer)
    x = x.copy()
    out = _forward_twice(layer, x)
    rng = np.random.default_rng(seed)
    r = get_array_module(x).asarray(rng.standard_normal(out.shape))

    def loss():
        return (layer.forward(x) * r).sum()

    params = dict(layer.named_parameters())
    grad_x = _backward_twice(layer, x, r, params, rng)
    results = {"input": check_gradient(loss, x, grad_x, "input", directional=directional,
                                       **tolerances)}
    for name, p in params.items():
        results[name] = check_gradient(loss, p.value, p.grad.copy(), name,
                                       directional=directional, signal=p.requires_grad,
                                       **tolerances)
    return results


def _forward_twice(layer, x):
    """The output of ``layer.forward(x)``, after checking that forward leaves ``x``
    alone, keeps its dtype and device, and gives the same output twice."""
    original = x.copy()
    out = layer.forward(x)
    _unchanged(x, original, "forward changed its input in place")
    if out.dtype != x.dtype or device_of(out) != device_of(x):
        raise GradientCheckError(f"forward returned {out.dtype} on the {device_of(out)} for a "
                                 f"{x.dtype} input on the {device_of(x)}: the check needs "
                                 f"float64 throughout, on one device")
    if not _same(layer.forward(x), out):
        raise GradientCheckError(
            f"{type(layer).__name__}: forward is not deterministic: two calls on the same "
            f"input gave different outputs, so there is no function to check (dropout in "
            f"training mode? check it after layer.eval(), or fix its random state before "
            f"each forward)")
    return out


def _backward_twice(layer, x, r, params, rng):
    """The input's gradient for ``R = r``, with each parameter's ``grad`` left as one
    backward from zero leaves it. The gradients start from random values; a second
    backward, of ``2 r``, must add twice as much (backward is linear in its gradient)
    and leave the first result alone."""
    xp, unique = get_array_module(x), list({id(p): p for p in params.values()}.values())
    start = {id(p): xp.asarray(rng.standard_normal(p.shape)) for p in unique}
    for p in unique:
        p.grad[...] = start[id(p)]
    grad_x = _backward(layer, x, r)
    _like(grad_x, x, "the input's gradient", "the input")
    for name, p in params.items():
        _like(p.grad, p.value, f"{name}.grad", name)
    once, kept = {id(p): p.grad.copy() for p in unique}, grad_x.copy()
    _backward(layer, x, 2 * r)
    if not _same(grad_x, kept):
        raise GradientCheckError("the input's gradient changed when backward was called "
                                 "again: backward returns an array it reuses; return a new one")
    for name, p in params.items():
        added = once[id(p)] - start[id(p)]
        if not xp.allclose(p.grad - once[id(p)], 2 * added, rtol=1e-7, atol=1e-9):
            raise GradientCheckError(
                f"backward must add into {name}.grad (Parameter.accumulate), not assign it: "
                f"a second backward, of twice the gradient, did not add twice as much")
    for p in unique:
        p.grad[...] = once[id(p)] - start[id(p)]
    return grad_x


def _backward(layer, x, r):
    """``layer.backward`` of a copy of ``r`` after a forward of ``x``, checking that
    neither the copy nor ``x`` changed."""
    original = x.copy()
    layer.forward(x)
    g = r.copy()
    grad_x = layer.backward(g)
    _unchanged(g, r, "backward changed the gradient it was given (in place)")
    _unchanged(x, original, "backward changed its input in place")
    return grad_x


def _all_listed(layer):
    """Raise if a layer (or one inside it) holds a ``Parameter`` not in its
    ``param_names``."""
    listed = {id(p) for p in layer.parameters()}
    for m in layer.modules():
        for attr, value in vars(m).items():
            if isinstance(value, Parameter) and id(value) not in listed:
                raise GradientCheckError(
                    f"{type(m).__name__}.{attr} is a Parameter but not in param_names: nothing "
                    f"checks or trains it (add {attr!r} to {type(m).__name__}.param_names)")


def _unchanged(array, original, what):
    if not _same(array, original):
        raise GradientCheckError(f"{what}: compute into a new array instead")


def _same(a, b):
    return a.shape == b.shape and bool(get_array_module(a).array_equal(a, b, equal_nan=True))


def _like(grad, value, what, of):
    """Raise unless ``grad`` is an array of ``value``'s device, dtype and shape."""
    if not hasattr(grad, "dtype"):
        raise GradientCheckError(f"{what} is {type(grad).__name__}, not an array")
    if device_of(grad) != device_of(value):
        raise GradientCheckError(f"{what} is on the {device_of(grad)}, {of} on the "
                                 f"{device_of(value)}")
    if grad.dtype != value.dtype:
        raise GradientCheckError(f"{what} is {grad.dtype}, {of} {value.dtype}")
    if grad.shape != value.shape:
        raise GradientCheckError(f"{what} has shape {grad.shape}, {of} {value.shape}")
