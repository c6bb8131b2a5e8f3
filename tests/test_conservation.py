"""Per-layer conservation (minicnn.viz.relevance_by_layer), float64, on random nets."""
import numpy as np
import pytest
from test_propagation import random_net

from minicnn.backend import as_numpy
from minicnn.viz import (draw_relevance_by_layer, identity_residuals, integrated_gradients,
                         relevance_by_layer)
from minicnn.viz.checks import lrp_conservation
from minicnn.viz.conservation import CONSERVATION_METHODS

torch = pytest.importorskip("torch")
from torch_helpers import t, torch_copy  # noqa: E402  (needs torch)

LAYERS = 10                    # random_net's layers: the table has LAYERS + 1 rows


@pytest.fixture
def x(rng, backend):
    return backend.asarray(rng.standard_normal((3, 1, 12, 12)))


def logits(net, x):
    return as_numpy(net.eval().forward(x))


def test_lrp0_on_a_bias_free_net_keeps_the_logit_at_every_layer(rng, device, x):
    net = random_net(rng, bias=False).to(device)
    table = relevance_by_layer(net, x, 2, "lrp-0")
    assert table.shape == (LAYERS + 1, 3)
    np.testing.assert_allclose(table, np.broadcast_to(logits(net, x)[:, 2], table.shape),
                               rtol=1e-10)


@pytest.mark.parametrize("method", ["lrp-0", "lrp-epsilon", "lrp-epsilon-gamma-box"])
def test_with_biases_the_rows_differ_by_what_lrp_conservation_says_is_absorbed(rng, device, x,
                                                                                method):
    net = random_net(rng).to(device)
    table = relevance_by_layer(net, x, None, method)
    kind = method[4:].replace("-", "_")
    rows = lrp_conservation(net, x, None, **({"composite": kind} if "_" in kind else
                                             {"rule": kind}))
    np.testing.assert_allclose(table, np.stack([r["relevance"] for r in rows]), rtol=1e-12)
    np.testing.assert_allclose(table[-1], logits(net, x).max(axis=1), rtol=1e-10)
    absorbed = np.stack([r["absorbed"] for r in rows[:-1]])
    np.testing.assert_allclose(table[1:] - table[:-1], absorbed, rtol=1e-8, atol=1e-10)
    assert np.abs(table[0] - table[-1]).max() > 1e-3          # the biases did absorb some


def test_deeplift_sums_to_delta_at_every_layer(rng, device, x, backend):
    net = random_net(rng).to(device)
    base = backend.asarray(rng.standard_normal(x.shape) * 0.3)
    table = relevance_by_layer(net, x, [0, 3, 4], "deeplift", baseline=base)
    delta = logits(net, x)[np.arange(3), [0, 3, 4]] - logits(net, base)[np.arange(3), [0, 3, 4]]
    np.testing.assert_allclose(table, np.broadcast_to(delta, table.shape), rtol=1e-9, atol=1e-11)
    residual = identity_residuals(net, x, [0, 3, 4], "deeplift", baseline=base)["sum-to-delta"]
    np.testing.assert_allclose(residual, 0, atol=1e-10)


def torch_layer_ig(net, x, base, classes, i, alphas, weights):
    """IG at layer i's input by PyTorch autograd: the straight path between the layer's
    two activations, run through the layers above it."""
    twin = torch_copy(net)
    below, above = twin[:i], twin[i:]
    with torch.no_grad():
        a, a0 = below(t(x)), below(t(base))
    total = torch.zeros_like(a)
    for alpha, w in zip(alphas, weights):
        point = (a0 + alpha * (a - a0)).requires_grad_(True)
        above(point)[np.arange(len(classes)), classes].sum().backward()
        total += w * point.grad
    return ((a - a0) * total).reshape(len(classes), -1).sum(1).numpy()


def test_layer_integrated_gradients_match_pytorch_autograd_at_every_layer(rng, device, x,
                                                                          backend):
    from minicnn.viz.attribution import _quadrature
    net = random_net(rng).to(device)
    base = backend.asarray(rng.standard_normal(x.shape) * 0.3)
    classes = [4, 0, 2]
    table = relevance_by_layer(net, x, classes, "integrated-gradients", baseline=base, steps=8)
    alphas, weights = _quadrature("gausslegendre", 8)
    for i in (0, 3, 7, 9):
        np.testing.assert_allclose(table[i], torch_layer_ig(net, as_numpy(x), as_numpy(base),
                                                            classes, i, alphas, weights),
                                   rtol=1e-10, atol=1e-12, err_msg=f"layer {i}")
    ig = integrated_gradients(net, x, classes, baseline=base, steps=8, method="gausslegendre")
    np.testing.assert_allclose(table[0], as_numpy(ig).reshape(3, -1).sum(1), rtol=1e-10)
    completeness = identity_residuals(net, x, classes, "integrated-gradients", baseline=base,
                                      steps=8)["completeness"]
    np.testing.assert_allclose(completeness, table[0] - table[-1], rtol=1e-9, atol=1e-12)


def test_integrated_gradients_are_complete_at_every_layer_of_a_bias_free_net(rng, device, x):
    """From a zero baseline a bias-free ReLU net is positively homogeneous, so the
    gradient is constant along each layer's path and any quadrature is exact."""
    net = random_net(rng, bias=False).to(device)
    table = relevance_by_layer(net, x, 1, "integrated-gradients", steps=2)
    np.testing.assert_allclose(table, np.broadcast_to(table[-1], table.shape), rtol=1e-10)


def test_every_method_runs_and_the_figure_prints_the_residuals(rng, device, x, tmp_path):
    net = random_net(rng).to(device)
    for method in CONSERVATION_METHODS:
        assert relevance_by_layer(net, x, None, method).shape == (LAYERS + 1, 3), method
    with pytest.raises(ValueError, match="unknown method"):
        relevance_by_layer(net, x, None, "lrp-0.5")
    residuals = identity_residuals(net, x, None, "lrp-0")
    fig = draw_relevance_by_layer(relevance_by_layer(net, x, None, "lrp-0"),
                                  [type(layer).__name__ for layer in net.layers], residuals,
                                  path=tmp_path / "conservation.png")
    assert (tmp_path / "conservation.png").stat().st_size > 0
    text = fig.axes[1].texts[0].get_text()
    assert "LRP-0 - gradient x input (max)" in text and "absorbed" in text
    assert fig.axes[0].get_legend() is None                  # lines of images: no legend


def test_named_lines_get_a_legend(rng, device, x):
    """The explorer stacks one digit's tables of several methods and names the lines."""
    net = random_net(rng).to(device)
    x = x[:1]
    table = np.hstack([relevance_by_layer(net, x, 0, m) for m in ("lrp-0", "deeplift")])
    fig = draw_relevance_by_layer(table, names=["LRP-0", "DeepLIFT"])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["LRP-0", "DeepLIFT"]
    assert [len(line.get_ydata()) for line in fig.axes[0].lines] == [LAYERS + 1] * 2
