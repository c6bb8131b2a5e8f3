"""Sanity checks of attribution maps (minicnn.studies.sanity): ranks, rank correlation,
which layers the randomization tests re-initialize, and the shapes the studies return."""
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from minicnn.backend import as_numpy
from minicnn.studies import sanity
from minicnn.viz import grad_cam, saliency


def small_net(seed=0):
    """conv-ReLU-pool-conv-ReLU-flatten-dense-ReLU-dense on 1x8x8: four parameter layers."""
    return Sequential([Conv2D(1, 3, 3, padding=1, seed=seed), ReLU(), MaxPool2D(2),
                       Conv2D(3, 4, 3, padding=1, seed=seed + 1), ReLU(), Flatten(),
                       Dense(4 * 4 * 4, 6, seed=seed + 2), ReLU(), Dense(6, 3, seed=seed + 3)],
                      input_shape=(1, 8, 8))


METHODS = {"gradient": lambda m, x, t: saliency(m, x, t),
           "Grad-CAM": lambda m, x, t: grad_cam(m, x, t, 4)}


def test_rank_averages_ties():
    np.testing.assert_array_equal(sanity.rank([[3, 1, 1, 2], [10, 20, 30, 0]]),
                                  [[3, 0.5, 0.5, 2], [1, 2, 3, 0]])
    np.testing.assert_array_equal(sanity.rank([[5, 5, 5, 1, 7]]), [[2, 2, 2, 0, 4]])


def test_spearman_by_hand():
    """rank differences d = (0, 1, -1, 0): rho = 1 - 6 sum d^2 / (n (n^2 - 1)) = 1 - 12/60."""
    a = np.array([[1.0, 2.0, 3.0, 4.0]] * 4)
    b = np.array([[10.0, 30.0, 20.0, 40.0],      # one swap
                  [1.0, 4.0, 9.0, 16.0],         # monotone: 1
                  [4.0, 3.0, 2.0, 1.0],          # reversed: -1
                  [2.0, 2.0, 2.0, 2.0]])         # constant: undefined
    rho = sanity.spearman(a, b)
    np.testing.assert_allclose(rho[:3], [0.8, 1.0, -1.0], atol=1e-12)
    assert np.isnan(rho[3])


def test_spearman_with_ties_is_pearson_of_mean_ranks():
    a, b = np.array([[0.0, 0.0, 1.0, 2.0]]), np.array([[0.0, 1.0, 1.0, 3.0]])
    ra, rb = np.array([0.5, 0.5, 2, 3]), np.array([0, 1.5, 1.5, 3])
    np.testing.assert_allclose(sanity.spearman(a, b), [np.corrcoef(ra, rb)[0, 1]], atol=1e-12)


def _same(model_a, model_b, i):
    return all(np.array_equal(as_numpy(p.value), as_numpy(q.value))
               for p, q in zip(model_a.layers[i].parameters(), model_b.layers[i].parameters()))


def test_randomize_changes_exactly_the_given_layers(device):
    model = small_net().to(device)
    before = [as_numpy(p.value).copy() for p in model.parameters()]
    assert sanity.parameter_layers(model) == [0, 3, 6, 8]
    new = sanity.randomize(model, [8, 3], seed=1)
    assert [_same(model, new, i) for i in (0, 3, 6, 8)] == [True, False, True, False]
    assert new.layers[3].weight.value.dtype == model.layers[3].weight.value.dtype
    for p, b in zip(model.parameters(), before):          # the trained model is untouched
        np.testing.assert_array_equal(as_numpy(p.value), b)
    again = sanity.randomize(model, [3], seed=1)           # same seed, same random layer
    assert _same(new, again, 3)


def test_cascading_randomizes_top_down(backend, device):
    model = small_net().to(device)
    x = backend.asarray(np.random.default_rng(0).standard_normal((2, 1, 8, 8)), np.float32)
    test = sanity.cascading_randomization(model, x, [0, 2], METHODS)
    assert test.randomized == [[], [8], [8, 6], [8, 6, 3], [8, 6, 3, 0]]
    assert test.stages[0] == "trained" and len(test.stages) == 5
    assert test.spearman.shape == test.spearman_abs.shape == (2, 5, 2)
    assert test.mean().shape == test.undefined().shape == (2, 5)
    np.testing.assert_allclose(test.spearman[0, 0], 1.0)   # the trained map with itself
    models = [sanity.randomize(model, c) for c in test.randomized]
    for k, cut in enumerate(test.randomized):               # stage k: the top k layers random
        assert [not _same(model, models[k], i) for i in (0, 3, 6, 8)] == \
            [i in cut for i in (0, 3, 6, 8)]
    np.testing.assert_allclose(test.spearman[0, 2],
                               sanity.spearman(saliency(model, x, [0, 2]),
                                               saliency(models[2], x, [0, 2])))


def test_independent_randomizes_one_layer_at_a_time():
    model = small_net()
    x = np.random.default_rng(1).standard_normal((3, 1, 8, 8)).astype(np.float32)
    test = sanity.independent_randomization(model, x, [0, 1, 2], METHODS)
    assert test.randomized == [[], [8], [6], [3], [0]]
    assert test.spearman.shape == (2, 5, 3)
    assert sanity.format_table(test).count("\n") == 3      # header, rule, two methods
    fig = sanity.draw_sanity(test, test)
    assert len(fig.axes) == 4


def test_data_randomization_shapes():
    rng = np.random.default_rng(2)
    images = rng.standard_normal((40, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 40)
    result = sanity.data_randomization(small_net, images, labels, images[:4], labels[:4],
                                       steps=3, methods=METHODS, batch_size=8)
    assert result.spearman.shape == result.spearman_abs.shape == (2, 4)
    assert set(result.train_accuracy) == {"true labels", "permuted labels"}
    assert all(0 <= a <= 1 for a in result.test_accuracy.values())
    assert len(sanity.draw_sanity(*[sanity.independent_randomization(
        small_net(), images[:2], [0, 1], METHODS)] * 2, result).axes) == 6


def test_method_suite_runs_on_a_small_net():
    model = small_net()
    x = np.random.default_rng(3).standard_normal((2, 1, 8, 8)).astype(np.float32)
    suite = sanity.method_suite(model, ig_steps=2, smooth_samples=2)
    assert len(suite) == 12
    for name, fn in suite.items():
        out = fn(model, x, [0, 1])
        assert out.shape[0] == 2 and out.shape[2:] == (8, 8), name


def test_grad_cam_layer_needs_a_conv():
    with pytest.raises(ValueError, match="Conv2D"):
        sanity.method_suite(Sequential([Flatten(), Dense(4, 2)]))
