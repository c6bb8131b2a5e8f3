"""Receptive fields: which input pixels a unit can see.

Along one axis, describe the units of a layer by three numbers (in input pixels):

- ``size``  -- how many input pixels one unit's field spans,
- ``jump``  -- how far apart the fields of neighbouring units start (the effective stride),
- ``start`` -- where the field of unit 0 starts (negative when it reaches into padding).

Unit ``i`` then sees input pixels ``start + i*jump`` to ``start + i*jump + size - 1``.
The input itself has ``size = 1, jump = 1, start = 0``. A window layer (conv or
pool) with kernel ``k``, dilation ``d`` (taps ``d`` apart), stride ``s`` and
padding ``p`` before the first pixel maps them to::

    size' = size + (k - 1) * d * jump
    jump' = jump * s
    start' = start - p * jump

A dilated layer alone sees a field with gaps (every ``d``-th pixel); a stack
of dilations 1, 2, 4, ... fills them, which is why dilated stacks grow their
fields exponentially without pooling. Padding that is not zeros
(``padding_mode``) makes border units see the pixels the padding copies:
``receptive_box`` follows them (``circular`` wraps to the far edge).

Elementwise layers (ReLU, Dropout, ...) change nothing. After ``Flatten`` or
``Dense`` a unit has no position: its field is the whole image.

The box is a bounding box: when a stride exceeds its kernel some pixels inside
it are skipped (the field has gaps), which is rare and never so in ``models``.
"""
from dataclasses import dataclass

from ..kernels.textbook import pads_of, source_index
from ..layers import Dense, Flatten, Sequential
from .probe import layer_index


@dataclass(frozen=True)
class Field:
    """Receptive-field geometry of the units of one layer's output; pairs are ``(rows, cols)``.

    ``size``, ``jump`` and ``start`` are ``None`` for layers without positions
    (after ``Flatten``), whose units see the whole image.
    """
    index: int
    name: str
    shape: tuple          # per-example output shape, e.g. (32, 28, 28)
    size: tuple = None
    jump: tuple = None
    start: tuple = None

    @property
    def spatial(self):
        return self.size is not None


@dataclass(frozen=True)
class Box:
    """Input rows ``top:bottom`` and columns ``left:right`` (``bottom``, ``right`` excluded)."""
    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self):
        return self.bottom - self.top

    @property
    def width(self):
        return self.right - self.left

    def clip(self, hw):
        """The part inside an image of size ``hw = (H, W)``."""
        return Box(max(self.top, 0), max(self.left, 0), min(self.bottom, hw[0]),
                   min(self.right, hw[1]))


def _is_window(layer):
    return all(hasattr(layer, a) for a in ("kernel_size", "stride", "padding"))


def _window(layer):
    """``(kernel, stride, dilation, pads ((top, bottom), (left, right)), padding_mode)``."""
    pads = getattr(layer, "pads", None) or pads_of(layer.padding)
    return (layer.kernel_size, layer.stride, getattr(layer, "dilation", (1, 1)), pads,
            getattr(layer, "padding_mode", "zeros"))


def _step(layer, geometry, in_shape):
    """Geometry ``(size, jump, start)`` after ``layer``, or ``None`` (no positions)."""
    if geometry is None or isinstance(layer, (Flatten, Dense)):
        return None
    if isinstance(layer, Sequential):
        for inner in layer.layers:
            geometry, in_shape = _step(inner, geometry, in_shape), inner.output_shape(in_shape)
        return geometry
    if _is_window(layer):
        size, jump, start = geometry
        k, s, d, pads, _ = _window(layer)
        return (tuple(size[a] + (k[a] - 1) * d[a] * jump[a] for a in range(2)),
                tuple(jump[a] * s[a] for a in range(2)),
                tuple(start[a] - pads[a][0] * jump[a] for a in range(2)))
    if tuple(layer.output_shape(in_shape)) == tuple(in_shape):
        return geometry                               # elementwise
    raise TypeError(f"receptive fields: don't know how {layer!r} moves pixels "
                    f"(not a conv/pool window, not elementwise, not Flatten/Dense)")


def receptive_fields(model, input_shape=None):
    """One ``Field`` per layer of a ``Sequential``: the geometry of that layer's output.

    ``input_shape`` is per example ``(C, H, W)``; default ``model.input_shape``.
    """
    in_shape = tuple(input_shape or model.input_shape)
    geometry = ((1, 1), (1, 1), (0, 0))
    fields = []
    for i, layer in enumerate(model.layers):
        geometry = _step(layer, geometry, in_shape)
        in_shape = tuple(layer.output_shape(in_shape))
        size, jump, start = geometry if geometry is not None else (None, None, None)
        fields.append(Field(i, f"{i} {type(layer).__name__}", in_shape, size, jump, start))
    return fields


def field_box(field, y, x, image_hw=None):
    """The input box seen by the unit at ``(y, x)`` of ``field``'s layer.

    Unclipped (may reach into padding) unless ``image_hw = (H, W)`` is given.
    A unit without position (after ``Flatten``) sees the whole image, which
    then needs ``image_hw``.
    """
    if not field.spatial:
        if image_hw is None:
            raise ValueError(f"{field.name} has no positions: pass image_hw for its whole-image box")
        return Box(0, 0, image_hw[0], image_hw[1])
    top = field.start[0] + y * field.jump[0]
    left = field.start[1] + x * field.jump[1]
    box = Box(top, left, top + field.size[0], left + field.size[1])
    return box if image_hw is None else box.clip(image_hw)


def _trace_back(layer, in_shape, rows, cols):
    """The sets of ``layer``'s input rows and columns that its outputs at ``rows``
    x ``cols`` read (every tap, through the padding to the pixel it copies;
    zeros dropped); unchanged for elementwise layers."""
    if isinstance(layer, Sequential):
        shapes = [tuple(in_shape)]
        for inner in layer.layers[:-1]:
            shapes.append(tuple(inner.output_shape(shapes[-1])))
        for inner, shape in zip(reversed(layer.layers), reversed(shapes)):
            rows, cols = _trace_back(inner, shape, rows, cols)
        return rows, cols
    if _is_window(layer):
        k, s, d, pads, mode = _window(layer)
        return tuple({source_index(i * s[a] + t * d[a], in_shape[1 + a], pads[a][0], mode)
                      for i in positions for t in range(k[a])} - {None}
                     for a, positions in enumerate((rows, cols)))
    return rows, cols                                  # elementwise


def receptive_box(model, layer, y, x, input_shape=None, clip=True):
    """``Box`` of input pixels that unit ``(layer, :, y, x)`` depends on.

    ``clip=True`` traces the unit back layer by layer, keeping only positions
    that exist at each layer and taps that are read (so rows dropped by a
    pooling's floor division, zero padding, or a dilation's gaps never count;
    other padding counts as the pixel it copies). ``clip=False`` gives the box of the formulas
    above, which may reach outside the image. Units after ``Flatten`` see the
    whole image.
    """
    input_shape = tuple(input_shape or model.input_shape)
    fields = receptive_fields(model, input_shape)
    layer = layer_index(model, layer)
    shape = fields[layer].shape
    if fields[layer].spatial and not (0 <= y < shape[1] and 0 <= x < shape[2]):
        raise ValueError(f"position ({y}, {x}) is outside layer {layer}'s {shape[1]}x{shape[2]} "
                         f"output")
    if not fields[layer].spatial:
        return field_box(fields[layer], y, x, input_shape[1:])
    if not clip:
        return field_box(fields[layer], y, x)
    rows, cols = {y}, {x}
    for i in range(layer, -1, -1):
        in_shape = input_shape if i == 0 else fields[i - 1].shape
        rows, cols = _trace_back(model.layers[i], in_shape, rows, cols)
    if not rows or not cols:                           # the unit reads padding only
        return Box(0, 0, 0, 0)
    return Box(min(rows), min(cols), max(rows) + 1, max(cols) + 1)
