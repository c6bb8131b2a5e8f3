"""Gradient checks: the checker itself, then every layer, the loss and a whole model.

All checks run in float64 on tiny shapes, with inputs kept off the kinks:
distinct values for max pooling (no ties), values away from 0 for ReLU.
"""
import numpy as np
import pytest

from minicnn import (AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential,
                     Softmax, SoftmaxCrossEntropy)
from minicnn.backend import as_numpy
from minicnn.gradcheck import GradientCheckError, check_gradient, check_layer


def distinct(rng, shape):
    """Distinct values (a shuffled ramp) spaced 0.1 apart, centred on 0:
    max pooling has no ties, and a 1e-6 nudge never changes a winner."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * 0.1


def off_zero(rng, shape, margin=0.1):
    """Normal values pushed at least ``margin`` away from 0 (ReLU's kink)."""
    x = rng.standard_normal(shape)
    return x + np.sign(x) * margin


# -- the checker itself --------------------------------------------------------------------

def test_check_gradient_accepts_a_right_gradient(backend, rng):
    x = backend.asarray(rng.standard_normal((3, 4)))
    worst = check_gradient(lambda: (x ** 3).sum(), x, 3 * x ** 2)
    assert worst < 1e-6


def test_check_gradient_names_worst_index_and_both_values(backend, rng):
    x = backend.asarray(rng.standard_normal((3, 4)))
    wrong = 2 * x.copy()
    wrong[1, 2] += 0.5                                # the one deliberately wrong entry
    with pytest.raises(GradientCheckError) as info:
        check_gradient(lambda: (x ** 2).sum(), x, wrong, name="x")
    message = str(info.value)
    assert "at index (1, 2)" in message
    analytic, numerical = float(wrong[1, 2]), float(2 * x[1, 2])
    assert f"analytic {analytic:.10g}" in message
    assert f"numerical {numerical:.10g}" in message


def test_directional_mode_accepts_right_and_rejects_wrong(backend, rng):
    x = backend.asarray(rng.standard_normal((20, 30)))
    assert check_gradient(lambda: (x ** 3).sum(), x, 3 * x ** 2, directional=True) < 1e-6
    with pytest.raises(GradientCheckError, match="along a random direction"):
        check_gradient(lambda: (x ** 3).sum(), x, 3.3 * x ** 2, directional=True)


def test_check_gradient_refuses_float32(backend):
    x = backend.ones((2, 2), dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        check_gradient(lambda: x.sum(), x, backend.ones_like(x))


def test_check_layer_catches_a_wrong_backward(backend, rng):
    layer = Dense(3, 2, seed=0).astype("float64").to("cpu" if backend is np else "gpu")
    layer.backward = lambda g: 2 * (g @ layer.weight.value)    # input gradient doubled
    with pytest.raises(GradientCheckError, match="gradient of input wrong"):
        check_layer(layer, backend.asarray(rng.standard_normal((2, 3))))


# -- every layer ---------------------------------------------------------------------------

def check(layer, x, device, backend, **kwargs):
    """Gradient-check ``layer`` (moved to float64 on ``device``) at NumPy input ``x``."""
    layer.astype("float64").to(device)
    results = check_layer(layer, backend.asarray(x), **kwargs)
    expected = {"input"} | {name for name, _ in layer.named_parameters()}
    assert set(results) == expected
    return results


CONV_CASES = [  # (C_in, C_out, kernel, stride, padding, bias, H, W)
    (2, 3, 3, 1, 0, True, 5, 5),
    (2, 3, 3, 2, 1, True, 6, 5),
    (1, 2, (3, 2), (2, 1), (1, 0), True, 5, 4),
    (3, 2, 3, 1, "same", True, 4, 4),
    (2, 4, 1, 1, 0, True, 3, 3),          # 1x1 kernel
    (3, 2, 1, 2, 0, False, 4, 5),         # 1x1, strided, no bias
    (2, 2, 2, 1, 1, False, 3, 3),         # padding wider than needed, no bias
]


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "-".join(map(str, c)))
def test_conv2d_gradients(backend, device, rng, impl, case):
    c_in, c_out, k, s, p, bias, h, w = case
    layer = Conv2D(c_in, c_out, k, stride=s, padding=p, bias=bias, seed=1, impl=impl)
    results = check(layer, rng.standard_normal((2, c_in, h, w)), device, backend)
    assert ("bias" in results) == bias


POOL_CASES = [  # (kernel, stride, padding, H, W)
    (2, None, 0, 4, 4),
    (3, 2, 0, 7, 5),     # overlapping windows
    (3, 1, 1, 4, 4),     # overlapping and padded
    ((3, 2), (2, 1), (1, 1), 5, 4),
]


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
def test_pool_gradients(backend, device, rng, pool, case, impl):
    k, s, p, h, w = case
    check(pool(k, stride=s, padding=p, impl=impl), distinct(rng, (2, 2, h, w)), device, backend)


def test_relu_gradient(backend, device, rng):
    check(ReLU(), off_zero(rng, (3, 2, 4)), device, backend)


def test_dense_gradients(backend, device, rng):
    check(Dense(5, 3, seed=2), rng.standard_normal((4, 5)), device, backend)
    results = check(Dense(5, 3, bias=False, seed=2), rng.standard_normal((4, 5)), device, backend)
    assert "bias" not in results


def test_flatten_gradient(backend, device, rng):
    check(Flatten(), rng.standard_normal((2, 3, 2, 2)), device, backend)


def test_softmax_gradient(backend, device, rng):
    check(Softmax(), rng.standard_normal((3, 5)), device, backend)


def test_dropout_gradient_with_fixed_mask(backend, device, rng):
    """Each training forward draws a new mask, so ``f(x)`` is not a function of ``x``
    alone. Reseeding the layer's generator before every forward fixes the mask:
    then ``f(x) = sum(x * mask / (1 - p) * R)`` and backward (which must reuse the
    mask of the last forward) is checked against it."""
    layer = Dropout(0.4)
    forward = Dropout.forward

    def reseeded_forward(x):
        layer.generator = np.random.default_rng(7)
        return forward(layer, x)

    layer.forward = reseeded_forward
    check(layer, rng.standard_normal((4, 6)), device, backend)


def test_dropout_backward_uses_the_forward_mask(backend, rng):
    layer = Dropout(0.5, seed=3)
    x = backend.asarray(rng.uniform(1, 2, (8, 16)))        # nonzero: y / x recovers the scale
    y = layer.forward(x)
    g = layer.backward(backend.ones_like(x))
    g, ratio = as_numpy(g), as_numpy(y / x)
    np.testing.assert_allclose(g, ratio, rtol=1e-12)
    assert set(np.unique(g)) == {0.0, 2.0}                 # dropped, or kept and scaled by 1/(1-p)


def test_softmax_cross_entropy_gradient(backend, rng):
    loss = SoftmaxCrossEntropy()
    z = backend.asarray(rng.standard_normal((4, 5)) * 3)
    labels = backend.asarray(np.array([0, 4, 2, 2]))
    loss.forward(z, labels)
    grad = loss.backward()
    check_gradient(lambda: loss.forward(z, labels), z, grad, "logits")


def test_small_model_end_to_end(backend, device, rng):
    """conv-relu-pool-flatten-dense + loss: input and every parameter, through the loss."""
    model = Sequential([Conv2D(1, 2, 3, padding=1, seed=0), ReLU(), MaxPool2D(2),
                        Flatten(), Dense(2 * 3 * 3, 3, seed=1)])
    model.astype("float64").to(device)
    x = backend.asarray(rng.standard_normal((2, 1, 6, 6)))
    labels = backend.asarray(np.array([2, 0]))
    loss = SoftmaxCrossEntropy()

    def f():
        return loss.forward(model.forward(x), labels)

    for p in model.parameters():
        p.zero_grad()
    f()
    grad_x = model.backward(loss.backward())
    check_gradient(f, x, grad_x, "input")
    for name, p in model.named_parameters():
        check_gradient(f, p.value, p.grad.copy(), name)


@pytest.mark.parametrize("settings, says", [
    (dict(eps=0), "check_gradient eps must be a finite number > 0, got 0"),
    (dict(eps=float("nan")), "check_gradient eps must be a finite number > 0, got nan"),
    (dict(rtol=-1e-5), "check_gradient rtol must be a finite number >= 0, got -1e-05"),
    (dict(atol=float("inf")), "check_gradient atol must be a finite number >= 0, got inf"),
])
def test_bad_check_settings_are_one_line(settings, says):
    """Found by trying: ``eps=0`` was a ZeroDivisionError, ``eps=nan`` blamed the layer
    ("gradient of input wrong ... numerical nan")."""
    from minicnn import Dense
    from minicnn.gradcheck import check_layer
    layer = Dense(3, 2, seed=0).astype("float64")
    with pytest.raises(ValueError) as info:
        check_layer(layer, np.random.default_rng(0).standard_normal((2, 3)), **settings)
    assert str(info.value) == says
