"""Mini-batches for training: shuffle, convert, augment and normalise on the fly.

``BatchIterator`` turns a dataset held in memory (uint8 images as loaded from
IDX files, integer labels) into batches a network can eat::

    batches = BatchIterator(x_train, y_train, batch_size=64, seed=0)
    for epoch in range(epochs):
        for xb, yb in batches:      # xb float32 (B, 1, 28, 28), yb int64 (B,)
            ...

Reproducibility: the order of epoch ``k`` comes from a generator seeded with
``(seed, k)`` only, never from the previous epoch's state. A run resumed
with ``set_epoch(k)`` therefore sees exactly the batches the uninterrupted
run would have seen, augmentation included.
"""
import math

import numpy as np

from ..backend import check_device, get_array_module, to_device
from .augment import Augment

# Mean and standard deviation of the MNIST training pixels after scaling to [0, 1].
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def prepare_images(x, normalize=(MNIST_MEAN, MNIST_STD), augment=None, rng=None):
    """Images as stored -> the float32 ``(B, C, H, W)`` a network is trained on.

    The conversion every ``BatchIterator`` batch goes through, for use on a
    slice of a dataset outside one (e.g. scanning it batch by batch).

    x: ``(B, H, W)`` (a channel axis is added) or ``(B, C, H, W)``, a NumPy
        (np.memmap included) or CuPy array; uint8 is scaled to [0, 1] by
        dividing by 255, other dtypes are taken as they are.
    normalize: ``(mean, std)`` applied after scaling (and after ``augment``),
        or ``None``; default MNIST's statistics.
    augment: ``augment(x, rng)`` on the scaled batch, or ``None``.

    Returns a new float32 array on the same device as ``x``.
    """
    xp = get_array_module(x)
    x = xp.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"prepare_images takes a batch of images, (B, H, W) or (B, C, H, W), "
                         f"got shape {tuple(x.shape)}")
    if x.ndim == 3:
        x = x.reshape(x.shape[0], 1, *x.shape[1:])
    scale_uint8 = x.dtype == xp.uint8
    x = x.astype(xp.float32)
    if scale_uint8:
        x /= xp.float32(255)
    if augment is not None:
        x = augment(x, rng)  # while 0 still means background
    if normalize is not None:
        mean, std = normalize
        x = (x - xp.float32(mean)) / xp.float32(std)
    return x


class BatchIterator:
    """Seeded, re-iterable mini-batches of ``(images, labels)``.

    images: ``(N, H, W)`` (a channel axis is added) or ``(N, C, H, W)``, any
        numeric dtype; uint8 is scaled to [0, 1] by dividing by 255, other
        dtypes are taken as they are.
    labels: ``(N,)`` integers; returned as int64.
    batch_size: samples per batch; the last batch is smaller unless
        ``drop_last=True``, which drops it.
    shuffle: draw a fresh permutation each epoch (else keep the stored order).
    seed: fixes every permutation and every augmentation.
    normalize: ``(mean, std)`` applied after scaling, or ``None`` for none.
        The default is MNIST's statistics.
    augment: an ``Augment`` (random shifts and rotations, applied before
        normalisation) or ``None``.
    device: ``"cpu"`` or ``"gpu"``; on the GPU the whole dataset is copied to
        the device once, here, and batches are cut out there.

    Iterating yields ``(x, y)``: x float32 ``(B, C, H, W)``, y int64 ``(B,)``,
    both on ``device``. Each ``for`` loop over the iterator is one epoch and
    moves the epoch counter on; ``epoch(k)`` gives the batches of epoch ``k``
    without touching the counter.
    """

    def __init__(self, images, labels, batch_size, shuffle=True, seed=0,
                 normalize=(MNIST_MEAN, MNIST_STD), augment=None, drop_last=False,
                 device="cpu"):
        check_device(device)
        xp = get_array_module(images, labels)
        images, labels = xp.asarray(images), xp.asarray(labels)
        if images.ndim == 3:
            images = images.reshape(images.shape[0], 1, *images.shape[1:])
        if images.ndim != 4:
            raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(f"labels must be ({images.shape[0]},) to match the images, "
                             f"got shape {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got {labels.dtype}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if normalize is not None and (len(normalize) != 2 or not normalize[1] > 0):
            raise ValueError(f"normalize must be (mean, std) with std > 0, or None; "
                             f"got {normalize!r}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be an Augment (or a callable) or None, got {augment!r}")
        self.images = to_device(images, device)  # once: batches are sliced on the device
        self.labels = to_device(labels, device).astype("int64")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.normalize = None if normalize is None else (float(normalize[0]), float(normalize[1]))
        self.augment = augment
        self.drop_last = drop_last
        self.device = device
        self.next_epoch = 0

    def __len__(self):
        """Number of batches in one epoch."""
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_samples(self):
        return self.images.shape[0]

    def set_epoch(self, k):
        """Make the next ``for`` loop produce epoch ``k`` (to resume a run)."""
        if int(k) != k or k < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {k!r}")
        self.next_epoch = int(k)

    def __iter__(self):
        k = self.next_epoch
        self.next_epoch += 1
        return self.epoch(k)

    def epoch(self, k):
        """Yield the batches of epoch ``k``; the same ``(seed, k)`` gives the same batches."""
        n = self.images.shape[0]
        # Two independent streams per epoch, both fixed by (seed, k) alone.
        order_rng = np.random.default_rng([self.seed, k, 0])
        augment_rng = np.random.default_rng([self.seed, k, 1])
        order = order_rng.permutation(n) if self.shuffle else np.arange(n)
        order = get_array_module(self.images).asarray(order)  # one transfer per epoch
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self._prepare(self.images[idx], augment_rng), self.labels[idx]

    def _prepare(self, x, rng):
        """Raw batch (B, C, H, W) -> float32, scaled, augmented, normalised."""
        return prepare_images(x, self.normalize, self.augment, rng)

    def __repr__(self):
        return (f"BatchIterator(n={self.num_samples}, batch_size={self.batch_size}, "
                f"batches={len(self)}, shuffle={self.shuffle}, seed={self.seed}, "
                f"normalize={self.normalize}, augment={self.augment}, "
                f"drop_last={self.drop_last}, device={self.device!r})")


__all__ = ["BatchIterator", "prepare_images", "Augment", "MNIST_MEAN", "MNIST_STD"]
