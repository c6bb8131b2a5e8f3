"""Propagation methods by backward rules, each held to the identity that defines it (float64)."""
import numpy as np
import pytest

from minicnn import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from minicnn.backend import as_numpy
from minicnn.viz import checks
from minicnn.viz.propagation import (COMPOSITES, LRP_RULES, deeplift, excitation_backprop,
                                     gradient_x_input, lrp)
from minicnn.viz.rules import Epsilon, Rule


def random_net(rng, bias=True, pool=MaxPool2D):
    """conv-ReLU-pool-conv-ReLU-avgpool-dense-ReLU-dense on 1x12x12, random float64 weights.
    The first pool overlaps (3x3, stride 2) to exercise windows that share inputs."""
    model = Sequential([
        Conv2D(1, 4, 3, padding=1, bias=bias), ReLU(), pool(3, stride=2, padding=1),
        Conv2D(4, 6, 3, bias=bias), ReLU(), AvgPool2D(2), Flatten(),
        Dense(6 * 2 * 2, 8, bias=bias), ReLU(), Dense(8, 5, bias=bias)],
        input_shape=(1, 12, 12)).astype("float64")
    for p in model.parameters():
        p.value[...] = rng.standard_normal(p.value.shape) * 0.6
    return model


@pytest.fixture
def net(rng, device):
    return random_net(rng).to(device)


@pytest.fixture
def x(rng, backend):
    return backend.asarray(rng.standard_normal((3, 1, 12, 12)))


def test_lrp0_equals_gradient_times_input(net, x):
    """Ancona et al. 2018: on a ReLU network LRP-0 is gradient x input, biases included."""
    np.testing.assert_allclose(as_numpy(lrp(net, x, [1, 2, 3], rule="0")),
                               as_numpy(gradient_x_input(net, x, [1, 2, 3])),
                               rtol=1e-10, atol=1e-13)


def test_lrp0_conserves_relevance_layer_by_layer_without_biases(rng, device, x):
    net = random_net(rng, bias=False).to(device)
    table = checks.lrp_conservation(net, x, 4, rule="0")
    logits = as_numpy(net.eval().forward(x))[:, 4]
    for row in table:
        np.testing.assert_allclose(row["relevance"], logits, rtol=1e-10,
                                   err_msg=f"layer {row['layer']} {row['name']}")
        np.testing.assert_allclose(row["absorbed"], 0, atol=1e-12)


@pytest.mark.parametrize("rule", ["0", "epsilon"])
def test_conservation_reports_what_the_biases_absorb(net, x, rule):
    table = checks.lrp_conservation(net, x, None, rule=rule, epsilon=0.1)
    logits = as_numpy(net.eval().forward(x)).max(axis=1)
    np.testing.assert_allclose(table[-1]["relevance"], logits, rtol=1e-10)   # R at the top
    for above, below in zip(table[::-1], table[-2::-1]):
        # what a layer loses on the way down is what it says it absorbed
        np.testing.assert_allclose(above["relevance"] - below["relevance"], below["absorbed"],
                                   rtol=1e-8, atol=1e-10)


def test_deeplift_sums_to_delta_per_image_with_overlapping_pools(net, x, backend, rng):
    baseline = backend.asarray(rng.standard_normal((3, 1, 12, 12)) * 0.3)
    attr, delta = deeplift(net, x, [0, 3, 4], baseline=baseline, return_delta=True)
    assert attr.shape == x.shape
    np.testing.assert_allclose(as_numpy(delta), 0, atol=1e-10)
    # per image: the same image alone gives the same map (no batch mixing)
    alone = deeplift(net, x[1:2], 3, baseline=baseline[1:2])
    np.testing.assert_allclose(as_numpy(alone)[0], as_numpy(attr)[1], rtol=1e-12, atol=1e-15)


def test_every_rule_and_composite_runs_and_has_the_input_shape(net, x):
    for rule in LRP_RULES:
        assert lrp(net, x, None, rule=rule).shape == x.shape
    for composite in COMPOSITES:
        assert lrp(net, x, None, composite=composite).shape == x.shape
    assert lrp(net, x, None, maxpool="proportional").shape == x.shape
    with pytest.raises(ValueError, match="unknown LRP rule"):
        lrp(net, x, None, rule="nope")


def test_excitation_backprop_is_non_negative_on_non_negative_input(net, x, backend):
    e = excitation_backprop(net, backend.abs(x), 2)
    assert float(e.min()) >= 0 and float(e.max()) > 0


def test_a_rule_of_your_own_in_a_few_lines(net, x):
    """The docs' example: a rule is a class with one method."""
    class Half(Rule):
        def backward(self, layer, x, signal, ref=None):
            return 0.5 * layer.backward(signal)
    halved = lrp(net, x, 1, rule="0", rules={7: Half()})
    plain = lrp(net, x, 1, rule="0", rules={7: Epsilon(0.0)})
    assert not np.allclose(as_numpy(halved), as_numpy(plain))


@pytest.mark.parametrize("method", ["trapezoid", "gausslegendre"])
def test_integrated_gradients_completeness_improves_with_steps(net, x, method):
    deltas = [float(np.abs(as_numpy(checks.ig_completeness(net, x, 2, steps, method))).max())
              for steps in (4, 256)]
    change = np.abs(as_numpy(net.eval().forward(x) - net.forward(0 * x))[:, 2]).max()
    assert deltas[1] < deltas[0] and deltas[1] < 0.005 * change


def test_grad_cam_pp_formula(net, x, backend):
    """Grad-CAM++ written out here from its definition, at the second ReLU."""
    from minicnn.viz import backprop, grad_cam_pp, resolve_target
    target = resolve_target(net, x, None)
    g, _, a = (as_numpy(v) for v in backprop(net, x, target, to_layer=4))
    g2, g3 = g ** 2, g ** 3
    denom = 2 * g2 + a.sum(axis=(2, 3), keepdims=True) * g3
    alpha = np.where(g != 0, g2 / np.where(denom != 0, denom, 1), 0)
    w = (alpha * np.maximum(g, 0)).sum(axis=(2, 3), keepdims=True)
    cam = np.maximum((w * a).sum(axis=1, keepdims=True), 0)
    ours = as_numpy(grad_cam_pp(net, x, None, layer=4))
    assert ours.shape == (3, 1, 12, 12)
    from minicnn.viz import upsample_bilinear
    np.testing.assert_allclose(ours, as_numpy(upsample_bilinear(backend.asarray(cam), (12, 12))),
                               rtol=1e-12, atol=1e-15)
    assert float(np.abs(cam).max()) > 0
