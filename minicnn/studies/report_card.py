"""A report card of every attribution method of ``minicnn.viz`` on one trained network.

Per method (``card_methods``), on the first ``N`` test images ``x (N, C, H, W)`` and
their predicted classes:

- **sanity** (Adebayo et al. 2018, ``sanity.py``): the Spearman rank correlation of each
  image's map with its map on the trained model, after cascading randomization (the
  parameter layers re-initialized from the logits down, ``sanity.randomize``), on the
  first ``M`` images; the verdict by ``sanity_verdict``;
- **deletion and insertion AUC** (Petsiuk et al. 2018, ``faithfulness.py``);
- its **identity residual** where it has one (``IDENTITIES``), from the map itself;
- its **time per image** (the maps on the trained model, ``chunk`` images at a time).

Each method's numbers are cached as one ``.npz`` in ``cache_dir/KEY/`` (``KEY``: a hash
of the weights, the images and every setting), so a second card is fast; an unreadable
cache file is recomputed (one line to ``log``). ``RUN_DIR/report-card.md`` and ``.png``
are written by ``report_card_run.write_run_card`` (``minicnn report-card`` and the
explorer).
"""
import hashlib
import json
import os
import time
import zipfile

import numpy as np

from .. import __version__
from ..backend import as_numpy, get_array_module
from ..files.model_files import atomic_savez
from ..viz import (class_probabilities, gradient_x_input, guided_grad_cam, lrp, occlusion,
                   target_value)
from .faithfulness import area_under_curve, perturbation_curves, sobel_magnitude
from .sanity import (BACKGROUND, WHITE, _last_conv_relu, method_suite, parameter_layers, randomize,
                     spearman)

SETTINGS = dict(ig_steps=8, smooth_samples=4, epsilon=0.25, occlusion_size=6,
                occlusion_stride=2, steps=20, seed=0, chunk=50)
COMPOSITE_NAMES = {"epsilon_plus": "LRP epsilon-plus",
                   "epsilon_alpha2_beta1": "LRP epsilon-alpha2-beta1",
                   "epsilon_plus_flat": "LRP epsilon-plus-flat",
                   "epsilon_alpha2_beta1_flat": "LRP epsilon-alpha2-beta1-flat"}
SMALL, LARGE = 0.3, 0.5     # Cohen's (1988) conventional "medium" and "large" correlations


def card_methods(model, settings=SETTINGS, background=BACKGROUND, high=WHITE):
    """``{name: fn(model, x, classes) -> map}``: ``sanity.method_suite`` (12 methods, with
    ``settings``' IG nodes, SmoothGrad samples and epsilon) plus guided Grad-CAM, occlusion
    (``p(x) - p(x occluded)``, squares of the background), LRP-0 and the other composites."""
    s = settings
    methods = method_suite(model, background, high, s["ig_steps"], s["smooth_samples"],
                           s["epsilon"])
    cam = _last_conv_relu(model)
    methods["guided Grad-CAM"] = lambda m, x, t: guided_grad_cam(m, x, t, cam)
    methods["occlusion"] = lambda m, x, t: _occlusion(m, x, t, s)
    methods["LRP-0"] = lambda m, x, t: lrp(m, x, t, rule="0")
    for composite, name in COMPOSITE_NAMES.items():
        methods[name] = (lambda c: lambda m, x, t: lrp(m, x, t, composite=c,
                                                       epsilon=s["epsilon"]))(composite)
    return methods


def _occlusion(model, x, classes, s):
    """Occlusion as an attribution: how much covering a pixel lowers the class's probability."""
    xp = get_array_module(x)
    p = class_probabilities(model, x)[xp.arange(x.shape[0]), xp.asarray(as_numpy(classes))]
    covered = occlusion(model, x, classes, s["occlusion_size"], s["occlusion_stride"],
                        fill=BACKGROUND)
    return p.reshape(-1, 1, 1, 1) - covered


def _logit_change(model, x, classes):
    """``f(x) - f(x')`` of each image's class logit, ``x'`` the all-background image, ``(N,)``."""
    blank = x * 0 + BACKGROUND
    return as_numpy(target_value(model, x, classes) - target_value(model, blank, classes))


def _sums(a):
    return as_numpy(a).reshape(a.shape[0], -1).sum(axis=1)


def _largest_gap(a, b):
    """``max |a - b|`` per image, ``(N,)``."""
    return np.abs(as_numpy(a - b)).reshape(a.shape[0], -1).max(axis=1)


# name: (the identity, its residual per image (N,) from the method's own map a)
IDENTITIES = {
    "integrated gradients": ("completeness: sum - (f(x) - f(x'))",
                             lambda m, x, t, a: _sums(a) - _logit_change(m, x, t)),
    "DeepLIFT": ("sum-to-delta: sum - (f(x) - f(x'))",
                 lambda m, x, t, a: _sums(a) - _logit_change(m, x, t)),
    "gradient x input": ("max |gradient x input - LRP-0|",    # equal on a ReLU net
                         lambda m, x, t, a: _largest_gap(a, lrp(m, x, t, rule="0"))),
    "LRP-0": ("max |LRP-0 - gradient x input|",
              lambda m, x, t, a: _largest_gap(a, gradient_x_input(m, x, t))),
}


def sanity_verdict(top_random, all_random):
    """``"passes"``, ``"mixed"`` or ``"fails"`` from the mean signed rank correlation with
    the trained map once the logits layer is random (``top_random``) and once every
    parameter layer is (``all_random``). Adebayo et al. read their curves and give no
    number; this makes docs/studies.md's reading explicit with Cohen's bounds: passes
    below ``SMALL`` (0.3) with everything random and below ``LARGE`` (0.5) with the
    logits random; fails at ``LARGE`` or more with everything random, or at ``LARGE``
    with the logits random while staying at ``SMALL`` or more; mixed otherwise."""
    if all_random < SMALL and top_random < LARGE:
        return "passes"
    if all_random >= LARGE or (top_random >= LARGE and all_random >= SMALL):
        return "fails"
    return "mixed"


def card_key(model, x, sanity_images, settings, device):
    """A short hex digest of the weights, the images and every setting."""
    h = hashlib.sha1(json.dumps(dict(settings, sanity_images=sanity_images, device=device,
                                     version=__version__), sort_keys=True).encode())
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(value).tobytes())
    h.update(np.ascontiguousarray(as_numpy(x)).tobytes())
    return h.hexdigest()[:16]


FIELDS = ("deletion", "insertion", "spearman", "spearman_abs", "residual", "seconds")


def method_scores(model, randomized, x, classes, name, fn, sanity_images, settings):
    """``{field: array}`` for one method (``FIELDS``): ``deletion``, ``insertion (N,)``;
    ``spearman``, ``spearman_abs (S, M)`` per cascading stage (``randomized``: the S
    models) and image; ``residual (N,)`` (empty without an identity); ``seconds``."""
    s, n = settings, x.shape[0]
    start = time.perf_counter()
    maps = [fn(model, x[lo:lo + s["chunk"]], classes[lo:lo + s["chunk"]])
            for lo in range(0, n, s["chunk"])]
    host = np.concatenate([as_numpy(a) for a in maps])      # on a GPU: waits for the maps
    seconds = time.perf_counter() - start
    residual = np.concatenate([IDENTITIES[name][1](model, x[lo:lo + s["chunk"]],
                                                   classes[lo:lo + s["chunk"]], a)
                               for lo, a in zip(range(0, n, s["chunk"]), maps)]) \
        if name in IDENTITIES else np.empty(0)
    maps = host
    scores = dict(curves(model, x, maps, classes, s), residual=residual, seconds=seconds)
    m = sanity_images
    signed, absolute = np.empty((len(randomized), m)), np.empty((len(randomized), m))
    for k, random_model in enumerate(randomized):
        other = as_numpy(fn(random_model, x[:m], classes[:m]))
        signed[k], absolute[k] = spearman(maps[:m], other), spearman(abs(maps[:m]), abs(other))
    return dict(scores, spearman=signed, spearman_abs=absolute)


def curves(model, x, scores, classes, settings):
    """``{"deletion": (N,), "insertion": (N,)}`` areas for the pixel order of ``scores``."""
    return {mode: area_under_curve(perturbation_curves(model, x, scores, classes, mode,
                                                       settings["steps"],
                                                       seed=settings["seed"]))
            for mode in ("deletion", "insertion")}


def report_card(model, x, cache_dir=None, sanity_images=48, settings=SETTINGS, device="cpu",
                progress=None, log=print, from_cache=None):
    """``{name: scores}`` for every method of ``card_methods`` (``method_scores``), then
    the baselines ``"random"`` and ``"Sobel edges"`` (their curves). ``x (N, C, H, W)``
    on the model's device; the target is each image's predicted class. ``progress(name)``
    is called before each method; cached methods are read from ``cache_dir/KEY/`` (their
    names appended to the list ``from_cache`` if one is given)."""
    classes = as_numpy(class_probabilities(model, x)).argmax(axis=1)
    m = min(sanity_images, x.shape[0])
    folder = None if cache_dir is None else os.path.join(
        cache_dir, card_key(model, x, m, settings, device))
    top_down, randomized = parameter_layers(model)[::-1], []
    card = {}
    for name, fn in card_methods(model, settings).items():
        if progress is not None:
            progress(name)
        path = None if folder is None else os.path.join(folder, slug(name) + ".npz")
        card[name] = _read(path, log)
        if card[name] is not None and from_cache is not None:
            from_cache.append(name)
        if card[name] is None:
            if not randomized:                      # built once, only when needed
                randomized = [randomize(model, top_down[:k], settings["seed"])
                              for k in range(1, len(top_down) + 1)]
            card[name] = method_scores(model, randomized, x, classes, name, fn, m, settings)
            if path is not None:
                atomic_savez(path, card[name])
    random_order = np.random.default_rng(settings["seed"] + 1).random((x.shape[0],
                                                                       *x.shape[2:]))
    for name, scores in (("random", random_order), ("Sobel edges", sobel_magnitude(x))):
        path = None if folder is None else os.path.join(folder, slug(name) + ".npz")
        card[name] = _read(path, log, ("deletion", "insertion"))
        if card[name] is None:
            card[name] = curves(model, x, scores, classes, settings)
            if path is not None:
                atomic_savez(path, card[name])
    return card


def slug(name):
    """A method's name as a file name: ``"LRP epsilon"`` -> ``"lrp-epsilon"``."""
    return "".join(c if c.isalnum() else "-" for c in name.lower())


def _read(path, log, fields=FIELDS):
    """A cached method's scores, or None (absent; or unreadable: said in one line)."""
    if path is None or not os.path.exists(path):
        return None
    try:
        with np.load(path) as f:
            return {k: f[k] for k in fields}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        log(f"report card: the cache file {path} is unreadable ({type(err).__name__}); "
            f"computing it again")
        return None


__all__ = ["card_methods", "report_card", "method_scores", "sanity_verdict", "card_key",
           "slug", "IDENTITIES", "SETTINGS"]
