"""Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017) for any conv layer.

With ``A (N, K, h, w)`` the output of the chosen layer and ``y`` the target::

    alpha_k = mean over (i, j) of d y / d A_k[i, j]       (N, K)  channel weights
    cam     = ReLU( sum_k alpha_k A_k )                    (N, h, w)

then ``cam`` is upsampled bilinearly to the input's ``H x W``. The map is
coarse (one value per position of that layer) but class-discriminative;
guided Grad-CAM multiplies it into the fine guided-backprop map.
"""
from ..backend import get_array_module
from .attribution import guided_backprop
from .backward import backprop
from .probe import layer_index
from .targets import resolve_target


def _axis_weights(xp, n_in, n_out):
    """Source indices ``i0, i1`` and weight ``t`` of ``i1`` for each output index.

    Pixel centres are aligned (``align_corners=False`` in PyTorch, as in image
    resizing): output ``o`` samples input coordinate ``(o + 0.5) n_in / n_out - 0.5``,
    clamped at 0 on the left; beyond the last input it repeats the edge.
    """
    src = (xp.arange(n_out, dtype=xp.float64) + 0.5) * (n_in / n_out) - 0.5
    src = xp.maximum(src, 0.0)
    i0 = xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)
    i1 = xp.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def upsample_bilinear(maps, size):
    """``maps (N, C, h, w)`` -> ``(N, C, H, W)`` with ``size = (H, W)``, bilinear.

    Separable: first along rows, then along columns; each output value is
    ``(1 - t) * a[i0] + t * a[i1]`` with the indices of ``_axis_weights``.
    """
    xp = get_array_module(maps)
    (r0, r1, tr), (c0, c1, tc) = (_axis_weights(xp, maps.shape[2], size[0]),
                                  _axis_weights(xp, maps.shape[3], size[1]))
    tr = tr.astype(maps.dtype)[:, None]
    tc = tc.astype(maps.dtype)
    rows = (1 - tr) * maps[:, :, r0, :] + tr * maps[:, :, r1, :]       # (N, C, H, w)
    return (1 - tc) * rows[:, :, :, c0] + tc * rows[:, :, :, c1]


def layer_gradient(model, x, target, layer, method):
    """``(d target / d A, A)``, both ``(N, K, h, w)``, at layer ``layer``'s output ``A``."""
    target = resolve_target(model, x, target)
    index = layer_index(model, layer)
    grad, _, act = backprop(model, x, target, "gradient", to_layer=index)
    if act.ndim != 4:
        raise ValueError(f"{method} needs a layer with (N, K, h, w) output; layer {layer} "
                         f"({type(model.layers[index]).__name__}) gives {tuple(act.shape)}")
    return grad, act


def grad_cam(model, x, target, layer):
    """Grad-CAM of ``target`` at layer ``layer`` (any layer with a 4-D output).

    ``x (N, C, H, W)`` -> ``(N, 1, H, W)``: one channel, which broadcasts
    against the input. Pass the index of the ReLU after a conv to get the
    usual maps (the papers use the rectified feature maps); a conv's own
    index uses its pre-ReLU output.

    Captum: ``LayerGradCam(net, net[layer])`` with ``relu_attributions=True``
    gives the layer-resolution map, and ``LayerAttribution.interpolate(cam,
    (H, W), "bilinear")`` this result. Captum's ``GuidedGradCam`` upsamples
    with ``"nearest"`` unless given ``interpolate_mode="bilinear"``; bilinear is
    kept here because it draws no block edges that only the layer's grid made.
    """
    grad, act = layer_gradient(model, x, target, layer, "grad_cam")
    xp = get_array_module(act)
    alpha = grad.mean(axis=(2, 3), keepdims=True)                      # (N, K, 1, 1)
    cam = xp.maximum((alpha * act).sum(axis=1, keepdims=True), 0)      # (N, 1, h, w)
    return upsample_bilinear(cam, x.shape[2:])


def grad_cam_pp(model, x, target, layer):
    """Grad-CAM++ (Chattopadhay et al. 2018) of ``target`` at layer ``layer``, ``(N, 1, H, W)``.

    With ``g = d y / d A`` at the layer and the exponential-score closed form of the
    higher derivatives (``g^2``, ``g^3``), each position's weight is::

        a_k[i, j] = g^2 / (2 g^2 + sum_ab A_k[a, b] * g^3)      (0 where g = 0)
        w_k       = sum_ij a_k[i, j] * relu(g_k[i, j])
        cam       = relu(sum_k w_k A_k), upsampled bilinearly

    so positive gradients at several places of a channel all count, not only their mean.
    """
    grad, act = layer_gradient(model, x, target, layer, "grad_cam_pp")
    xp = get_array_module(act)
    g2 = grad * grad
    denom = 2 * g2 + act.sum(axis=(2, 3), keepdims=True) * g2 * grad
    alpha = xp.where(grad != 0, g2 / xp.where(denom != 0, denom, 1), 0)
    weights = (alpha * xp.maximum(grad, 0)).sum(axis=(2, 3), keepdims=True)   # (N, K, 1, 1)
    cam = xp.maximum((weights * act).sum(axis=1, keepdims=True), 0)
    return upsample_bilinear(cam, x.shape[2:])


def guided_grad_cam(model, x, target, layer):
    """Guided Grad-CAM: ``guided_backprop * grad_cam``, ``(N, C, H, W)``."""
    target = resolve_target(model, x, target)
    return guided_backprop(model, x, target) * grad_cam(model, x, target, layer)


__all__ = ["grad_cam", "grad_cam_pp", "guided_grad_cam", "upsample_bilinear"]
