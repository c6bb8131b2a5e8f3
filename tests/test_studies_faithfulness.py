"""Deletion and insertion curves (minicnn.studies.faithfulness) on cases worked out by hand."""
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, ReLU, Sequential
from minicnn.studies import faithfulness
from minicnn.viz import saliency


def linear_model(w):
    """Two classes, logits ``(w . x, 0)``: p(class 0) = sigmoid(w . x) on a 1x2x2 image."""
    model = Sequential([Flatten(), Dense(4, 2, bias=False)], input_shape=(1, 2, 2))
    model.astype("float64")
    model.layers[1].weight.value[...] = np.array([w, [0.0, 0.0, 0.0, 0.0]])
    return model


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_pixel_order_largest_first_ties_random():
    np.testing.assert_array_equal(faithfulness.pixel_order([[0.1, 0.9, 0.5, 0.3]]),
                                  [[3, 0, 1, 2]])
    ties = faithfulness.pixel_order(np.zeros((1, 50)), seed=3)
    assert sorted(ties[0]) == list(range(50)) and not np.array_equal(ties[0], np.arange(50))


def test_deletion_and_insertion_on_a_linear_model(backend, device):
    """Order by the scores: pixel 0, 1, 2, 3; all pixels 1, background 0. After s pixels
    deleted the logit is w[s:].sum(); after s inserted, w[:s].sum()."""
    w = [2.0, -1.0, 0.5, 1.0]
    model = linear_model(w).to(device)
    x = backend.ones((1, 1, 2, 2))
    scores = np.array([[[4.0, 3.0], [2.0, 1.0]]])
    deletion = faithfulness.perturbation_curves(model, x, scores, 0, "deletion", 4, 0.0)
    insertion = faithfulness.perturbation_curves(model, x, scores, 0, "insertion", 4, 0.0)
    np.testing.assert_allclose(deletion, [sigmoid(np.array([2.5, 0.5, 1.5, 1.0, 0.0]))])
    np.testing.assert_allclose(insertion, [sigmoid(np.array([0.0, 2.0, 1.0, 1.5, 2.5]))])
    two = faithfulness.perturbation_curves(model, x, scores, 0, "deletion", 2, 0.0)
    np.testing.assert_allclose(two, [sigmoid(np.array([2.5, 1.5, 0.0]))])   # 0, 2, 4 pixels
    d = sigmoid(np.array([2.5, 0.5, 1.5, 1.0, 0.0]))
    np.testing.assert_allclose(faithfulness.area_under_curve(deletion),
                               [(d[0] / 2 + d[1] + d[2] + d[3] + d[4] / 2) / 4])


def test_background_value_is_what_removed_pixels_become():
    model = linear_model([1.0, 1.0, 1.0, 1.0])
    x = np.zeros((1, 1, 2, 2))
    curve = faithfulness.perturbation_curves(model, x, np.ones((1, 2, 2)), 0, "deletion", 1,
                                             background=-2.0)
    np.testing.assert_allclose(curve, [[0.5, sigmoid(-8.0)]])


def test_area_under_curve():
    np.testing.assert_allclose(faithfulness.area_under_curve([[0.0, 1.0], [1.0, 1.0]]), [0.5, 1])
    np.testing.assert_allclose(faithfulness.area_under_curve([1.0, 0.0, 0.0]), 0.25)


def test_sobel_on_a_vertical_edge():
    x = np.zeros((1, 1, 4, 4))
    x[..., 2:] = 1.0
    np.testing.assert_allclose(faithfulness.sobel_magnitude(x)[0], [[0, 4, 4, 0]] * 4)


def test_study_shapes_and_end_points():
    model = Sequential([Conv2D(1, 2, 3, padding=1, seed=0), ReLU(), Flatten(),
                        Dense(2 * 6 * 6, 3, seed=1)], input_shape=(1, 6, 6))
    x = np.random.default_rng(0).standard_normal((4, 1, 6, 6)).astype(np.float32)
    methods = {"gradient": lambda m, x, t: saliency(m, x, t)}
    study = faithfulness.faithfulness_study(model, x, methods=methods, steps=4, chunk=2,
                                            background=0.0)
    assert study.names == ["gradient", "random", "Sobel edges"]
    assert study.deletion.shape == study.insertion.shape == (3, 4, 5)
    np.testing.assert_allclose(study.fractions, [0, 0.25, 0.5, 0.75, 1])
    from minicnn.viz import class_probabilities
    p = class_probabilities(model, x)[np.arange(4), study.targets]
    blank = class_probabilities(model, np.zeros_like(x))[np.arange(4), study.targets]
    for m in range(3):            # the clean image and the blank one at the two ends
        np.testing.assert_allclose(study.deletion[m, :, 0], p, rtol=1e-6)
        np.testing.assert_allclose(study.insertion[m, :, -1], p, rtol=1e-6)
        np.testing.assert_allclose(study.deletion[m, :, -1], blank, rtol=1e-6)
        np.testing.assert_allclose(study.insertion[m, :, 0], blank, rtol=1e-6)
    assert [a.shape for a in study.auc()] == [(3, 4), (3, 4)]
    assert faithfulness.format_table(study).count("\n") == 4
    assert len(faithfulness.draw_faithfulness(study).axes) == 2


def test_bad_mode_is_named():
    with pytest.raises(ValueError, match="deletion"):
        faithfulness.perturbation_curves(linear_model([1, 1, 1, 1]), np.zeros((1, 1, 2, 2)),
                                         np.zeros((1, 2, 2)), 0, "erase")
