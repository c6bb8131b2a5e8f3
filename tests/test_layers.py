"""ReLU, Softmax, Dense, Flatten, Dropout and the loss: values, layouts and bad input."""
import numpy as np
import pytest

from minicnn import Dense, Dropout, Flatten, ReLU, Softmax, SoftmaxCrossEntropy
from minicnn.backend import as_numpy
from minicnn.viz.rules import RELU_RULES


def test_relu_backward_rules(backend):
    """The ReLU's gradient, and the two rules explanations swap in for it."""
    relu = ReLU()
    x = backend.asarray(np.array([[-1.0, 2.0, -3.0, 4.0]]))
    g = backend.asarray(np.array([[5.0, -6.0, -7.0, 8.0]]))
    np.testing.assert_array_equal(as_numpy(relu.forward(x)), [[0, 2, 0, 4]])
    expected = {"gradient": [[0, -6, 0, 8]],       # g where x > 0
                "deconvnet": [[5, 0, 0, 8]],        # g where g > 0
                "guided": [[0, 0, 0, 8]]}           # both
    for rule, want in expected.items():
        got = RELU_RULES[rule]().backward(relu, x, g)
        np.testing.assert_array_equal(as_numpy(got), want)


def test_relu_leaves_its_input_alone(backend):
    x = backend.asarray(np.array([-1.0, 1.0]))
    ReLU().forward(x)
    np.testing.assert_array_equal(as_numpy(x), [-1.0, 1.0])


def test_softmax_rows_sum_to_one_without_overflow(backend):
    p = as_numpy(Softmax().forward(backend.asarray(np.array([[1000.0, 1000.0, -1000.0]]))))
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]])


def test_dense_formula_and_layout(backend, device, rng):
    dense = Dense(4, 3, seed=0).astype("float64").to(device)
    assert dense.weight.shape == (3, 4) and dense.bias.shape == (3,)
    x = rng.standard_normal((2, 4))
    w, b = as_numpy(dense.weight.value), as_numpy(dense.bias.value)
    np.testing.assert_allclose(as_numpy(dense.forward(backend.asarray(x))), x @ w.T + b)


@pytest.mark.parametrize("shape", [(4,), (2, 5), (2, 4, 1)])
def test_dense_bad_input(backend, device, shape):
    with pytest.raises(ValueError, match=r"Dense\(.*expects input of shape \(N, 4\)"):
        Dense(4, 3).to(device).forward(backend.zeros(shape))


def test_flatten_is_c_order(backend):
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    flat = Flatten()
    y = flat.forward(backend.asarray(x))
    np.testing.assert_array_equal(as_numpy(y), x.reshape(2, 12))
    assert flat.backward(y).shape == (2, 3, 2, 2)
    assert flat.output_shape((3, 2, 2)) == (12,)
    with pytest.raises(ValueError, match="Flatten"):
        flat.forward(backend.zeros(3))


def test_dropout_train_scales_and_eval_is_identity(backend, rng):
    x = backend.asarray(rng.uniform(1, 2, (200, 50)))
    drop = Dropout(0.3, seed=1)
    y = as_numpy(drop.forward(x))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02                  # 10,000 draws: 4.6 sigma
    np.testing.assert_allclose(y[kept], as_numpy(x)[kept] / 0.7)
    drop.eval()
    assert drop.forward(x) is x
    assert drop.backward(x) is x


def test_dropout_seeded_masks_repeat():
    x = np.ones((4, 10))
    a, b = Dropout(0.5, seed=9).forward(x), Dropout(0.5, seed=9).forward(x)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match="Dropout p must be in"):
        Dropout(p)


def test_loss_value_and_gradient_formula(backend):
    z = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    labels = np.array([0, 2])
    loss = SoftmaxCrossEntropy()
    value = float(loss.forward(backend.asarray(z), backend.asarray(labels)))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert value == pytest.approx(-np.log(p[[0, 1], labels]).mean(), rel=1e-12)
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(as_numpy(loss.backward()), (p - onehot) / 2, rtol=1e-12)


def test_loss_is_stable_for_huge_logits(backend):
    z = backend.asarray(np.array([[1e4, 0.0], [0.0, -1e4]]))
    value = float(SoftmaxCrossEntropy().forward(z, backend.asarray(np.array([1, 0]))))
    assert value == pytest.approx(5e3)


@pytest.mark.parametrize("labels, match", [
    ([0, 3], r"labels must be in \[0, 3\), got values from 0 to 3"),
    ([-1, 0], r"labels must be in \[0, 3\)"),
    ([0.0, 1.0], r"expects integer labels of shape \(2,\)"),
    ([0, 1, 2], r"expects integer labels of shape \(2,\)"),
])
def test_loss_rejects_bad_labels(backend, labels, match):
    z = backend.zeros((2, 3))
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy " + match):
        SoftmaxCrossEntropy().forward(z, backend.asarray(np.array(labels)))


def test_loss_rejects_bad_logits(backend):
    loss, labels = SoftmaxCrossEntropy(), backend.asarray(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"expects logits of shape \(N, K\)"):
        loss.forward(backend.zeros(3), labels)
    z = np.zeros((2, 3))
    z[1, 2] = np.nan
    with pytest.raises(FloatingPointError, match="NaN or infinite logits"):
        loss.forward(backend.asarray(z), labels)
