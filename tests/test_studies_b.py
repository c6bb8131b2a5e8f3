"""Studies of issue 7, part b: dense features, code vectors, transfer learning.

Small synthetic data only; the full runs are the examples/study_*.py scripts.
"""
import numpy as np
import pytest

from minicnn.backend import as_numpy, to_device
from minicnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from minicnn.models import lenet, tiny_cnn
from minicnn.studies.codes import (PCA, code_vectors, interpreter_scores, pca, standardize,
                                   train_softmax)
from minicnn.studies.features import analyze_dense_features, draw_dense_features
from minicnn.studies.transfer import (accuracy, feature_layers, few_labels_transfer, reinitialize,
                                      sample_per_class, train_steps, transfer_model)


# -- 1. the dense layer as a feature library ----------------------------------------------
def test_contributions_sum_to_the_models_logits(backend, device, rng):
    model = tiny_cnn(seed=3).astype("float64").to(device)
    image = rng.standard_normal((1, 28, 28))
    r = analyze_dense_features(model, to_device(image, device))
    logits = as_numpy(model.eval()(to_device(image[None], device)))[0]
    # the row sums of s[j] * W[k, j] plus the bias are the network's own logits
    np.testing.assert_allclose(r.contributions.sum(axis=1) + r.bias, logits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.logits, logits, rtol=0, atol=1e-12)
    assert r.contributions.shape == (10, 16) and r.signals.shape == (16,)
    assert np.all(r.signals >= 0)                             # ReLU'd
    np.testing.assert_allclose(r.probabilities.sum(), 1.0)
    assert r.predicted == int(np.argmax(logits))
    assert r.signal == int(np.argmax(r.signals))               # default: the strongest signal


def test_pushes_have_the_right_signs():
    r = analyze_dense_features(tiny_cnn(seed=1), np.random.default_rng(0).random((1, 28, 28)))
    toward, against = r.pushes(r.predicted, n=16)
    assert all(c > 0 for _, c in toward) and all(c < 0 for _, c in against)
    assert sum(c for _, c in toward) + sum(c for _, c in against) == pytest.approx(
        r.contributions[r.predicted].sum())


def test_trace_follows_the_pool_switch_to_a_conv_unit_in_its_window(rng):
    model = tiny_cnn(seed=2)
    r = analyze_dense_features(model, rng.random((1, 28, 28)).astype(np.float32), top=4)
    assert len(r.inputs) == 4 and r.filters.shape == (4, 4, 5, 5)
    contributions = [t.contribution for t in r.inputs]
    assert contributions == sorted(contributions, reverse=True)
    for t in r.inputs:
        c, y, x = t.pooled
        cy, cx = t.conv
        assert 2 * y <= cy < 2 * y + 2 and 2 * x <= cx < 2 * x + 2    # inside the 2x2 window
        # a conv-2 unit of tiny_cnn sees 5 + 4*1 + 4*2 ... = a 14x14 input box
        assert (t.box.height, t.box.width) == (14, 14)
    assert r.signal_weights.shape == (8, 4, 4) and r.first_filters.shape == (4, 1, 5, 5)


def test_input_map_is_the_gradient_of_the_signal(rng):
    model = tiny_cnn(seed=4).astype("float64")
    image = rng.random((1, 28, 28))
    r = analyze_dense_features(model, image, signal=None)
    eps, (y, x) = 1e-6, (14, 12)
    bumped = image.copy()
    bumped[0, y, x] += eps
    s_plus = analyze_dense_features(model, bumped).signals[r.signal]
    assert r.input_map[0, y, x] == pytest.approx((s_plus - r.signals[r.signal]) / eps, abs=1e-5)
    deconv = analyze_dense_features(model, image, rule="deconvnet")
    assert deconv.rule == "deconvnet" and deconv.input_map.shape == (1, 28, 28)


def test_drawing_runs():
    import matplotlib
    matplotlib.use("Agg")
    r = analyze_dense_features(tiny_cnn(), np.zeros((1, 28, 28), np.float32) + 0.5)
    fig = draw_dense_features(r)
    assert len(fig.axes) > 5


# -- 2. code vectors and interpreters -------------------------------------------------------
def test_pca_recovers_known_axes_and_variances():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((6, 6)))       # orthonormal columns
    latent = rng.standard_normal((4000, 6)) * np.array([5.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    x = latent @ basis.T + 3.0
    p = pca(x, k=2)
    assert isinstance(p, PCA) and p.components.shape == (2, 6)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(2), atol=1e-12)
    for i in range(2):   # each axis is the true one up to sign
        assert abs(p.components[i] @ basis[:, i]) == pytest.approx(1.0, abs=1e-3)
    evals = np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1]
    np.testing.assert_allclose(p.variance, evals[:2], rtol=1e-10)
    np.testing.assert_allclose(p.ratio, evals[:2] / evals.sum(), rtol=1e-10)
    z = p.transform(x)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(z.var(axis=0, ddof=1), p.variance, rtol=1e-10)


def test_pca_rejects_bad_k():
    with pytest.raises(ValueError, match="k="):
        pca(np.zeros((5, 3)), k=4)


@pytest.mark.parametrize("make, width", [(tiny_cnn, 16), (lenet, 1024)])
def test_code_vectors_have_the_penultimate_width(make, width):
    model = make()
    model.train()
    images = np.random.default_rng(0).random((7, 1, 28, 28)).astype(np.float32)
    codes = code_vectors(model, images, batch_size=3)
    assert codes.shape == (7, width) and codes.dtype == np.float32 and np.all(codes >= 0)
    assert model.training                                      # left as it was
    with_eval = as_numpy(model.eval()[:len(model) - 1](images))
    np.testing.assert_allclose(codes, with_eval, rtol=1e-4, atol=1e-5)  # batch-size rounding


CENTERS = np.random.default_rng(99).standard_normal((4, 12)) * 6


def _separable_codes(rng, n):
    """Clusters around far-apart centres with bounded noise: linearly separable."""
    y = rng.integers(0, len(CENTERS), n)
    return (CENTERS[y] + rng.uniform(-0.5, 0.5, (n, CENTERS.shape[1]))).astype(np.float32), y


def test_softmax_on_separable_codes_reaches_100_percent():
    rng = np.random.default_rng(1)
    x, y = _separable_codes(rng, 400)
    xt, yt = _separable_codes(np.random.default_rng(2), 400)    # same centres, new points
    x, xt = standardize(x, xt)
    model = train_softmax(x, y, epochs=100, seed=0)
    assert accuracy(model, x, y) == 1.0 and accuracy(model, xt, yt) == 1.0


def test_interpreters_table_without_and_with_sklearn(monkeypatch):
    rng = np.random.default_rng(2)
    x, y = _separable_codes(rng, 200)
    scores = interpreter_scores(x[:150], y[:150], x[150:], y[150:], names=("softmax",),
                                softmax_epochs=100)
    assert [s.name for s in scores] == ["softmax"] and scores[0].accuracy == 1.0
    pytest.importorskip("sklearn")
    scores = interpreter_scores(x[:150], y[:150], x[150:], y[150:],
                                names=("svm", "decision_tree", "random_forest"))
    assert all(s.accuracy >= 0.95 for s in scores), scores


def test_interpreters_skip_sklearn_when_missing(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn here")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    x, y = _separable_codes(np.random.default_rng(3), 60)
    scores = interpreter_scores(x, y, x, y, names=("svm",))
    assert scores[0].accuracy is None and "scikit-learn" in scores[0].note


# -- 3. transfer learning -------------------------------------------------------------------
def _small_net(seed):
    return Sequential([Conv2D(1, 3, 3, seed=seed), ReLU(), MaxPool2D(2), Flatten(),
                       Dense(3 * 3 * 3, 8, seed=seed + 1), ReLU(), Dense(8, 4, seed=seed + 2)],
                      input_shape=(1, 8, 8))


def test_sample_per_class_exact_and_seeded():
    labels = np.repeat(np.arange(5), [10, 7, 12, 9, 30])
    idx = sample_per_class(labels, 6, seed=4)
    assert np.bincount(labels[idx]).tolist() == [6] * 5
    assert len(set(idx.tolist())) == len(idx)                  # no repeats
    assert np.array_equal(idx, sample_per_class(labels, 6, seed=4))
    assert not np.array_equal(idx, sample_per_class(labels, 6, seed=5))
    assert len(sample_per_class(labels, None)) == len(labels)
    with pytest.raises(ValueError, match="fewer than k=8"):
        sample_per_class(labels, 8)


def test_frozen_features_stay_and_dense_layers_learn(backend, device):
    rng = np.random.default_rng(0)
    x = to_device(rng.random((40, 1, 8, 8)).astype(np.float32), device)
    y = to_device(rng.integers(0, 4, 40), device)
    source = _small_net(0).to(device)
    model = transfer_model(source, lambda s: _small_net(s).to(device), seed=10)
    k = feature_layers(model)
    assert k == 4
    before = model.state_dict()
    assert np.array_equal(before["0.weight"], source.state_dict()["0.weight"])
    assert not np.array_equal(before["4.weight"], source.state_dict()["4.weight"])  # re-drawn
    train_steps(model, x, y, steps=5, batch_size=16)
    after = model.state_dict()
    for name in ("0.weight", "0.bias"):
        assert np.array_equal(after[name], before[name]), name
    for name in ("4.weight", "4.bias", "6.weight", "6.bias"):
        assert not np.array_equal(after[name], before[name]), name
    assert all(np.all(as_numpy(p.grad) == 0) for p in model[:k].parameters())


def test_reinitialize_redraws_with_the_layer_scale():
    layer = Dense(200, 50, seed=0)
    old = layer.weight.value.copy()
    layer.weight.value[...] = 7.0
    reinitialize([layer], seed=1)
    assert layer.weight.value.dtype == np.float32
    assert not np.array_equal(layer.weight.value, old)
    assert layer.weight.value.std() == pytest.approx(np.sqrt(2 / 200), rel=0.05)


def test_few_labels_rows_on_tiny_data():
    rng = np.random.default_rng(1)
    x, y = rng.random((80, 1, 8, 8)).astype(np.float32), np.repeat(np.arange(4), 20)
    source = _small_net(0)
    rows = few_labels_transfer(source, _small_net, (x, y), (x[:20], y[:20]),
                               per_class=(3, None), steps=4)
    assert [r.n_train for r in rows] == [12, 80]
    assert all(0.0 <= r.pretrained <= 1.0 and 0.0 <= r.scratch <= 1.0 for r in rows)
    assert np.array_equal(source.state_dict()["0.weight"], _small_net(0).state_dict()["0.weight"])
