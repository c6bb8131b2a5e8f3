"""Test-time augmentation and ensembles: shifts, and averages of eval-mode probabilities."""
import numpy as np
import pytest

from minicnn import models
from minicnn.data import BatchIterator
from minicnn.training.ensemble import (TTA_SHIFTS, accuracy, ensemble_proba, predict_proba,
                                       shift_images)
from minicnn.training.trainer import evaluate


def test_shift_images_moves_and_fills_with_zeros():
    x = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3)
    np.testing.assert_array_equal(shift_images(x, 1, 0)[0], [[0, 0, 0], [1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(shift_images(x, 0, -1)[0], [[2, 3, 0], [5, 6, 0], [8, 9, 0]])
    np.testing.assert_array_equal(shift_images(x, 0, 0), x)


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), rng.integers(0, 10, 30)


def test_unshifted_prediction_is_the_evaluation(digits):
    x, y = digits
    model = models.tiny_cnn(seed=1)
    p = predict_proba(model, x, batch_size=7)
    assert p.shape == (30, 10) and np.allclose(p.sum(axis=1), 1)
    result = evaluate(model, BatchIterator(x, y, 7, shuffle=False))
    np.testing.assert_array_equal(p.argmax(axis=1), result["predictions"])
    assert accuracy(p, y) == result["accuracy"]


def test_tta_and_ensemble_average(digits):
    x, _ = digits
    a, b = models.tiny_cnn(seed=1), models.tiny_cnn(seed=2)
    tta = predict_proba(a, x, shifts=TTA_SHIFTS)
    by_hand = np.mean([predict_proba(a, shift_images(x, dy, dx)) for dy, dx in TTA_SHIFTS], 0)
    np.testing.assert_allclose(tta, by_hand, rtol=1e-12)
    np.testing.assert_allclose(ensemble_proba([a, b], x),
                               (predict_proba(a, x) + predict_proba(b, x)) / 2, rtol=1e-12)
    assert a.training                      # the mode is restored
