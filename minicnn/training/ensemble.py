"""Test-time augmentation and ensembles: average class probabilities.

Test-time augmentation (TTA) shows the network each test image a few times,
shifted by a pixel, and averages the softmax probabilities; an ensemble
averages the probabilities of several trained models::

    p(x) = mean over models m and shifts s of softmax(m(shift_s(x)))

Both only ever run the ordinary eval-mode forward pass.
"""
import numpy as np

from ..backend import as_numpy
from ..data import prepare_images
from ..data.augment import translate as shift_images
from ..layers.activations import softmax
from .inference import chunks, eval_forward

NO_SHIFT = ((0, 0),)
TTA_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))   # (rows, columns)


def predict_proba(model, images, shifts=NO_SHIFT, batch_size=1000):
    """Mean softmax probabilities ``(N, K)`` (NumPy, float64) of ``model`` in eval mode
    over the ``shifts`` of the stored images ``(N, 28, 28)`` (uint8, converted batch
    by batch on the way to the model's device)."""
    total = 0
    for dy, dx in shifts:
        moved = shift_images(np.asarray(images), dy, dx)
        batches = (prepare_images(b) for b in chunks(moved, batch_size))
        total = total + np.concatenate([as_numpy(softmax(out)).astype(np.float64)
                                        for out in eval_forward(model, batches)])
    return total / len(shifts)


def ensemble_proba(models, images, shifts=NO_SHIFT, batch_size=1000):
    """The mean of ``predict_proba`` over ``models``; ``(N, K)``."""
    probs = [predict_proba(m, images, shifts, batch_size) for m in models]
    return sum(probs) / len(probs)


def accuracy(probabilities, labels):
    return float((np.asarray(probabilities).argmax(axis=1) == as_numpy(labels)).mean())
