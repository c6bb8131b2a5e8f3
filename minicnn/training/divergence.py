"""When training has gone wrong: a NaN, infinite or exploded loss, and labels out of range.

The trainer keeps each step's loss on the device and reads the losses back every
``CHECK_EVERY`` steps (and at each epoch's end, before its checkpoint), not after
each step: a GPU then never waits for the host mid-epoch. ``check_loss`` looks at
each of them; labels are checked once per data set (``check_labels``).
"""
import math

from .config import NUM_CLASSES

# A NaN or exploded loss is found at most CHECK_EVERY - 1 steps late, and no
# checkpoint has been written in between.
CHECK_EVERY = 10
# Divergence without NaN: a batch's mean loss above DIVERGENCE_FACTOR * log(K). An
# untrained network that spreads its probability evenly over the K classes has loss
# log(K) (2.30 for K = 10), and training only lowers it; a mean loss of
# 100 * log(10) = 230 means the true class gets a probability of about e^-230, which
# only a network whose weights have blown up gives (Adam at lr=1e3 reaches 1e15).
DIVERGENCE_FACTOR = 100


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite, or exploded; the message says where and what
    to do."""


def check_labels(labels, which, num_classes=NUM_CLASSES):
    """Raise ``ValueError`` unless every label is in ``[0, num_classes)``. Done once
    per data set, so that the loss need not read the labels back on every batch."""
    if len(labels):
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            raise ValueError(f"{which} labels must be in [0, {num_classes}), "
                             f"got values from {low} to {high}")


def check_loss(loss, what, steps=None, num_classes=NUM_CLASSES):
    """Raise ``FloatingPointError`` if ``loss`` is NaN, infinite, or above the
    divergence bound ``DIVERGENCE_FACTOR * log(num_classes)``."""
    bound = DIVERGENCE_FACTOR * math.log(num_classes)
    read = f"; steps {steps[0]}-{steps[1]} were checked together" if steps else ""
    if not math.isfinite(loss):
        raise FloatingPointError(f"{what} is {loss}{read}")
    if loss > bound:
        raise FloatingPointError(f"{what} exploded to {loss:.3g}, above {bound:.0f} = "
                                 f"{DIVERGENCE_FACTOR} x log({num_classes}), the loss of an "
                                 f"untrained network{read}")
