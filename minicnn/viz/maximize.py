"""Pictures a unit likes: activation maximization and DeepDream.

Both climb the gradient of an objective with respect to the *input*::

    x <- x + lr * step(dA/dx)

where ``A`` is a class logit (taken before any softmax: a saturated softmax
has no gradient), one unit, or a whole layer's activations. Left alone this
ascent produces high-frequency noise, so ``maximize`` adds the regularizers
of Yosinski et al. (2015), "Understanding Neural Networks Through Deep
Visualization", applied after each step:

- L2 decay:      ``x <- (1 - decay) * x``
- blur:          a Gaussian blur of width ``blur_sigma`` every ``blur_every`` steps
- norm clipping: zero the pixels whose norm over channels is below the
                 ``norm_pct`` percentile
- contribution clipping: zero the pixels whose contribution ``|sum_c x * dA/dx|``
                 is below the ``contrib_pct`` percentile
- jitter:        roll the image by a random shift before each step (and the
                 gradient back), so no single pixel alignment is rewarded.

``step`` divides the gradient by its standard deviation ("std"), or first
balances its frequency bands through a Laplacian pyramid ("laplacian"), so
that coarse structure grows as fast as fine detail.
Everything is written with ``xp``: it runs where the model lives.
"""
import math
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy, get_array_module
from .probe import as_model_input, layer_index, probing, unit_gradient

EPS = 1e-8


# -- image operations ---------------------------------------------------------------
def gaussian_blur(x, sigma):
    """Blur the last two axes of ``x (..., H, W)`` with a Gaussian of std ``sigma`` pixels.

    Separable: ``k[t] = exp(-t^2 / (2 sigma^2)) / sum``, ``|t| <= ceil(3 sigma)``,
    run along rows, then along columns; borders repeat the edge pixel.
    """
    if sigma <= 0:
        return x
    xp = get_array_module(x)
    radius = max(1, math.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-t ** 2 / (2.0 * sigma ** 2))
    kernel /= kernel.sum()
    for axis in (x.ndim - 2, x.ndim - 1):
        widths = [(0, 0)] * x.ndim
        widths[axis] = (radius, radius)
        padded = xp.pad(x, widths, mode="edge")
        n = x.shape[axis]
        x = sum(float(w) * padded.take(xp.arange(i, i + n), axis=axis)
                for i, w in enumerate(kernel))
    return x


def resize(x, hw):
    """Bilinear resize of ``x (..., H, W)`` to ``hw = (H', W')`` (pixel centres aligned)."""
    xp = get_array_module(x)
    for axis, n_out in ((x.ndim - 2, hw[0]), (x.ndim - 1, hw[1])):
        n_in = x.shape[axis]
        pos = xp.clip((xp.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        lo = xp.floor(pos).astype(np.int64)
        hi = xp.minimum(lo + 1, n_in - 1)
        w = (pos - lo).astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1 - axis))
        x = x.take(lo, axis=axis) * (1 - w) + x.take(hi, axis=axis) * w
    return x


def _down(x):
    return gaussian_blur(x, 1.0)[..., ::2, ::2]


def _up(x, hw):
    return gaussian_blur(x.repeat(2, axis=-2).repeat(2, axis=-1)[..., :hw[0], :hw[1]], 1.0)


def laplacian_pyramid(x, levels=4):
    """Bands ``[finest, ..., coarsest]`` of ``x (..., H, W)``.

    ``band_l = x_l - up(down(x_l))`` with ``x_{l+1} = down(x_l)`` (blur, keep
    every second pixel); the last entry is the coarsest ``x_L`` itself. Stops
    early once a side would drop below 2 pixels.
    """
    bands = []
    for _ in range(levels - 1):
        if min(x.shape[-2:]) < 2:
            break
        low = _down(x)
        bands.append(x - _up(low, x.shape[-2:]))
        x = low
    return bands + [x]


def reconstruct(bands):
    """Inverse of ``laplacian_pyramid``: ``x_l = band_l + up(x_{l+1})``."""
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = band + _up(x, band.shape[-2:])
    return x


def laplacian_normalize(g, levels=4):
    """Divide each Laplacian band of ``g`` by its std, then recombine (same shape as ``g``)."""
    return reconstruct([b / (b.std() + EPS) for b in laplacian_pyramid(g, levels)])


def _normalized(g, mode, levels):
    if mode == "laplacian":
        g = laplacian_normalize(g, levels)
    elif mode != "std":
        raise ValueError(f"normalize must be 'std' or 'laplacian', got {mode!r}")
    return g / (g.std() + EPS)


def _jittered_gradient(part, x, objective, shift):
    """Objective and ``dA/dx`` at ``x`` rolled by ``shift = (dy, dx)`` (gradient rolled back).

    ``objective(act)`` returns ``(A, dA/d(act))``.
    """
    xp = get_array_module(x)
    value, seed = objective(part.forward(xp.roll(x, shift, axis=(2, 3))))
    g = part.backward(seed)
    return float(value), xp.roll(g, (-shift[0], -shift[1]), axis=(2, 3))


def _unit_objective(channel, position):
    def objective(act):
        seed = unit_gradient(act, channel, position)
        return (act * seed).sum(), seed          # linear in act: A = sum(seed * act)
    return objective


def _shift(rng, jitter):
    return tuple(int(s) for s in rng.integers(-jitter, jitter + 1, 2)) if jitter else (0, 0)


def _model_dtype(model):
    params = model.parameters()
    return params[0].value.dtype if params else np.float32


# -- activation maximization --------------------------------------------------------
@dataclass
class Maximized:
    """``image (C, H, W)`` after ascent; ``objective (steps,)`` measured before each step."""
    image: np.ndarray
    objective: np.ndarray
    layer: int
    channel: int
    position: object = None     # (y, x), None (centre unit) or "mean"


def maximize(model, channel, layer=None, position=None, steps=200, lr=0.05, decay=0.01,
             blur_every=4, blur_sigma=0.5, norm_pct=None, contrib_pct=None, jitter=1,
             normalize="std", levels=4, value_range=None, init_std=0.1, seed=0,
             input_shape=None):
    """Gradient ascent from seeded noise on the input to excite one unit.

    ``layer=None`` is the last layer that is not a softmax, so ``channel`` is
    a class logit. On a conv/pool layer the objective is the unit at
    ``position = (y, x)``, the centre unit (``None``, as in Yosinski's
    toolbox) or the channel's spatial mean (``"mean"``). ``lr`` is in units of the normalized gradient's std; ``value_range =
    (lo, hi)`` clips pixels after every step (e.g. the data's range).
    Percentiles ``norm_pct`` / ``contrib_pct`` in 0..100 (``None``: off).
    """
    layer = layer_index(model, layer)
    shape = tuple(input_shape or model.input_shape)
    rng = np.random.default_rng(seed)
    x = as_model_input(model, (init_std * rng.standard_normal((1,) + shape))
                       .astype(_model_dtype(model)))
    xp = get_array_module(x)
    part = model[:layer + 1]
    objective = _unit_objective(channel, position)
    history = []
    with probing(model):
        for step in range(steps):
            value, g = _jittered_gradient(part, x, objective, _shift(rng, jitter))
            history.append(value)
            x = (x + lr * _normalized(g, normalize, levels)) * (1.0 - decay)
            if blur_every and (step + 1) % blur_every == 0:
                x = gaussian_blur(x, blur_sigma)
            if norm_pct:
                norm = xp.sqrt((x ** 2).sum(axis=1, keepdims=True))
                x = x * (norm >= xp.percentile(norm, norm_pct))
            if contrib_pct:
                contribution = xp.abs((x * g).sum(axis=1, keepdims=True))
                x = x * (contribution >= xp.percentile(contribution, contrib_pct))
            if value_range is not None:
                x = xp.clip(x, *value_range)
    return Maximized(as_numpy(x[0]), np.asarray(history), layer, channel, position)


# -- DeepDream ------------------------------------------------------------------------
@dataclass
class Dream:
    """``image (C, H, W)`` after dreaming; ``objective`` per step over all octaves."""
    image: np.ndarray
    objective: np.ndarray
    layer: int


def deepdream(model, image, layer, steps=10, lr=0.02, octaves=3, octave_scale=1.4, jitter=2,
              objective="l2", value_range=None, seed=0):
    """Amplify what ``layer`` already sees in ``image (C, H, W)``.

    Objective ``0.5 * sum(act^2)`` (``"l2"``; its gradient is ``act`` itself)
    or ``mean(act)`` (``"mean"``). Octaves: the image is shrunk ``octaves - 1``
    times by ``octave_scale``; from the smallest up, ascend ``steps`` times
    (step ``lr * g / mean|g|``, with jitter), then enlarge the detail added so
    far and add it to the next larger image. ``model[:layer+1]`` must accept
    every octave's size (conv and pool layers do).
    """
    if objective not in ("l2", "mean"):
        raise ValueError(f"objective must be 'l2' or 'mean', got {objective!r}")
    layer = layer_index(model, layer)
    part = model[:layer + 1]
    rng = np.random.default_rng(seed)
    base = as_model_input(model, np.asarray(as_numpy(image), dtype=_model_dtype(model))[None])
    xp = get_array_module(base)
    if objective == "l2":
        measure = lambda act: (0.5 * (act ** 2).sum(), act)
    else:
        measure = lambda act: (act.mean(), xp.full_like(act, 1.0 / act.size))
    bases = [base]
    for _ in range(octaves - 1):
        h, w = bases[-1].shape[2:]
        bases.append(resize(bases[-1], (max(1, round(h / octave_scale)),
                                        max(1, round(w / octave_scale)))))
    detail = xp.zeros_like(bases[-1])
    history = []
    with probing(model):
        for octave_base in reversed(bases):
            x = octave_base + resize(detail, octave_base.shape[2:])
            for _ in range(steps):
                value, g = _jittered_gradient(part, x, measure, _shift(rng, jitter))
                history.append(value)
                x = x + lr * g / (xp.abs(g).mean() + EPS)
                if value_range is not None:
                    x = xp.clip(x, *value_range)
            detail = x - octave_base
    return Dream(as_numpy(x[0]), np.asarray(history), layer)
