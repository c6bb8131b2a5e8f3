"""The validation split and the best-by-validation model of a run.

``minicnn train --validation N`` holds ``N`` images out of the training set: a fixed
random subset, ``np.random.default_rng((seed, SPLIT_STREAM)).permutation(n)[:N]``
(sorted), the same for a given seed and ``N`` on every machine; a larger ``N`` with the
same seed holds the smaller one's images and more. The split is taken from the whole
training set *before* ``train_subset``, which then takes the first images of the rest,
so no held-out image is ever trained on.

After each epoch the trainer evaluates the model on the held-out images (eval mode);
the model with the highest validation accuracy so far (ties: the lower validation loss,
then the earlier epoch) is written to ``RUN_DIR/best.npz`` by the one model-file writer,
its header section ``"best"`` holding ``epoch``, ``val_acc`` and ``val_loss``, together
with the epoch's checkpoint (``minicnn.training.checkpoint.write_checkpoint``). The test
set is evaluated and logged too, but it never takes part in the choice.
``minicnn evaluate RUN_DIR --best`` evaluates that model.
"""
import numpy as np


SPLIT_STREAM = 0x5EED_0F_5A11D    # keeps the split's random stream apart from shuffling's


def validation_split(num_images, size, seed):
    """``(train_indices, val_indices)``: int64 index arrays into a training set of
    ``num_images``, disjoint, together all of them, each in increasing order;
    ``val_indices`` has ``size`` entries (see the module docstring for the rule)."""
    order = np.random.default_rng((int(seed), SPLIT_STREAM)).permutation(num_images)
    held = np.zeros(num_images, dtype=bool)
    held[order[:size]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def run_split(num_images, config):
    """``(train_indices, val_indices)`` of a run on a training set of ``num_images``:
    ``config.validation`` images held out (the size checked), then the first
    ``config.train_subset`` of the rest (all of them when it is ``None``)."""
    if not config.validation:
        return np.arange(num_images)[:config.train_subset], np.arange(0)
    check_validation_size(config.validation, num_images, config.batch_size)
    train, val = validation_split(num_images, config.validation, config.seed)
    return train[:config.train_subset], val


def check_validation_size(size, num_images, batch_size):
    """Raise ``ValueError`` (one line) when ``size`` images cannot be held out of a
    training set of ``num_images`` and still leave at least one batch to train on."""
    left = num_images - size
    if left <= 0:
        raise ValueError(f"validation={size} leaves {max(left, 0)} of the {num_images} "
                         f"training images to train on: choose --validation below "
                         f"{num_images - batch_size + 1}")
    if left < batch_size:
        raise ValueError(f"validation={size} leaves {left} training images, fewer than one "
                         f"batch of {batch_size}: choose --validation at most "
                         f"{num_images - batch_size}")


def is_better(result, best):
    """Whether the validation ``result`` (``accuracy``, ``loss``) beats ``best``
    (``None`` or a dict with ``val_acc``, ``val_loss``): higher accuracy, ties broken
    by the lower loss; an exact tie keeps the earlier epoch."""
    if best is None:
        return True
    return (result["accuracy"], -result["loss"]) > (best["val_acc"], -best["val_loss"])
