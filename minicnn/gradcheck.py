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
"""
import numpy as np

from .backend import as_numpy, get_array_module


class GradientCheckError(AssertionError):
    """The analytic gradient disagrees with the numerical one."""


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of scalar ``f()`` with respect to ``x`` (changed
    in place and restored)."""
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writing into it perturbs x
    for i in range(flat.size):
        old = flat[i].item()
        flat[i] = old + eps
        plus = float(f())
        flat[i] = old - eps
        minus = float(f())
        flat[i] = old
        grad.flat[i] = (plus - minus) / (2 * eps)
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
                   directional=False, seed=0):
    """Raise ``GradientCheckError`` unless ``analytic`` is ``d f() / d x``.

    ``x`` must be float64 and is perturbed in place (then restored); ``f``
    must recompute from it. Returns the worst relative error.
    """
    if x.dtype != np.float64:
        raise TypeError(f"gradient check of {name} needs float64, got {x.dtype}")
    analytic = as_numpy(analytic).astype(np.float64)
    if analytic.shape != x.shape:
        raise GradientCheckError(f"{name}: analytic gradient has shape {analytic.shape}, "
                                 f"expected {x.shape}")
    if directional:
        xp = get_array_module(x)
        d = xp.asarray(np.random.default_rng(seed).standard_normal(x.shape))
        numeric = np.array([directional_derivative(f, x, d, eps)])
        analytic = np.array([float((analytic * as_numpy(d)).sum())])
    else:
        numeric = numerical_gradient(f, x, eps)
    error = np.abs(analytic - numeric) - (atol + rtol * np.maximum(np.abs(analytic), np.abs(numeric)))
    worst = np.unravel_index(int(np.argmax(error)), error.shape)
    if error[worst] > 0:
        where = "along a random direction" if directional else f"at index {tuple(map(int, worst))}"
        raise GradientCheckError(
            f"gradient of {name} wrong {where}: analytic {analytic[worst]:.10g}, "
            f"numerical {numeric[worst]:.10g} (atol={atol}, rtol={rtol})")
    scale = np.maximum(np.abs(analytic), np.abs(numeric)) + atol
    return float((np.abs(analytic - numeric) / scale).max())


def check_layer(layer, x, seed=0, directional=False, **tolerances):
    """Gradient-check ``layer.backward`` for the input and every parameter.

    Uses the scalar ``L = sum(forward(x) * R)`` with a fixed random ``R``, so
    ``dL/d(output) = R``. ``layer`` (float64 parameters) and ``x`` (float64)
    may live on the CPU or GPU. Returns ``{name: worst relative error}``.
    """
    xp = get_array_module(x)
    x = x.copy()
    out = layer.forward(x)
    r = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape))

    def loss():
        return (layer.forward(x) * r).sum()

    for p in layer.parameters():
        p.zero_grad()
    layer.forward(x)
    grad_x = layer.backward(r)
    results = {"input": check_gradient(loss, x, grad_x, "input", directional=directional,
                                       **tolerances)}
    for name, p in layer.named_parameters():
        results[name] = check_gradient(loss, p.value, p.grad.copy(), name,
                                       directional=directional, **tolerances)
    return results
