"""What the explorer shows, as plain arrays: every function returns RGB uint8 images
``(H, W, 3)`` (or a dict of probabilities) and knows nothing of the web page.

All numbers come from ``minicnn.viz``; this module only picks the arguments and
paints. One colour convention everywhere: signed values are scaled to [-1, 1]
and drawn with ``viz.plotting.DIVERGING`` ("bwr"): red positive, white zero,
blue negative. Attribution maps are scaled as ``viz.normalize_attribution`` does
(each map by its 98th percentile of magnitudes); feature maps and filters share
one scale per layer, so their channels can be compared.
"""
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps

from .. import viz
from ..backend import as_numpy
from ..layers import Softmax
from ..viz.plotting import DIVERGING
from ..viz.probe import as_model_input
from ..viz.targets import logits_index
from .preprocess import model_input


def signed_rgb(a):
    """Values in [-1, 1], any shape -> RGB uint8 (shape + (3,)) in the diverging colours."""
    rgba = colormaps[DIVERGING]((np.clip(a, -1, 1) + 1) / 2)
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def gray_rgb(a, lo=None, hi=None):
    """Values -> gray RGB uint8, ``lo`` black and ``hi`` white (default the min and max)."""
    lo = a.min() if lo is None else lo
    hi = a.max() if hi is None else hi
    g = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)
    return np.repeat((g[..., None] * 255).round().astype(np.uint8), 3, axis=-1)


def enlarge(rgb, k):
    """Each pixel as a ``k x k`` block (so small maps stay crisp in the browser)."""
    return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)


def forward(model, x):
    """Every layer's output (``viz.feature_maps``) for one model input ``x (1, C, H, W)``."""
    return viz.feature_maps(model, x[0])


def check_model(model):
    """``ValueError`` (one line) unless ``model`` takes one 1x28x28 image, as the page
    (drawings, uploads and test images all made MNIST-style) gives it."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise ValueError("the model has no input_shape: the explorer needs to know it takes "
                         "1x28x28 images (Sequential(layers, input_shape=(1, 28, 28)))")
    if tuple(shape) != (1, 28, 28):
        raise ValueError(f"the model takes {'x'.join(map(str, shape))} images; the explorer "
                         f"shows models of 1x28x28 images (MNIST, Fashion-MNIST)")


def class_names(model, names=None):
    """``(names, note)``: one name for each of the model's outputs. ``names`` (e.g. the
    dataset's) when there is one for each output, else the output indices "0", "1",
    ...; ``note`` says why in one line, or is ``""``."""
    n = int(np.prod(viz.receptive_fields(model)[logits_index(model)].shape))
    if names is not None and len(names) == n:
        return [str(name) for name in names], ""
    indices = [str(k) for k in range(n)]
    if names is None:
        return indices, ""
    return indices, (f"the model has {n} outputs but the dataset has {len(names)} class "
                     f"names: its classes are labelled 0 to {n - 1}")


def probabilities(model, maps, class_names):
    """``{class name: probability}``: the softmax of the logits in ``forward``'s maps."""
    logits = maps[logits_index(model)].activation
    p = Softmax().forward(logits[None])[0]
    return {name: float(v) for name, v in zip(class_names, p)}


# -- grids of maps, and which unit a click on one hits ----------------------------
@dataclass(frozen=True)
class Grid:
    """Layout of ``n`` maps of ``h x w`` values, each value a ``scale`` px square,
    in ``columns`` columns with ``gap`` px between maps."""
    n: int
    h: int
    w: int
    scale: int
    columns: int
    gap: int = 2

    def unit_at(self, px, py):
        """``(channel, y, x)`` under image pixel ``(px, py)``, or ``None`` on a gap."""
        pitch_x, pitch_y = self.w * self.scale + self.gap, self.h * self.scale + self.gap
        col, row = px // pitch_x, py // pitch_y
        dx, dy = px % pitch_x, py % pitch_y
        channel = row * self.columns + col
        if col >= self.columns or dx >= self.w * self.scale or dy >= self.h * self.scale \
                or channel >= self.n:
            return None
        return int(channel), int(dy // self.scale), int(dx // self.scale)


def grid_image(rgbs, scale, columns, gap=2):
    """``rgbs (n, h, w, 3)`` -> one RGB image of the maps in a grid, and its ``Grid``."""
    n, h, w, _ = rgbs.shape
    grid = Grid(n, h, w, scale, columns, gap)
    rows = -(-n // columns)
    out = np.full((rows * (h * scale + gap) - gap, columns * (w * scale + gap) - gap, 3), 160,
                  dtype=np.uint8)
    for c in range(n):
        r, k = divmod(c, columns)
        top, left = r * (h * scale + gap), k * (w * scale + gap)
        out[top:top + h * scale, left:left + w * scale] = enlarge(rgbs[c], scale)
    return out, grid


def layer_maps(fmap, width=640):
    """A layer's output (a ``viz.FeatureMap``) as a grid image and its ``Grid``
    (``signal_grid`` of its activation)."""
    return signal_grid(fmap.activation, width)


def signal_grid(a, width=640):
    """Values at one layer, ``(C, H, W)`` or ``(F,)``, as a grid image about ``width`` px
    wide and its ``Grid``: one cell per channel, or one 1x1 cell per feature in a
    square. One scale for the whole layer: ``max |a|``."""
    a = np.asarray(a)
    maps = a if a.ndim == 3 else a.reshape(-1, 1, 1)
    n, h, w = maps.shape
    columns = min(n, 8) if a.ndim == 3 else int(np.ceil(np.sqrt(n)))
    scale = max(1, (width // columns - 2) // w)
    top = np.abs(maps).max()
    return grid_image(signed_rgb(maps / top if top > 0 else maps), scale, columns)


def filters_image(model, layer, width=400):
    """Conv layer ``layer``'s filters ``(C_out, C_in, k, k)``, input channels summed,
    as a grid image (one scale for all filters)."""
    w = viz.conv_filters(model, layer).sum(axis=1)                  # (C_out, k, k)
    top = np.abs(w).max()
    columns = min(len(w), 8)
    scale = max(1, (width // columns - 2) // w.shape[2])
    return grid_image(signed_rgb(w / top if top > 0 else w), scale, columns)[0]


# -- attribution ------------------------------------------------------------------
IG_STEPS, SMOOTHGRAD_SAMPLES = 16, 10      # fewer passes than viz's defaults: speed


def spatial_layers(model):
    """Indices of the layers whose output has positions (conv, pool and their ReLUs)."""
    return [f.index for f in viz.receptive_fields(model) if f.spatial]


def grad_cam_layer(model):
    """The layer Grad-CAM uses: the last spatial ReLU (the rectified maps of the last
    conv), else the last spatial layer."""
    spatial = spatial_layers(model)
    relus = [i for i in spatial if type(model.layers[i]).__name__ == "ReLU"]
    return (relus or spatial)[-1]


def gradient_methods(model, blank):
    """``{title: fn(x, target)}`` for every backward-pass method of ``minicnn.viz``.

    ``blank`` is the model input of an empty canvas: integrated gradients start
    from it (a digit is ink added to empty paper). ``IG_STEPS`` and
    ``SMOOTHGRAD_SAMPLES`` are below ``viz``'s defaults: each is one backward
    pass, and a stroke should not wait for a hundred (docs/how-to/explore.md: measured speed).
    The titles are the methods' names only, short enough for a caption under a
    small map; ``attribution_legend`` gives their settings.
    """
    cam = grad_cam_layer(model)
    return {
        "saliency": lambda x, t: viz.saliency(model, x, t),
        "deconvnet": lambda x, t: viz.deconvnet(model, x, t),
        "guided backprop": lambda x, t: viz.guided_backprop(model, x, t),
        "Grad-CAM": lambda x, t: viz.grad_cam(model, x, t, cam),
        "guided Grad-CAM": lambda x, t: viz.guided_grad_cam(model, x, t, cam),
        "integrated gradients": lambda x, t: viz.integrated_gradients(
            model, x, t, baseline=blank, steps=IG_STEPS),
        "SmoothGrad": lambda x, t: viz.smoothgrad(model, x, t, n_samples=SMOOTHGRAD_SAMPLES),
    }


def attribution_legend(model):
    """One line of Markdown: the settings behind the attribution maps' short titles."""
    cam = grad_cam_layer(model)
    return (f"Grad-CAM and guided Grad-CAM on layer {cam} ({type(model.layers[cam]).__name__}); "
            f"integrated gradients in {IG_STEPS} steps from the blank canvas; SmoothGrad over "
            f"{SMOOTHGRAD_SAMPLES} noisy copies; occlusion by {OCCLUSION_SIZE} px squares "
            f"moved {OCCLUSION_STRIDE} px at a time, as p(x) - p(x occluded).")


def attribution_maps(model, x, target=None, scale=4):
    """``[(title, RGB image)]``: each gradient method's map of ``target`` (a class,
    ``None`` for the predicted one) for the model input ``x (1, C, H, W)``."""
    x = as_model_input(model, x)
    target = viz.resolve_target(model, x, target)     # found once, shared by all
    return [(title, enlarge(signed_rgb(viz.normalize_attribution(fn(x, target)[0])), scale))
            for title, fn in gradient_methods(model, blank_canvas(model, x)).items()]


def blank_canvas(model, x):
    """The model input of an empty canvas shaped like ``x (1, C, H, W)``: the baseline of
    integrated gradients and DeepLIFT here (a digit is ink added to empty paper)."""
    return as_model_input(model, model_input(np.zeros(x.shape[2:], dtype=np.uint8)))


OCCLUSION_SIZE, OCCLUSION_STRIDE = 6, 2


def occlusion_map(model, x, target=None, size=OCCLUSION_SIZE, stride=OCCLUSION_STRIDE, scale=4):
    """``(title, RGB image)``: Zeiler & Fergus's occlusion as ``p(x) - p(x occluded)``
    (red: covering this region lowers the class's probability), squares of
    ``size`` px filled with the blank canvas's value, moved by ``stride``."""
    x = as_model_input(model, x)
    blank = float(model_input(np.zeros((1, 1), dtype=np.uint8))[0, 0, 0, 0])
    if target is None:
        target = int(as_numpy(viz.class_probabilities(model, x)).argmax())
    p = as_numpy(viz.class_probabilities(model, x))[0, target]
    drop = p - as_numpy(viz.occlusion(model, x, target, size, stride, fill=blank))[0]
    return ("occlusion",
            enlarge(signed_rgb(viz.normalize_attribution(drop)), scale))


# -- one unit ---------------------------------------------------------------------
def unit_views(model, x, digit, layer, channel, position, scale=8):
    """For unit ``(layer, channel, position)`` (``position=None`` for a dense unit):
    ``(field, projection)``, the input with the unit's receptive field outlined,
    and the unit's deconvnet projection for this input with the same outline."""
    x = as_model_input(model, x)
    hw = x.shape[2:]
    box = (viz.receptive_box(model, layer, *position, input_shape=x.shape[1:])
           if position is not None else viz.Box(0, 0, hw[0], hw[1]))
    unit = viz.Unit(layer, channel, None if position is None else tuple(position))
    proj = viz.normalize_attribution(viz.deconvnet(model, x, unit)[0])
    return (outline(enlarge(gray_rgb(np.asarray(digit, float), 0, 255), scale), box, scale),
            outline(enlarge(signed_rgb(proj), scale), box, scale))


def outline(rgb, box, scale, colour=(255, 140, 0)):
    """``rgb`` with the ``viz.Box`` (in unscaled pixels) drawn as a 2-px frame."""
    out = rgb.copy()
    t, l, b, r = box.top * scale, box.left * scale, box.bottom * scale, box.right * scale
    for rows, cols in ((slice(t, t + 2), slice(l, r)), (slice(b - 2, b), slice(l, r)),
                       (slice(t, b), slice(l, l + 2)), (slice(t, b), slice(r - 2, r))):
        out[rows, cols] = colour
    return out


def top_patch_images(patches, channel, scale=None):
    """The ``k`` crops of ``channel`` from a ``viz.TopPatches`` and their deconvnet
    projections, each as a 3-column grid image ``(crops, projections)``; ``scale``
    None enlarges a crop to about 48 px."""
    c = int(np.flatnonzero(patches.channels == channel)[0])
    crops = patches.crops[c].sum(axis=1)                            # (k, h, w)
    crops_rgb = gray_rgb(crops)
    proj = np.stack([viz.normalize_attribution(p) for p in patches.projections[c]])
    scale = max(1, 48 // crops.shape[1]) if scale is None else scale
    return (grid_image(crops_rgb, scale, 3)[0], grid_image(signed_rgb(proj), scale, 3)[0])


__all__ = ["signed_rgb", "gray_rgb", "enlarge", "forward", "check_model", "class_names",
           "probabilities", "Grid", "grid_image",
           "layer_maps", "signal_grid", "filters_image", "spatial_layers", "grad_cam_layer",
           "gradient_methods", "attribution_legend", "attribution_maps", "blank_canvas",
           "occlusion_map", "unit_views", "outline", "top_patch_images"]
