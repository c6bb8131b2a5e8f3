"""Pixelwise classification by patches: the class of the 28x28 patch around every pixel.

A digit classifier becomes a (crude) segmenter by asking it about the patch
centred on each pixel of a larger scene. For a canvas ``(N, C, H, W)`` the
patch of pixel ``(i, j)`` is ``padded[:, :, i:i+P, j:j+P]`` where the canvas
is padded with ``P // 2`` background pixels above/left and ``P - 1 - P // 2``
below/right, so that every pixel has one.

Two ways to compute the ``(N, K, H, W)`` map of model outputs:

* ``method="patches"`` (the reference): cut out all ``H*W`` patches and run the
  model on them, a batch at a time. Simple, and ``H*W`` times the work of one
  image.
* ``method="fast"``: the "fully convolutional" rewrite. Valid convolutions and
  pools commute with cropping, so the convolutional part runs once on the
  whole padded canvas; position ``(a, b)`` of its output is the feature block
  of the patch starting at ``(S a, S b)``, ``S`` the product of all strides.
  The first Dense layer after Flatten becomes a convolution whose kernel is
  its weight reshaped to ``(F, C, h, w)`` (Flatten is C-ordered), sliding over
  the feature maps; the later layers act on each position's vector. The
  strides skip pixels, so the canvas is cropped by each offset
  ``(dy, dx)`` in ``[0, S)^2`` and the ``S*S`` results are interleaved::

      out[:, :, dy::S, dx::S] = fully_convolutional(padded[:, :, dy:, dx:])

  This equals the reference exactly when every conv and pool has padding 0
  (a padded layer pads each patch with zeros where the canvas has real pixels).
"""
import math

import numpy as np

from ..backend import as_numpy, get_array_module
from ..files.atomic import save_figure
from ..layers import (AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential,
                      Softmax)
from ..layers.activations import softmax
from ..training.inference import chunks, eval_forward
from ..viz.probe import as_model_input, probing

_SPATIAL = (Conv2D, MaxPool2D, AvgPool2D, ReLU, Dropout)     # allowed before Flatten
_HEAD = (Dense, ReLU, Dropout, Softmax)                       # allowed after Flatten


def pad_canvas(canvas, patch, value=0.0):
    """Pad ``(N, C, H, W)`` by ``patch // 2`` above/left and ``patch - 1 - patch // 2``
    below/right with ``value``: then the patch of pixel ``(i, j)`` starts at ``(i, j)``."""
    xp = get_array_module(canvas)
    lo, hi = patch // 2, patch - 1 - patch // 2
    return xp.pad(canvas, ((0, 0), (0, 0), (lo, hi), (lo, hi)), constant_values=value)


def patch_outputs_slow(model, canvas, patch=28, pad_value=0.0, batch_size=512):
    """Reference: the model's output for the patch around every pixel, one patch at a time.

    ``canvas (N, C, H, W)`` -> ``(N, K, H, W)`` (``K`` outputs of the model).
    """
    n, c, h, w = canvas.shape
    padded = pad_canvas(as_model_input(model, canvas), patch, pad_value)
    xp = get_array_module(padded)
    starts = [(i, j) for i in range(h) for j in range(w)]
    batches = (xp.stack([padded[b, :, i:i + patch, j:j + patch] for i, j in part])
               for b in range(n) for part in chunks(starts, batch_size))
    out = xp.concatenate(list(eval_forward(model, batches)))     # (N*H*W, K)
    return out.reshape(n, h, w, -1).transpose(0, 3, 1, 2)


def split_model(model, input_shape=(1, 28, 28), exact=True):
    """``(conv_part, first_dense, head, (Sy, Sx))`` for the fully convolutional rewrite.

    ``conv_part`` is a Sequential of the layers before Flatten, ``first_dense``
    the Conv2D standing in for the first Dense layer, ``head`` the rest, for
    patches of ``input_shape``.
    With ``exact=True`` a conv or pool with padding raises (the result would
    differ from the patch-by-patch one).
    """
    layers = list(model.layers)
    flat = next((i for i, layer in enumerate(layers) if isinstance(layer, Flatten)), None)
    if flat is None or flat + 1 >= len(layers) or not isinstance(layers[flat + 1], Dense):
        raise ValueError("the fully convolutional rewrite needs ... Flatten, Dense ... in the model")
    sy = sx = 1
    for layer in layers[:flat]:
        if not isinstance(layer, _SPATIAL):
            raise ValueError(f"cannot slide {type(layer).__name__} over a canvas")
        if exact and any(getattr(layer, "padding", (0, 0))):
            raise ValueError(f"{layer!r} pads its input: the fast map would differ from the "
                             f"patch-by-patch one (use method='patches', or exact=False)")
        sy, sx = sy * getattr(layer, "stride", (1, 1))[0], sx * getattr(layer, "stride", (1, 1))[1]
    for layer in layers[flat + 2:]:
        if not isinstance(layer, _HEAD):
            raise ValueError(f"cannot apply {type(layer).__name__} at every position")
    conv_part, head = Sequential(layers[:flat]), Sequential(layers[flat + 2:])
    c, h, w = conv_part.output_shape(input_shape)
    dense = layers[flat + 1]
    first = Conv2D(c, dense.out_features, (h, w), bias=dense.bias is not None)
    first.weight.value = dense.weight.value.reshape(dense.out_features, c, h, w)
    if dense.bias is not None:
        first.bias.value = dense.bias.value
    return conv_part, first, head, (sy, sx)


def patch_outputs(model, canvas, patch=28, pad_value=0.0, method="fast", exact=True):
    """The model's output for the patch around every pixel: ``(N, C, H, W)`` -> ``(N, K, H, W)``.

    ``method="fast"`` runs the whole canvas through the convolutional part at
    once (see the module docstring); ``method="patches"`` is the reference.
    """
    if method == "patches":
        return patch_outputs_slow(model, canvas, patch, pad_value)
    if method != "fast":
        raise ValueError(f"method must be 'fast' or 'patches', got {method!r}")
    conv_part, first, head, (sy, sx) = split_model(model, (canvas.shape[1], patch, patch), exact)
    n, _, h, w = canvas.shape
    padded = pad_canvas(as_model_input(model, canvas), patch, pad_value)
    xp = get_array_module(padded)
    out = None
    with probing(model):
        for dy in range(min(sy, h)):
            for dx in range(min(sx, w)):
                rows, cols = math.ceil((h - dy) / sy), math.ceil((w - dx) / sx)
                maps = first.forward(conv_part.forward(padded[:, :, dy:, dx:]))
                maps = maps[:, :, :rows, :cols]                  # (N, F, rows, cols)
                f = maps.shape[1]
                vec = maps.transpose(0, 2, 3, 1).reshape(-1, f)  # one row per position
                res = head.forward(vec) if head.layers else vec
                res = res.reshape(n, rows, cols, -1).transpose(0, 3, 1, 2)
                if out is None:
                    out = xp.empty((n, res.shape[1], h, w), dtype=res.dtype)
                out[:, :, dy::sy, dx::sx] = res
    return out


def class_map(outputs, threshold=0.5, probabilities=False):
    """Per-pixel classes from ``(N, K, H, W)`` outputs; ``-1`` ("background / low
    confidence") where the winning probability is below ``threshold``.

    Returns ``(labels (N, H, W) int, confidence (N, H, W))`` as NumPy arrays.
    """
    p = as_numpy(outputs if probabilities else softmax(outputs, axis=1))
    labels, conf = p.argmax(axis=1), p.max(axis=1)
    return np.where(conf >= threshold, labels, -1), conf


def digit_scene(images, labels, canvas_hw=(84, 84), count=4, seed=0, ink=0.5):
    """Place ``count`` digits in random cells of a grid of 28x28 spots on a canvas.

    ``images (M, 1, 28, 28)`` normalized as for the model; the canvas is filled
    with the images' background value (their minimum) and digits are pasted
    with ``max``. Returns ``(canvas (1, 1, H, W), truth (H, W))`` where ``truth``
    holds the digit's label on its ink pixels (above ``ink`` of its range), -1 elsewhere.
    """
    images, labels = as_numpy(images), as_numpy(labels)
    rng = np.random.default_rng(seed)
    h, w = canvas_hw
    size = images.shape[-1]
    rows, cols = h // size, w // size
    if count > rows * cols:
        raise ValueError(f"no room for {count} digits of {size}x{size} on {h}x{w}")
    # a grid of cells; sorted jitters per grid row / column keep the digits apart
    ys = np.arange(rows) * size + np.sort(rng.integers(0, h - rows * size + 1, rows))
    xs = np.arange(cols) * size + np.sort(rng.integers(0, w - cols * size + 1, cols))
    cells = rng.choice(rows * cols, size=count, replace=False)
    background = float(images.min())
    canvas = np.full((1, 1, h, w), background, dtype=images.dtype)
    truth = np.full((h, w), -1, dtype=int)
    for cell, k in zip(cells, rng.choice(len(images), size=count, replace=False)):
        y, x = ys[cell // cols], xs[cell % cols]
        digit = images[k, 0]
        view = canvas[0, 0, y:y + size, x:x + size]
        np.maximum(view, digit, out=view)
        on = digit > background + ink * (digit.max() - background)
        truth[y:y + size, x:x + size][on] = int(labels[k])
    return canvas, truth


def map_scores(labels, truth):
    """How the map agrees with the truth: ``{"ink": fraction of ink pixels with their
    digit's class, "background": fraction of non-ink pixels labelled -1}``."""
    ink = truth >= 0
    return {"ink": float((labels[ink] == truth[ink]).mean()),
            "background": float((labels[~ink] == -1).mean())}


def draw_class_map(canvas, labels, confidence=None, path=None, title="class of the patch "
                   "around each pixel"):
    """Scene, class map (colour per digit, white for background) and confidence."""
    import matplotlib
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    panels = 2 if confidence is None else 3
    fig = Figure(figsize=(4.2 * panels, 4.4))
    axes = fig.subplots(1, panels)
    axes[0].imshow(as_numpy(canvas).reshape(labels.shape), cmap="gray")
    axes[0].set_title("scene")
    colors = ["white"] + [matplotlib.colormaps["tab10"](k) for k in range(10)]
    im = axes[1].imshow(labels + 1, cmap=ListedColormap(colors), vmin=-0.5, vmax=10.5,
                        interpolation="nearest")
    cbar = fig.colorbar(im, ax=axes[1], ticks=range(11), fraction=0.046)
    cbar.ax.set_yticklabels(["bg"] + [str(k) for k in range(10)])
    axes[1].set_title(title, fontsize=9)
    if confidence is not None:
        im = axes[2].imshow(confidence, cmap="viridis", vmin=0, vmax=1)
        fig.colorbar(im, ax=axes[2], fraction=0.046)
        axes[2].set_title("winning probability")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
