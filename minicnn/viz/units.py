"""What each unit responds to: its filter, its feature map, the inputs that excite it most.

All functions return NumPy arrays or dataclasses of them (ready to draw with
``minicnn.viz.figures``); the model may live on the CPU or the GPU.
"""
from dataclasses import dataclass

import numpy as np

from ..backend import as_numpy
from .attribution import deconvnet
from .probe import as_model_input, layer_index, layer_name, probing
from .receptive import field_box, receptive_fields
from .targets import Resolved


def conv_filters(model, layer):
    """The weights of conv layer ``layer`` as a NumPy array ``(C_out, C_in, kH, kW)``."""
    conv = model.layers[layer_index(model, layer)]
    if getattr(conv, "weight", None) is None or conv.weight.value.ndim != 4:
        raise ValueError(f"layer {layer} ({type(conv).__name__}) is not a conv layer")
    return as_numpy(conv.weight.value).copy()


@dataclass
class FeatureMap:
    """One layer's output for one image: ``activation`` is ``(C, H, W)`` or ``(F,)``."""
    index: int
    name: str
    activation: np.ndarray

    @property
    def shape(self):
        return self.activation.shape


def feature_maps(model, image):
    """The output of every layer for one ``image (C, H, W)``, in eval mode.

    A conv layer's map is the filtered image before the ReLU; the ReLU's map
    right after it is the same map with the negatives cut to zero.
    """
    x = as_model_input(model, np.asarray(as_numpy(image))[None])
    maps = []
    with probing(model):
        for i, layer in enumerate(model.layers):
            x = layer.forward(x)
            maps.append(FeatureMap(i, layer_name(model, i), as_numpy(x[0]).copy()))
    return maps


@dataclass
class TopPatches:
    """The ``k`` inputs that excite each channel of a layer most; ``C`` channels.

    ``values (C, k)``     the unit's largest activation in that image (descending)
    ``image_index (C, k)`` which image (into the scanned data set)
    ``position (C, k, 2)`` ``(y, x)`` of that maximum in the layer's output
    ``crops (C, k, C_in, h, w)`` the unit's receptive field cut from the (prepared) image,
                            zero-padded where it reaches past the border (as the
                            network's zero padding does)
    ``projections``       same shape, the deconvnet projection of the unit (Zeiler
                            & Fergus: from a one-hot at the unit back to the image
                            through the max-pool switches; ``None`` unless asked for)
    """
    layer: int
    name: str
    channels: np.ndarray
    values: np.ndarray
    image_index: np.ndarray
    position: np.ndarray
    crops: np.ndarray
    projections: np.ndarray = None


def _merge(best_v, best_i, best_p, v, i, p, k):
    """Keep the ``k`` largest of the running ``(C, k)`` and the new ``(C, B)`` candidates.

    Ties go to the image seen first: the running entries come first and the
    sort is stable, so the result does not depend on the batch size.
    """
    v, i, p = (np.concatenate(a, axis=1) for a in ((best_v, v), (best_i, i), (best_p, p)))
    order = np.argsort(-v, axis=1, kind="stable")[:, :k]
    take = lambda a: np.take_along_axis(a, order if a.ndim == 2 else order[..., None], axis=1)
    return take(v), take(i), take(p)


def _crop(image, box):
    """``image (C, H, W)`` cut to ``box``, zero-padded outside the image."""
    c, h, w = image.shape
    out = np.zeros((c, box.height, box.width), dtype=image.dtype)
    inside = box.clip((h, w))
    out[:, inside.top - box.top:inside.bottom - box.top,
        inside.left - box.left:inside.right - box.left] = \
        image[:, inside.top:inside.bottom, inside.left:inside.right]
    return out


def _projections(model, layer, images, channel, positions):
    """Deconvnet projections ``(N, C, H, W)`` of unit ``(channel, y_n, x_n)`` in each image
    (``attribution.deconvnet``: ReLU rule ``max(g, 0)``, max-pool switches of this image)."""
    n = len(images)
    where = [np.arange(n), np.full(n, channel), positions[:, 0], positions[:, 1]]
    target = Resolved(layer, tuple(as_model_input(model, a) for a in where))
    return as_numpy(deconvnet(model, as_model_input(model, images), target))


def top_patches(model, layer, images, k=9, batch_size=256, channels=None, project=False,
                prepare=None):
    """For each channel of ``layer``: the ``k`` images with the largest spatial maximum.

    ``images``: the data set as stored, ``N`` items, anything with ``len`` that
    takes slices and integer-array indices like an array (NumPy, ``np.memmap``,
    CuPy), e.g. uint8 ``(N, H, W)``.
    ``prepare(images[a:b])`` turns one slice into model input ``(B, C, H, W)``,
    e.g. ``minicnn.data.prepare_images`` (the training scaling and
    normalization); ``None`` takes the items as they are (already ``(N, C, H, W)``
    model input).

    The scan runs ``model[:layer+1]`` over ``batch_size`` items at a time and
    keeps only the running top ``k`` per channel, so its memory does not grow
    with ``N``: one prepared batch and its activations, then the prepared
    copies of the chosen images (at most ``C * k``) for the crops. Nothing of
    ``images`` is converted all at once. An image counts once per channel (at
    its maximum; ties in position go to the first in row-major order, ties in
    value to the lower image index). ``project=True`` adds each crop's
    deconvnet projection. Crops and projections come from the prepared images.
    """
    prepare = prepare or (lambda x: x)
    layer = layer_index(model, layer)
    fields = receptive_fields(model, prepare(images[:1]).shape[1:])
    if not fields[layer].spatial:
        raise ValueError(f"{fields[layer].name} has no positions; pick a conv or pool layer")
    n_ch = fields[layer].shape[0]
    channels = np.arange(n_ch) if channels is None else np.asarray(channels)
    best_v = np.full((len(channels), 0), -np.inf)
    best_i = np.zeros((len(channels), 0), dtype=np.int64)
    best_p = np.zeros((len(channels), 0, 2), dtype=np.int64)
    part = model[:layer + 1]
    with probing(model):
        for start in range(0, len(images), batch_size):
            batch = as_model_input(model, prepare(images[start:start + batch_size]))
            act = part.forward(batch)[:, channels]                    # (B, C, Ho, Wo)
            del batch  # keep one batch alive at a time: memory stays flat in N
            flat = act.reshape(act.shape[0], act.shape[1], -1)
            where = as_numpy(flat.argmax(axis=2)).T                   # (C, B)
            value = as_numpy(flat.max(axis=2)).T.astype(np.float64)
            index = np.broadcast_to(np.arange(start, start + value.shape[1]), value.shape)
            pos = np.stack(np.divmod(where, act.shape[3]), axis=-1)
            del act, flat
            best_v, best_i, best_p = _merge(best_v, best_i, best_p, value, index, pos, k)
    # each chosen image prepared once, however many channels chose it
    chosen_ids, slot = np.unique(best_i, return_inverse=True)
    slot = slot.reshape(best_i.shape)
    prepared = as_numpy(prepare(images[chosen_ids]))          # (<= C*k, C_in, H, W)
    crops, projections = [], []
    for c, channel in enumerate(channels):
        chosen = prepared[slot[c]]
        boxes = [field_box(fields[layer], y, x) for y, x in best_p[c]]
        crops.append([_crop(chosen[j], box) for j, box in enumerate(boxes)])
        if project:
            proj = _projections(model, layer, chosen, channel, best_p[c])
            projections.append([_crop(proj[j], box) for j, box in enumerate(boxes)])
    return TopPatches(layer, fields[layer].name, channels, best_v, best_i, best_p,
                      np.asarray(crops), np.asarray(projections) if project else None)
