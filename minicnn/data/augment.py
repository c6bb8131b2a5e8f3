"""On-the-fly data augmentation: small random shifts and rotations of a batch.

Every function works on a whole batch ``(B, C, H, W)`` at once and is written
with the array module of its input, so the same code runs on NumPy and CuPy.
Pixels that come from outside the image are filled with 0, so apply these
before normalisation, while 0 still means "background".

The random numbers (how far each image moves) are drawn on the host from a
NumPy ``Generator``: the same seed then gives the same augmented batches on
the CPU and on the GPU.
"""
from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module


@dataclass(frozen=True)
class Augment:
    """Random shifts of up to ``max_shift`` pixels and rotations of up to
    ``max_rotation_degrees`` either way; 0 turns a part off."""

    max_shift: int = 2
    max_rotation_degrees: float = 10.0

    def __post_init__(self):
        if int(self.max_shift) != self.max_shift or self.max_shift < 0:
            raise ValueError(f"max_shift must be an integer >= 0, got {self.max_shift!r}")
        if not 0 <= self.max_rotation_degrees <= 180:
            raise ValueError("max_rotation_degrees must be in [0, 180], "
                             f"got {self.max_rotation_degrees!r}")

    def __call__(self, x, rng):
        """Augment a float batch ``x`` (B, C, H, W); ``rng`` is a NumPy Generator."""
        b = x.shape[0]
        if self.max_rotation_degrees > 0:
            angles = rng.uniform(-self.max_rotation_degrees, self.max_rotation_degrees, size=b)
            x = rotate_images(x, angles)
        if self.max_shift > 0:
            s = int(self.max_shift)
            x = shift_images(x, rng.integers(-s, s + 1, size=b), rng.integers(-s, s + 1, size=b))
        return x


def shift_images(x, dy, dx):
    """Move image ``b`` down by ``dy[b]`` and right by ``dx[b]`` whole pixels.

    x: (B, C, H, W); dy, dx: integer sequences of length B (negative = up /
    left). Returns a new (B, C, H, W) array: ``out[b, :, i, j] = x[b, :, i -
    dy[b], j - dx[b]]``, and 0 where that falls outside the image.
    """
    xp = get_array_module(x)
    B, C, H, W = x.shape
    rows = xp.arange(H)[None, :] - xp.asarray(dy).reshape(B, 1)  # (B, H) source rows
    cols = xp.arange(W)[None, :] - xp.asarray(dx).reshape(B, 1)  # (B, W) source cols
    return _gather(x, rows[:, None, :, None], cols[:, None, None, :])


def translate(images, dy, dx, fill=0.0):
    """``images (..., H, W)`` all moved ``dy`` rows down and ``dx`` columns right
    (negative: up / left); pixels pushed past the edge are lost, vacated ones get ``fill``.
    (``shift_images`` moves each image of a batch by its own amount.)"""
    xp = get_array_module(images)
    out = xp.full_like(images, fill)
    h, w = images.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out

    def spans(d, n):  # (destination slice, source slice) along one axis
        return (slice(d, n), slice(0, n - d)) if d >= 0 else (slice(0, n + d), slice(-d, n))
    (ty, sy), (tx, sx) = spans(int(dy), h), spans(int(dx), w)
    out[..., ty, tx] = images[..., sy, sx]
    return out


def rotate_images(x, angles_degrees):
    """Rotate image ``b`` by ``angles_degrees[b]`` about its centre (counter-clockwise as shown).

    x: (B, C, H, W) float; returns a new array of the same shape and dtype.
    Each output pixel is read back from where it came from in the input
    (so there are no holes) by bilinear interpolation between the four
    nearest input pixels; an angle of 0 returns the input exactly.
    """
    xp = get_array_module(x)
    B, C, H, W = x.shape
    theta = xp.asarray(np.deg2rad(np.asarray(angles_degrees, dtype=np.float64)))
    cos, sin = xp.cos(theta)[:, None, None], xp.sin(theta)[:, None, None]  # (B, 1, 1)
    cy, cx = (H - 1) / 2, (W - 1) / 2
    # Output pixel (i, j) in centred coordinates, y pointing up as on screen.
    u = (xp.arange(W, dtype=xp.float64) - cx)[None, None, :]  # (1, 1, W)
    v = (cy - xp.arange(H, dtype=xp.float64))[None, :, None]  # (1, H, 1)
    # Rotating the content by +theta means reading the input at -theta.
    src_j = cx + (u * cos + v * sin)  # (B, H, W)
    src_i = cy - (-u * sin + v * cos)
    i0, j0 = xp.floor(src_i), xp.floor(src_j)
    fi, fj = (src_i - i0).astype(x.dtype), (src_j - j0).astype(x.dtype)
    i0, j0 = i0.astype(xp.int64), j0.astype(xp.int64)
    out = xp.zeros_like(x)
    for di, wi in ((0, 1 - fi), (1, fi)):  # the four neighbours and their weights
        for dj, wj in ((0, 1 - fj), (1, fj)):
            out += (wi * wj)[:, None] * _gather(x, (i0 + di)[:, None], (j0 + dj)[:, None])
    return out


def _gather(x, rows, cols):
    """``out[b, c, i, j] = x[b, c, rows[b, i, j], cols[b, i, j]]``, 0 outside the image.

    rows, cols: integer arrays broadcastable to (B, 1, H, W) (the same
    source pixel for every channel). Indices out of range are clipped for
    the read and then masked to 0.
    """
    xp = get_array_module(x)
    B, C, H, W = x.shape
    inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
    b = xp.arange(B).reshape(B, 1, 1, 1)
    c = xp.arange(C).reshape(1, C, 1, 1)
    values = x[b, c, xp.clip(rows, 0, H - 1), xp.clip(cols, 0, W - 1)]
    return values * inside.astype(x.dtype)
