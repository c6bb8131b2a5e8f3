"""Sanity checks for saliency maps (Adebayo et al. 2018, "Sanity checks for saliency maps").

A map that explains the *model* must change when the model does. Three tests:

- **cascading randomization**: re-initialize the parameter layers one after the
  other from the top (logits first) down to the first conv; after each step
  compare every method's map with its map on the trained model;
- **independent randomization**: re-initialize one layer at a time, the others trained;
- **data randomization**: train the same net on true and on permuted labels and
  compare their maps (``data_randomization``).

The comparison is the Spearman rank correlation per image between the two maps
(flattened), of the signed maps and of their absolute values as the paper does::

    rho = pearson(rank(a), rank(b))        ranks 0..P-1, tied values get their mean rank

(tied ranks matter here: Grad-CAM and guided backprop give many exact zeros). A
map that is constant has no ranking, so its rho is ``nan``; means skip those and
``undefined`` counts them. A method *passes* when rho falls towards 0 as the
weights are randomized; a method whose rho stays high explains the input, not the model.

Re-initialization uses the layer's own initializer (``layer.init``, ``minicnn.init``)
with a generator seeded by ``SeedSequence(seed, spawn_key=(layer index,))``: a layer gets
the same random weights in the cascading and the independent test (a plain ``[seed, i]``
seed would equal the seed ``seed`` for ``i = 0``: trailing zeros do not change a SeedSequence).
"""
import warnings
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy, get_array_module
from ..data import MNIST_MEAN, MNIST_STD
from ..files.model_files import architecture, build
from ..init import initial_weights
from ..layers import Conv2D, ReLU
from ..viz import (deconvnet, deeplift, excitation_backprop, grad_cam, grad_cam_pp,
                   gradient_x_input, guided_backprop, integrated_gradients, lrp, saliency,
                   smoothgrad)

BACKGROUND = (0.0 - MNIST_MEAN) / MNIST_STD      # a black MNIST pixel, normalized
WHITE = (1.0 - MNIST_MEAN) / MNIST_STD


def method_suite(model, background=BACKGROUND, high=WHITE, ig_steps=16, smooth_samples=8,
                 epsilon=0.25):
    """The methods compared, ``{name: fn(model, x, target) -> map}``; maps are
    ``(N, C, H, W)`` or ``(N, 1, H, W)`` (the CAMs). Integrated gradients and DeepLIFT
    start from the background image (all pixels ``background``); the box rule of the
    epsilon-gamma-box composite uses the pixel bounds ``background .. high``; Grad-CAM
    and Grad-CAM++ look at the ReLU after the last conv of ``model``."""
    cam_layer = _last_conv_relu(model)

    def base(x):
        return get_array_module(x).full_like(x, background)
    return {
        "gradient": lambda m, x, t: saliency(m, x, t),
        "gradient x input": lambda m, x, t: gradient_x_input(m, x, t),
        "guided backprop": lambda m, x, t: guided_backprop(m, x, t),
        "deconvnet": lambda m, x, t: deconvnet(m, x, t),
        "integrated gradients": lambda m, x, t: integrated_gradients(
            m, x, t, baseline=base(x), steps=ig_steps, method="gausslegendre"),
        "SmoothGrad": lambda m, x, t: smoothgrad(m, x, t, n_samples=smooth_samples),
        "Grad-CAM": lambda m, x, t: grad_cam(m, x, t, cam_layer),
        "Grad-CAM++": lambda m, x, t: grad_cam_pp(m, x, t, cam_layer),
        "LRP epsilon": lambda m, x, t: lrp(m, x, t, rule="epsilon", epsilon=epsilon),
        "LRP epsilon-gamma-box": lambda m, x, t: lrp(
            m, x, t, composite="epsilon_gamma_box", epsilon=epsilon, low=background, high=high),
        "DeepLIFT": lambda m, x, t: deeplift(m, x, t, baseline=base(x)),
        "excitation backprop": lambda m, x, t: excitation_backprop(m, x, t),
    }


def _last_conv_relu(model):
    convs = [i for i, layer in enumerate(model.layers) if isinstance(layer, Conv2D)]
    if not convs:
        raise ValueError("the sanity checks' Grad-CAM needs a model with a Conv2D layer")
    i = convs[-1]
    return i + 1 if i + 1 < len(model.layers) and isinstance(model.layers[i + 1], ReLU) else i


def rank(a):
    """Ranks ``0 .. P-1`` along the last axis of ``a (N, P)``; tied values share their
    mean rank (``[3, 1, 1, 2] -> [3, 0.5, 0.5, 2]``): ``scipy.stats.rankdata``, from 0."""
    from scipy.stats import rankdata
    return rankdata(np.asarray(a, np.float64), axis=1) - 1


def spearman(a, b):
    """Spearman rank correlation of each image's maps, ``a, b (N, ...)`` -> ``(N,)``;
    ``nan`` where either map is constant."""
    ra, rb = (rank(as_numpy(m).reshape(m.shape[0], -1)) for m in (a, b))
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (ra * rb).sum(axis=1) / denom, np.nan)


def parameter_layers(model):
    """Indices of the layers with weights (conv, dense), bottom to top."""
    return [i for i, layer in enumerate(model.layers) if layer.param_names]


def randomize(model, indices, seed=0):
    """A copy of ``model`` whose layers ``indices`` are re-initialized (weights and
    biases, by each layer's own ``init``); the other layers keep their weights."""
    new = build(architecture(model))                      # a fresh copy, same dtype and device
    new.astype(next(iter(model.parameters())).value.dtype).to(model.device)
    new.load_state_dict(model.state_dict()).train(model.training)
    for i in indices:
        layer = new.layers[i]
        shape = layer.weight.shape
        fan_in, fan_out = int(np.prod(shape[1:])), int(shape[0] * np.prod(shape[2:]))
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        w, b = initial_weights(getattr(layer, "init", "he"), shape, fan_in, fan_out, rng)
        xp = get_array_module(layer.weight.value)
        layer.weight.value = xp.asarray(w, dtype=layer.weight.value.dtype)
        if layer.bias is not None:
            layer.bias.value = xp.asarray(b, dtype=layer.bias.value.dtype)
    return new


@dataclass
class Randomization:
    """One test's correlations. ``stages (S,)``: what is random at each stage (``"trained"``
    first); ``randomized``: the layer indices random at each stage; ``spearman`` and
    ``spearman_abs (M, S, N)``: per method, stage and image, with the trained model's map."""
    test: str
    methods: list
    stages: list
    randomized: list
    spearman: np.ndarray
    spearman_abs: np.ndarray

    def mean(self, absolute=False):
        """``(M, S)``: the correlation averaged over the images where it is defined."""
        r = self.spearman_abs if absolute else self.spearman
        with warnings.catch_warnings():                  # a row of nan (all maps constant)
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(r, axis=2)

    def undefined(self):
        """``(M, S)``: how many images had a constant map (no rank correlation)."""
        return np.isnan(self.spearman).sum(axis=2)


def compare_maps(models, x, target, methods):
    """``(M, len(models), N)`` signed and absolute rank correlations of each method's
    map on each model with its map on ``models[0]``."""
    signed = np.empty((len(methods), len(models), x.shape[0]))
    absolute = np.empty_like(signed)
    for m, fn in enumerate(methods.values()):
        ref = fn(models[0], x, target)
        for s, model in enumerate(models):
            out = ref if s == 0 else fn(model, x, target)
            signed[m, s] = spearman(ref, out)
            absolute[m, s] = spearman(abs(ref), abs(out))
    return signed, absolute


def _names(model, indices):
    return [f"{i} {type(model.layers[i]).__name__}" for i in indices]


def cascading_randomization(model, x, target, methods=None, seed=0):
    """Stage ``k`` re-initializes the top ``k`` parameter layers (logits first): a
    ``Randomization`` with ``S = 1 + number of parameter layers`` stages."""
    methods = method_suite(model) if methods is None else methods
    top_down = parameter_layers(model)[::-1]
    cuts = [top_down[:k] for k in range(len(top_down) + 1)]
    models = [model] + [randomize(model, c, seed) for c in cuts[1:]]
    stages = ["trained"] + [f"up to {n}" for n in _names(model, top_down)]
    return Randomization("cascading", list(methods), stages, cuts,
                         *compare_maps(models, x, target, methods))


def independent_randomization(model, x, target, methods=None, seed=0):
    """Stage ``k`` re-initializes only the ``k``-th parameter layer from the top."""
    methods = method_suite(model) if methods is None else methods
    top_down = parameter_layers(model)[::-1]
    cuts = [[]] + [[i] for i in top_down]
    models = [model] + [randomize(model, c, seed) for c in cuts[1:]]
    stages = ["trained"] + [f"only {n}" for n in _names(model, top_down)]
    return Randomization("independent", list(methods), stages, cuts,
                         *compare_maps(models, x, target, methods))


@dataclass
class DataRandomization:
    """Maps of one architecture trained on true and on permuted labels. ``spearman``
    and ``spearman_abs (M, N)``: per method and test image; ``train_accuracy`` and
    ``test_accuracy``: ``{"true labels": a, "permuted labels": a}`` (fractions; the
    permuted model's training accuracy is on its permuted labels)."""
    methods: list
    steps: int
    train_accuracy: dict
    test_accuracy: dict
    spearman: np.ndarray
    spearman_abs: np.ndarray


def data_randomization(make_model, images, labels, x_test, y_test, steps, methods=None,
                       batch_size=64, lr=1e-3, seed=0):
    """Train ``make_model()`` twice for ``steps`` Adam steps (``transfer.train_steps``) on
    ``images (N, C, H, W)``: with ``labels`` and with a seeded permutation of them; then
    compare each method's maps of the two models on ``x_test`` for the classes
    ``y_test`` (the true labels, the same target for both). A ``DataRandomization``."""
    from .gallery import predict_proba
    from .transfer import train_steps
    labels = np.asarray(as_numpy(labels)).astype(np.int64)
    permuted = np.random.default_rng(seed).permutation(labels)
    models, train_acc, test_acc = [], {}, {}
    for name, y in (("true labels", labels), ("permuted labels", permuted)):
        model = make_model()
        train_steps(model, images, get_array_module(images).asarray(y), steps,
                    batch_size=batch_size, lr=lr, seed=seed)
        models.append(model)
        train_acc[name] = float((predict_proba(model, images).argmax(axis=1) == y).mean())
        test_acc[name] = float((predict_proba(model, x_test).argmax(axis=1)
                                == as_numpy(y_test)).mean())
    methods = method_suite(models[0]) if methods is None else methods
    signed, absolute = compare_maps(models, x_test, y_test, methods)
    return DataRandomization(list(methods), steps, train_acc, test_acc,
                             signed[:, 1], absolute[:, 1])


def draw_sanity(cascading, independent, data=None):
    """One ``matplotlib.figure.Figure`` (no pyplot, the backend untouched): mean rank
    correlation with the trained map per method against the stage, signed and absolute
    maps, for the cascading and the independent test, their legend under them; ``data``
    adds bars of the data randomization test below. Two panels wide, so that it reads
    at a page's width."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10.4, 9.6 + (4.2 if data is not None else 0)), layout="constrained")
    lines, bars = (fig.subfigures(2, 1, height_ratios=[9.6, 4.2]) if data is not None
                   else (fig, None))
    axes = lines.subplots(2, 2)
    colors = [f"C{k}" for k in range(10)] + ["black", "darkgoldenrod"]
    styles = ["-", "--"]
    for row, test in zip(axes, (cascading, independent)):
        for ax, absolute in zip(row, (False, True)):
            means = test.mean(absolute)
            for m, name in enumerate(test.methods):
                ax.plot(range(len(test.stages)), means[m], styles[m // 10], marker="o", ms=3,
                        color=colors[m % len(colors)], label=name)
            ax.set_xticks(range(len(test.stages)))
            ax.set_xticklabels(test.stages, rotation=30, ha="right", fontsize=8)
            ax.set_ylim(min(-0.35, float(np.nanmin(means)) - 0.05), 1.05)   # every point shown
            ax.axhline(0, color="grey", lw=0.5)
            ax.grid(alpha=0.3)
            ax.set_title(f"{test.test} randomization, {'absolute' if absolute else 'signed'} "
                         "maps", fontsize=9)
            ax.set_ylabel("rank correlation with the trained map", fontsize=8)
    lines.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower center",
                 ncol=4, fontsize=8)               # below the panels: no curve hidden
    if data is not None:
        for ax, r, title in zip(bars.subplots(1, 2), (data.spearman, data.spearman_abs),
                                ("signed", "absolute")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ax.barh(range(len(data.methods)), np.nanmean(r, axis=1),
                        color=colors[:len(data.methods)])
            ax.set_yticks(range(len(data.methods)))
            ax.set_yticklabels(data.methods, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlim(-0.35, 1.05)
            ax.grid(alpha=0.3)
            ax.set_xlabel("rank correlation, true- vs permuted-label model", fontsize=8)
            ax.set_title(f"data randomization, {title} maps", fontsize=9)
    return fig


def format_table(test, absolute=False):
    """Markdown table: one row per method, one column per stage (mean rank correlation)."""
    means = test.mean(absolute)
    lines = ["| method | " + " | ".join(test.stages) + " |",
             "|---|" + "---:|" * len(test.stages)]
    for m, name in enumerate(test.methods):
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in means[m]) + " |")
    return "\n".join(lines)


__all__ = ["method_suite", "rank", "spearman", "parameter_layers", "randomize",
           "Randomization", "compare_maps", "cascading_randomization",
           "independent_randomization", "DataRandomization", "data_randomization",
           "draw_sanity", "format_table", "BACKGROUND", "WHITE"]
