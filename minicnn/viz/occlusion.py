"""Occlusion sensitivity (Zeiler & Fergus 2014, Fig. 7).

A ``size x size`` square of ``fill`` is slid over the image with ``stride``;
for each placement ``(i, j)`` (top-left corner ``(i*stride, j*stride)``) the
occluded image is classified again and we record::

    prob[n, i, j] = softmax(logits(x_n occluded at (i, j)))[target_n]
    unit[n, i, j] = the chosen unit's activation on that occluded image

A drop of ``prob`` where the square covers a region means the model relies on
that region. Placements are ``(H - size) // stride + 1`` by ``... W ...``; all
occluded copies of all images are run in batches of ``batch_size``.
"""
from ..backend import get_array_module
from ..layers import Softmax
from ..arguments import whole_number
from .probe import probing
from .targets import Unit, resolve_target


def _placements(h, w, size, stride):
    rows = range(0, h - size + 1, stride)
    cols = range(0, w - size + 1, stride)
    return [(top, left) for top in rows for left in cols], len(rows), len(cols)


def _to_pixels(grid, positions, shape, size, clean):
    """Per pixel, the mean of ``grid`` over the placements whose square covers it;
    ``clean`` (the unoccluded value) where no placement covers the pixel."""
    xp = get_array_module(grid)
    n, _, h, w = shape
    total = xp.zeros((n, 1, h, w), dtype=grid.dtype)
    count = xp.zeros((1, 1, h, w), dtype=grid.dtype)
    for p, (top, left) in enumerate(positions):
        total[:, 0, top:top + size, left:left + size] += grid[:, p, None, None]
        count[:, :, top:top + size, left:left + size] += 1
    covered = count > 0
    clean = clean.reshape(n, 1, 1, 1)
    return xp.where(covered, total / xp.maximum(count, 1), clean)


def occlusion(model, x, target_class, size, stride, fill=None, unit=None, grid=False,
              batch_size=64):
    """Occlusion maps of the target class probability (and optionally of a unit).

    ``x (N, C, H, W)``; ``target_class`` a class per image (int, sequence, or ``None``
    for the predicted class; probabilities, not logits, as in the paper);
    ``fill`` the occluder's value: ``None`` means gray, taken here as each
    image's own mean per channel (for images normalized to mean 0 that is about
    0; for [0, 1] images, the mid-level of the image), or a number.
    ``unit`` an optional ``Unit``; with ``position=None`` its strongest position
    in the *unoccluded* image is used for every placement.

    Returns ``(N, 1, H, W)``: each pixel holds the mean probability over the
    placements covering it (the unoccluded probability where none does). With
    ``grid=True``, the raw ``(N, rows, cols)`` placement grid instead. With a
    ``unit``, a pair ``(prob_map, unit_map)`` of such arrays.

    Captum: ``Occlusion`` on the softmax with ``sliding_window_shapes=(C, size,
    size)``, ``strides=(C, stride, stride)`` and ``baselines=fill`` (for
    ``fill=None`` the channel means, ``(N, C, 1, 1)``) returns ``p(x) - prob_map``
    in every channel when ``(H - size)`` and ``(W - size)`` are multiples
    of ``stride`` (otherwise Captum adds clipped placements at the far edges
    that this function leaves out, keeping the whole square in the image).
    """
    size = whole_number("occlusion", "size", size)
    stride = whole_number("occlusion", "stride", stride)
    xp = get_array_module(x)
    n, c, h, w = x.shape
    if isinstance(target_class, Unit):
        raise ValueError("occlusion's target_class is a class (int, sequence or None); "
                         "pass a Unit as unit=")
    picks = [resolve_target(model, x, target_class)]
    if unit is not None:
        picks.append(resolve_target(model, x, unit))
    if fill is None:
        fill = x.mean(axis=(2, 3), keepdims=True)                      # (N, C, 1, 1)
    fill = xp.broadcast_to(xp.asarray(fill, dtype=x.dtype), (n, c, 1, 1))

    positions, n_rows, n_cols = _placements(h, w, size, stride)
    if not positions:
        raise ValueError(f"an occluder of size {size} does not fit in a {h}x{w} image")
    grids = [xp.empty((n, len(positions)), dtype=x.dtype) for _ in picks]
    per_batch = max(1, batch_size // n)
    with probing(model):
        for start in range(0, len(positions), per_batch):
            chunk = positions[start:start + per_batch]
            batch = xp.repeat(x[:, None], len(chunk), axis=1)          # (N, P, C, H, W)
            for p, (top, left) in enumerate(chunk):
                batch[:, p, :, top:top + size, left:left + size] = fill
            batch = batch.reshape(n * len(chunk), c, h, w)
            values = _evaluate(model, batch, picks, len(chunk))
            for g, v in zip(grids, values):
                g[:, start:start + len(chunk)] = v
        clean = _evaluate(model, x, picks, 1)
    maps = []
    for g, v in zip(grids, clean):
        maps.append(g.reshape(n, n_rows, n_cols) if grid
                    else _to_pixels(g, positions, x.shape, size, v[:, 0]))
    return maps[0] if unit is None else tuple(maps)


def _evaluate(model, batch, picks, copies):
    """For a batch of ``N * copies`` images (image-major), each pick's value, ``(N, copies)``.

    The first pick is the class (its softmax probability), the second the unit.
    """
    xp = get_array_module(batch)
    needed = [p.index for p in picks]
    out, outputs = batch, []
    for i in range(max(needed) + 1):
        out = model.layers[i].forward(out)
        if i in needed:
            outputs.append((i, out))
    outputs = dict(outputs)
    values = []
    for n_pick, pick in enumerate(picks):
        act = outputs[pick.index]
        if n_pick == 0:
            act = Softmax().forward(act)                                # probabilities
        act = act.reshape((-1, copies) + act.shape[1:])                # (N, copies, ...)
        where = (pick.where[0][:, None], xp.arange(copies)[None]) + \
            tuple(idx[:, None] for idx in pick.where[1:])
        values.append(act[where])
    return values


__all__ = ["occlusion"]
