"""The last dense layer as a library of features (the seed's "Analysis of trained CNN").

In ``tiny_cnn`` the classifier is one dense layer on top of 16 ReLU'd signals
``s`` (the dense-16 activations)::

    logit[k] = sum_j W[k, j] * s[j] + b[k]          W (10, 16), b (10,)
    p        = softmax(logit)

Row ``W[k]`` is class ``k``'s template over the 16 features, so the term
``contribution[k, j] = s[j] * W[k, j]`` says how much signal ``j`` pushes the
image toward class ``k`` (positive) or away from it (negative); the logits are
exactly the row sums plus the bias.

One signal is then traced back to the pixels. Signal ``j`` is
``relu(V[j] . flatten(pooled) + c[j])``, so ``V[j]`` reshaped like the pooled
maps ``(C, h, w)`` shows which channels and places it reads; the pooled units
with the largest ``pooled * V[j]`` are its strongest inputs. Each of those went
through max pooling, whose switch names the conv unit that won, and that unit
sees one box of the input (its receptive field) through its filter. Finally
the gradient of ``s[j]`` with respect to the input (or the deconvnet /
guided-backprop version of it) paints the pattern the signal responds to.

``draw_dense_features`` (in ``features_figure``) draws a result. Everything works
for any ``Sequential`` shaped like
``[conv/pool ..., Flatten, Dense, ReLU, (Dropout), Dense]`` (lenet too, with
1024 signals).
"""
from dataclasses import dataclass, field

import numpy as np

from ..backend import as_numpy
from ..layers import Conv2D, Dense, Flatten, MaxPool2D
from ..layers.activations import softmax
from ..viz.backward import backprop
from ..viz.probe import as_model_input, probing
from ..viz.receptive import receptive_box
from ..viz.rules import RELU_RULES
from ..viz.targets import Unit
from .features_figure import draw_dense_features  # noqa: F401 (its figure, kept here too)


@dataclass
class TracedInput:
    """One pooled unit feeding the traced signal, followed back to the input.

    ``pooled = (channel, y, x)`` in the pooled maps; ``conv = (y, x)`` the
    position of the conv unit that won the max pool (its switch);
    ``contribution = pooled_value * V[j, channel, y, x]``; ``box`` the input
    pixels the conv unit sees (a ``minicnn.viz.receptive.Box``).
    """
    pooled: tuple
    conv: tuple
    contribution: float
    box: object


@dataclass
class DenseFeatures:
    """The analysis of one image; NumPy arrays, K classes, S signals.

    image (C, H, W); signals (S,); weights (K, S); bias (K,);
    contributions (K, S) = signals * weights; logits (K,); probabilities (K,);
    signal: the index of the traced signal; signal_weights (C2, h, w): its
    dense weights over the pooled maps; inputs: its strongest ``TracedInput``s;
    filters: the last conv layer's weights of those inputs' channels,
    (len(inputs), C1, kH, kW); first_filters: the first conv layer's weights
    (C1, C, kH, kW); input_map (C, H, W): d signal / d image under ``rule``.
    """
    image: np.ndarray
    signals: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    contributions: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    signal: int
    signal_weights: np.ndarray
    inputs: list = field(default_factory=list)
    filters: np.ndarray = None
    first_filters: np.ndarray = None
    input_map: np.ndarray = None
    rule: str = "gradient"

    @property
    def predicted(self):
        return int(np.argmax(self.logits))

    def pushes(self, k, n=3):
        """``(toward, against)``: the ``n`` signals adding most to / taking most
        from class ``k``'s logit, as lists of ``(signal, contribution)``."""
        order = np.argsort(self.contributions[k])
        toward = [(int(j), float(self.contributions[k, j])) for j in order[::-1][:n]
                  if self.contributions[k, j] > 0]
        against = [(int(j), float(self.contributions[k, j])) for j in order[:n]
                   if self.contributions[k, j] < 0]
        return toward, against


def head_layers(model):
    """Indices ``(flatten, signal_dense, classifier)`` of the model's dense head."""
    dense = [i for i, layer in enumerate(model.layers) if isinstance(layer, Dense)]
    flat = [i for i, layer in enumerate(model.layers) if isinstance(layer, Flatten)]
    if len(dense) < 2 or not flat or not flat[0] < dense[-2]:
        raise ValueError("dense-feature analysis needs [..., Flatten, Dense, ..., Dense]; "
                         f"this model has Dense layers at {dense} and Flatten at {flat}")
    return flat[0], dense[-2], dense[-1]


def analyze_dense_features(model, image, signal=None, rule="gradient", top=3):
    """Decompose the prediction for one ``image (C, H, W)`` into signal contributions.

    ``signal=None`` traces the strongest signal (largest activation); ``rule``
    is the ReLU backward rule for ``input_map`` (``"gradient"``,
    ``"deconvnet"``, ``"guided"``); ``top`` how many pooled inputs to trace.
    The model may live on the CPU or the GPU; it is left as it was (eval mode
    and gradients are restored by ``probing``).
    """
    if rule not in RELU_RULES:
        raise ValueError(f"rule must be one of {tuple(RELU_RULES)}, got {rule!r}")
    flat, first, last = head_layers(model)
    image = as_numpy(image)
    if image.ndim != 3:
        raise ValueError(f"image must be one example (C, H, W), got shape {image.shape}")
    x = as_model_input(model, image[None])
    with probing(model):
        pooled = model[:flat](x)                                  # (1, C2, h, w)
        signals = model[flat:last](pooled)                        # (1, S)
        s = as_numpy(signals)[0]
        j = int(np.argmax(s)) if signal is None else int(signal)
    input_map = as_numpy(backprop(model, x, Unit(last - 1, j), rule)[0])[0]   # signal j
    classifier = model.layers[last]
    w = as_numpy(classifier.weight.value)
    b = as_numpy(classifier.bias.value) if classifier.bias is not None \
        else np.zeros(w.shape[0], w.dtype)
    # float64 so that "the logits are the row sums" holds to rounding, not to float32 noise
    contributions = s.astype(np.float64)[None, :] * w.astype(np.float64)
    logits = contributions.sum(axis=1) + b
    pooled_np = as_numpy(pooled)[0]
    v = as_numpy(model.layers[first].weight.value)[j].reshape(pooled_np.shape)
    inputs, filters = _trace_inputs(model, flat, pooled_np, v, top)
    convs = [layer for layer in model.layers[:flat] if isinstance(layer, Conv2D)]
    return DenseFeatures(
        image=as_numpy(x)[0], signals=s, weights=w, bias=b, contributions=contributions,
        logits=logits, probabilities=softmax(logits), signal=j, signal_weights=v, inputs=inputs,
        filters=filters, first_filters=as_numpy(convs[0].weight.value).copy() if convs else None,
        input_map=input_map, rule=rule)


def _trace_inputs(model, flat, pooled, v, top):
    """The ``top`` pooled units with the largest ``pooled * v``, traced through the
    last max pool (its switches) to a conv unit and that unit's input box."""
    terms = pooled * v                                            # (C2, h, w)
    order = np.argsort(terms, axis=None)[::-1][:top]
    pools = [i for i in range(flat) if isinstance(model.layers[i], MaxPool2D)]
    convs = [i for i in range(flat) if isinstance(model.layers[i], Conv2D)]
    inputs, channels = [], []
    for flat_index in order:
        c, y, x = (int(a) for a in np.unravel_index(flat_index, terms.shape))
        if pools and convs and pools[-1] > convs[-1]:
            pool = model.layers[pools[-1]]
            width = pool.x_shape[-1]
            cy, cx = divmod(int(as_numpy(pool.switches)[0, c, y, x]), width)
            box = receptive_box(model, convs[-1], cy, cx)
        else:                      # no pooling after the last conv: the unit is its own
            cy, cx = y, x
            box = receptive_box(model, flat - 1, y, x)
        inputs.append(TracedInput((c, y, x), (cy, cx), float(terms[c, y, x]), box))
        channels.append(c)
    filters = None
    if convs:
        filters = as_numpy(model.layers[convs[-1]].weight.value)[channels].copy()
    return inputs, filters
