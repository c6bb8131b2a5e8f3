"""The backward step-through (minicnn.viz.step_through), float64, against PyTorch autograd."""
import numpy as np
import pytest
from test_propagation import random_net

from minicnn import Conv2D, Dense, MaxPool2D, ReLU, Sequential
from minicnn.backend import as_numpy
from minicnn.layers import LAYER_TYPES, LeakyReLU, MaxUnpool2D
from minicnn.viz import (backward_formula, deeplift, draw_step_through, guided_backprop, lrp,
                         rules, step_through)
from minicnn.viz.stepthrough import check_backward, kink_preserving_direction

torch = pytest.importorskip("torch")
from torch_helpers import t, torch_copy  # noqa: E402  (needs torch)


@pytest.fixture
def net(rng, device):
    return random_net(rng).to(device)


@pytest.fixture
def x(rng, backend):
    """Three random images, the first with MNIST's flat background: a constant region,
    so max-pool windows of equal values (ties) and equal conv outputs occur."""
    x = rng.standard_normal((3, 1, 12, 12))
    x[0, :, :6] = -0.4242
    return backend.asarray(x)


def autograd_input_gradient(net, x, classes):
    twin, xt = torch_copy(net), t(x).requires_grad_(True)
    twin(xt)[np.arange(len(classes)), classes].sum().backward()
    return xt.grad.numpy()


def test_first_grad_in_is_autograds_input_gradient_and_the_chain_holds(net, x):
    classes = [1, 3, 4]
    records = step_through(net, x, classes)
    assert [r["index"] for r in records] == list(range(len(net.layers)))
    np.testing.assert_allclose(records[0]["grad_in"],
                               autograd_input_gradient(net, as_numpy(x), classes),
                               rtol=1e-10, atol=1e-13)
    for lower, upper in zip(records, records[1:]):
        np.testing.assert_allclose(lower["grad_out"], upper["grad_in"], rtol=0, atol=1e-12)
    top = np.zeros((3, 5))
    top[np.arange(3), classes] = 1.0
    np.testing.assert_array_equal(records[-1]["grad_out"], top)        # the one-hot start
    assert records[0]["input"].shape == x.shape


def test_every_layers_check_is_below_1e_6_even_at_ties_and_zeros(net, x):
    records = step_through(net, x, None)
    checks = {r["index"]: r["check"] for r in records}
    assert all(c < 1e-6 for c in checks.values()), checks
    assert all(r["rule"] == "gradient" and r["rule_vs_gradient"] is None for r in records)


def test_the_direction_keeps_ties_and_zeros(backend):
    a = backend.asarray(np.array([[0.0, 1.5, 1.5, -2.0, 0.0, 1.5]]))
    d = as_numpy(kink_preserving_direction(a, seed=3))
    assert d[0, 0] == 0 and d[0, 4] == 0                       # zeros stay zero
    assert d[0, 1] == d[0, 2] == d[0, 5]                       # equal values move together
    assert np.all(d[0, [1, 3]] != 0)


def test_a_random_direction_would_wrongly_fail_max_pooling_at_a_tie(backend):
    """Why the direction is phi(x): at a window of equal values the plain random direction
    of gradcheck crosses the tie and the check fails a correct max pool."""
    from minicnn.gradcheck import GradientCheckError, check_layer
    pool, a = MaxPool2D(2), backend.asarray(np.zeros((1, 1, 2, 2)))
    with pytest.raises(GradientCheckError):
        check_layer(pool, a, directional=True)
    pool.forward(a)
    assert check_backward(pool, a, backend.asarray(np.ones((1, 1, 1, 1)))) < 1e-12


class ForgetsTheMask(ReLU):
    """A ReLU whose backward forgets the forward mask (a typical bug)."""

    def backward(self, grad_out):
        return grad_out


class ScaledDense(Dense):
    """A Dense whose input gradient is 0.1% too large."""

    def backward(self, grad_out):
        return 1.001 * super().backward(grad_out)


class FlippedPool(MaxPool2D):
    """A max pool that routes its gradient to the mirrored position."""

    def backward(self, grad_out):
        return super().backward(grad_out)[..., ::-1].copy()


@pytest.mark.parametrize("index, broken", [(1, ForgetsTheMask), (7, ScaledDense),
                                           (2, FlippedPool)])
def test_a_broken_backward_fails_its_own_check_and_no_other(net, x, index, broken):
    old = net.layers[index]
    bad = broken.__new__(broken)
    bad.__dict__.update(old.__dict__)                # same weights and settings, wrong backward
    net.layers[index] = bad
    checks = [r["check"] for r in step_through(net, x, None)]
    assert checks[index] > 1e-4, checks
    assert all(c < 1e-6 for i, c in enumerate(checks) if i != index), checks


def test_a_swapped_rule_reports_its_distance_from_the_gradient_not_a_check(net, x):
    records = step_through(net, x, None, rule="guided")
    np.testing.assert_allclose(records[0]["grad_in"], as_numpy(guided_backprop(net, x, None)),
                               rtol=1e-12, atol=1e-15)
    relus = [r["rule_vs_gradient"] for r in records if isinstance(net.layers[r["index"]], ReLU)]
    assert relus[0] > 0.1                     # the first ReLU cuts the negative gradients
    for r in records:
        assert r["check"] is None
        relu = isinstance(net.layers[r["index"]], ReLU)
        assert relu or r["rule_vs_gradient"] == 0, r["name"]     # only ReLUs change the signal
        assert r["formula"] == ("dx = g * (x > 0) * (g > 0)" if relu else
                                backward_formula(net.layers[r["index"]]))


def test_lrp_and_deeplift_step_through_end_in_their_maps(net, x, backend, rng):
    records = step_through(net, x, None, rule="lrp-epsilon", epsilon=0.1)
    np.testing.assert_allclose(records[0]["grad_in"], as_numpy(lrp(net, x, None, epsilon=0.1)),
                               rtol=1e-12, atol=1e-15)
    assert records[0]["formula"] == "R_in = a * W^T (R / stabilize(W a + b))"
    base = backend.asarray(rng.standard_normal(x.shape) * 0.3)
    records = step_through(net, x, None, rule="deeplift", baseline=base)
    np.testing.assert_allclose(records[0]["grad_in"] * as_numpy(x - base),
                               as_numpy(deeplift(net, x, None, baseline=base)),
                               rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="unknown backward rule"):
        step_through(net, x, None, rule="lrp-nope")


def test_every_built_in_layer_and_rule_has_a_backward_formula():
    classes = list(LAYER_TYPES.values()) + [MaxUnpool2D]
    missing = [c.__name__ for c in classes if backward_formula(c.__new__(c)).startswith("(no")]
    assert not missing, f"add a 'Backward: ``...``' line to the docstring of {missing}"
    rule_classes = [rules.Pass, rules.Epsilon, rules.Gamma, rules.AlphaBeta, rules.ZPlus,
                    rules.ZBox, rules.WSquare, rules.Flat, rules.Proportional, rules.Rescale,
                    rules.RescaleMaxPool]
    missing = [c.__name__ for c in rule_classes
               if backward_formula(ReLU(), c.__new__(c)).startswith("(no")]
    assert not missing, missing
    assert backward_formula(ReLU()) == "dx = g * (x > 0)"
    assert backward_formula(ReLU(), rules.Deconvnet()) == "dx = max(g, 0)"
    assert backward_formula(LeakyReLU(), rules.Guided()).endswith("* (g > 0)")
    assert backward_formula(ForgetsTheMask()) == "dx = g * (x > 0)"     # inherited: it claims
    assert backward_formula(Conv2D(1, 1, 1), rules.Gradient()).startswith("dx = col2im")


def test_a_layer_of_ones_own_without_formula_says_so(backend, device):
    from minicnn import Layer

    class Twice(Layer):
        def forward(self, x):
            return 2 * x

        def backward(self, g):
            return 2 * g
    assert backward_formula(Twice()) == "(no 'Backward:' line in the docstring of Twice)"
    # seeded weights, and the bound of every correct layer here: an unseeded Dense made a
    # directional derivative small enough for rounding to reach 1.2e-9 in one CI run
    net = Sequential([Twice(), Dense(3, 2, seed=0)]).astype("float64").to(device)
    records = step_through(net, backend.asarray(np.ones((1, 3))), 0)
    assert records[0]["check"] < 1e-6


def test_the_step_through_figure_marks_the_broken_layer(net, x, tmp_path):
    bad = ForgetsTheMask.__new__(ForgetsTheMask)
    bad.__dict__.update(net.layers[4].__dict__)
    net.layers[4] = bad
    fig = draw_step_through(step_through(net, x, None), path=tmp_path / "st.png")
    assert (tmp_path / "st.png").stat().st_size > 0
    colours = [ax.title.get_color() for ax in fig.axes[:len(net.layers)]]
    assert colours[4] == "red" and colours.count("red") == 1
