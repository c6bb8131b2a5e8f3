"""Which input pixels affect a target the most: gradient-based attribution.

Every method here is ``method(model, x, target, ...)`` with ``x (N, C, H, W)``
on the CPU or the GPU, and returns an array on the same device shaped like
``x`` (see ``targets`` for what ``target`` may be: a class, ``None`` for the
predicted class, or a ``Unit``).

Saliency, deconvnet and guided backprop are one backward pass each; they
differ *only* in what a ReLU does with the incoming gradient ``g`` (``x`` is
the ReLU's forward input)::

    saliency         g * (x > 0)               the chain rule: the true gradient
    deconvnet        max(g, 0)                 forward mask dropped, negatives cut
    guided backprop  g * (x > 0) * (g > 0)     both masks

Conv and dense layers pass ``g`` back through their transposed weights and max
pooling routes it to the stored switches (Zeiler's "unpooling") in all three.
So ``backprop(model, x, target, rule)`` (``minicnn.viz.backward``: the ReLU's rule
swapped, ``minicnn.viz.rules``) is the whole method; see ``docs/backward-rules.md``.

SmoothGrad and integrated gradients average many such gradients.
"""
import numpy as np

from ..backend import get_array_module
from ..arguments import finite_number, whole_number
from .backward import backprop
from .targets import Resolved, as_baseline, resolve_target

MAX_BATCH = 256    # images per backward pass when a method needs the gradient at many points

CHANNEL_REDUCTIONS = (None, "max")


def saliency(model, x, target, abs=False, reduce_channels=None):
    """Simonyan et al.'s saliency map: ``d target / d x``, ``(N, C, H, W)``.

    ``abs=True`` takes ``|d target / d x|``. ``reduce_channels="max"`` keeps, at
    each pixel, the channel value of largest magnitude (sign kept) and returns
    ``(N, 1, H, W)``; with ``abs=True`` that is Simonyan's ``max_c |w_c|``.
    """
    if reduce_channels not in CHANNEL_REDUCTIONS:
        raise ValueError(f"reduce_channels must be one of {CHANNEL_REDUCTIONS}, "
                         f"got {reduce_channels!r}")
    grad = backprop(model, x, target, "gradient")[0]
    xp = get_array_module(grad)
    if abs:
        grad = xp.abs(grad)
    if reduce_channels == "max":
        pick = xp.abs(grad).argmax(axis=1)[:, None]                    # (N, 1, H, W)
        grad = xp.take_along_axis(grad, pick, axis=1)
    return grad


def deconvnet(model, x, target):
    """Zeiler & Fergus's deconvnet projection of ``target`` to the input, ``(N, C, H, W)``.

    The backward pass with ReLU rule ``max(g, 0)``: which units were on in the
    forward pass is ignored, so without max pooling (whose switches depend on
    the input) the map does not depend on the input at all.
    """
    return backprop(model, x, target, "deconvnet")[0]


def guided_backprop(model, x, target):
    """Springenberg et al.'s guided backpropagation, ``(N, C, H, W)``.

    The backward pass with ReLU rule ``g * (x > 0) * (g > 0)`` at *every* ReLU,
    those after dense layers included: a pixel's value is kept only along paths
    where the unit was on and the signal from above was positive.
    """
    return backprop(model, x, target, "guided")[0]


def smoothgrad(model, x, target, n_samples=25, noise_level=0.15, seed=0):
    """Smilkov et al.'s SmoothGrad: the mean gradient over noisy copies of ``x``.

    ``mean_s d target / d x (x + e_s)`` with ``e_s ~ N(0, sigma^2)`` and
    ``sigma = noise_level * (max(x_n) - min(x_n))`` per image (a fraction of
    its range). ``e_s = sigma * z_s``, where ``z_s`` is the ``s``-th draw
    ``rng.standard_normal(x.shape)`` of ``rng = np.random.default_rng(seed)``,
    cast to ``x``'s dtype and put on its device: the noise can be reproduced,
    and CPU and GPU results agree. The target (predicted class, strongest
    position) is fixed on the clean ``x``. ``(N, C, H, W)``.
    """
    n_samples = whole_number("smoothgrad", "n_samples", n_samples)
    noise_level = finite_number("smoothgrad", "noise_level", noise_level, at_least=0)
    xp = get_array_module(x)
    target = resolve_target(model, x, target)
    n = x.shape[0]
    spread = (x.reshape(n, -1).max(axis=1) - x.reshape(n, -1).min(axis=1))
    sigma = (noise_level * spread).reshape(n, 1, 1, 1)
    rng = np.random.default_rng(seed)
    noises = [rng.standard_normal(x.shape).astype(x.dtype) for _ in range(n_samples)]
    total = xp.zeros_like(x)
    for grad in gradients_at(model, lambda s: x + sigma * xp.asarray(noises[s]), n_samples,
                             target):
        total += grad
    return total / n_samples


def integrated_gradients(model, x, target, baseline=None, steps=50, return_delta=False,
                         method="trapezoid"):
    """Sundararajan et al.'s integrated gradients, ``(N, C, H, W)``.

    Along the straight path ``x(a) = x' + a (x - x')`` from the baseline ``x'``
    (default: zeros) to ``x``::

        IG = (x - x') * integral_0^1 d target / d x (x(a)) da  ~  (x - x') * sum_i w_i grad(a_i)

    ``method="trapezoid"``: ``steps + 1`` evenly spaced ``a_i`` (ends weighted 1/2);
    ``"gausslegendre"``: ``steps`` Gauss-Legendre nodes on [0, 1] (Captum's default,
    and no node sits where a ReLU kink may lie at ``a = 0`` or ``1``). Completeness:
    ``sum(IG) ~ f(x) - f(x')`` per image, exactly for a network without kinks and
    closer as ``steps`` grows. ``return_delta=True`` also returns
    ``sum(IG) - (f(x) - f(x'))``, ``(N,)``.

    Captum: the trapezoid result equals the mean of ``IntegratedGradients`` with
    ``method="riemann_left"`` and ``"riemann_right"`` at ``n_steps=steps``.
    Captum's ``"riemann_trapezoid"`` with ``n_steps=steps + 1`` uses the same
    points but weights ``1 / n_steps`` (ends halved) that sum to
    ``steps / (steps + 1)``, so it gives this result times that factor.
    ``"gausslegendre"`` equals Captum's ``method="gausslegendre"``, ``n_steps=steps``.
    """
    steps = whole_number("integrated_gradients", "steps", steps)
    xp = get_array_module(x)
    baseline = as_baseline(x, baseline, "integrated_gradients")
    target = resolve_target(model, x, target)
    alphas, weights = (q.astype(x.dtype) for q in _quadrature(method, steps))  # float32 stays
    total = xp.zeros_like(x)
    points = gradients_at(model, lambda i: baseline + alphas[i] * (x - baseline), len(alphas),
                          target)
    for w, grad in zip(weights, points):
        total += w * grad
    attr = (x - baseline) * total
    if return_delta:
        start = backprop(model, baseline, target)[1]
        end = backprop(model, x, target)[1]
        return attr, attr.reshape(x.shape[0], -1).sum(axis=1) - (end - start)
    return attr


def gradients_at(model, point, count, target, rule="gradient", max_batch=MAX_BATCH):
    """The gradients of ``target`` at ``point(0), ..., point(count - 1)`` (arrays shaped
    like the batch ``x (N, C, H, W)``), in order. Several points share one forward and
    backward pass: ``max(1, max_batch // N)`` of them are stacked into one batch (as
    Captum's ``internal_batch_size`` does), with the target repeated for each, since
    a pass over many images costs far less than as many passes over one."""
    xp = get_array_module(point(0))
    per_pass = max(1, max_batch // point(0).shape[0])
    for start in range(0, count, per_pass):
        group = [point(i) for i in range(start, min(count, start + per_pass))]
        n, k = group[0].shape[0], len(group)
        where = (xp.arange(n * k),) + tuple(xp.tile(a, k) for a in target.where[1:])
        grads = backprop(model, xp.concatenate(group), Resolved(target.index, where), rule)[0]
        for j in range(k):
            yield grads[j * n:(j + 1) * n]


IG_METHODS = ("trapezoid", "gausslegendre")


def _quadrature(method, steps):
    """Nodes ``a_i`` in [0, 1] and weights ``w_i`` (summing to 1) of the path integral."""
    if method == "trapezoid":
        alphas = np.arange(steps + 1) / steps
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
        return alphas, weights
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    raise ValueError(f"integrated_gradients method must be one of {IG_METHODS}, got {method!r}")


__all__ = ["saliency", "deconvnet", "guided_backprop", "smoothgrad", "integrated_gradients"]
