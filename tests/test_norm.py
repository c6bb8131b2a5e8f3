"""BatchNorm1D/2D, GlobalAvgPool2D and LeakyReLU: gradient checks in float64 (train and
eval), and parity with PyTorch (forward, every gradient, running statistics)."""
import numpy as np
import pytest

from minicnn import Sequential, load_model, save_model
from minicnn.backend import as_numpy
from minicnn.gradcheck import check_layer
from minicnn.layers.activations import LeakyReLU
from minicnn.layers.global_pool import GlobalAvgPool2D
from minicnn.layers.norm import BatchNorm1D, BatchNorm2D
from minicnn.viz.rules import RELU_RULES

SHAPES = {BatchNorm2D: (4, 3, 5, 5), BatchNorm1D: (6, 3)}


def _bn(cls, device, rng):
    bn = cls(3).astype("float64")
    bn.weight.value[...] = 1 + rng.standard_normal(3)         # not the trivial 1 and 0
    bn.bias.value[...] = rng.standard_normal(3)
    bn.running_mean[...] = rng.standard_normal(3)
    bn.running_var[...] = 0.5 + rng.random(3)
    return bn.to(device)


@pytest.mark.parametrize("cls", [BatchNorm2D, BatchNorm1D])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(backend, device, rng, cls, training):
    bn = _bn(cls, device, rng).train(training)
    x = backend.asarray(rng.standard_normal(SHAPES[cls]) * 2 + 1)
    errors = check_layer(bn, x)
    assert set(errors) == {"input", "weight", "bias"}


def test_batchnorm1d_on_sequences(backend, device, rng):
    check_layer(_bn(BatchNorm1D, device, rng), backend.asarray(rng.standard_normal((3, 3, 4))))


@pytest.mark.parametrize("cls", [BatchNorm2D, BatchNorm1D])
def test_batchnorm_bad_input(backend, device, cls):
    with pytest.raises(ValueError, match=f"{cls.__name__}.*expects input of shape"):
        cls(3).to(device).forward(backend.zeros((2, 4, 5, 5) if cls is BatchNorm2D else (2, 4),
                                                dtype=backend.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        cls(3).to(device).forward(backend.zeros((1, 3) + ((1, 1) if cls is BatchNorm2D else ()),
                                                dtype=backend.float32))


def test_running_stats_in_state_dict_with_torch_names(rng):
    model = Sequential([BatchNorm2D(3)])
    assert list(model.state_dict()) == ["0.weight", "0.bias", "0.running_mean",
                                        "0.running_var", "0.num_batches_tracked"]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]   # no optimizer sees them


def test_save_load_keeps_running_stats(tmp_path, rng):
    model = Sequential([BatchNorm2D(3)])
    model.forward(rng.standard_normal((4, 3, 2, 2)).astype(np.float32))
    save_model(model, tmp_path / "bn.npz")
    loaded = load_model(tmp_path / "bn.npz")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)
    assert int(loaded[0].num_batches_tracked) == 1


def test_global_avg_pool_and_leaky_relu_gradients(backend, rng):
    x = backend.asarray(rng.standard_normal((2, 3, 4, 5)))
    assert GlobalAvgPool2D().forward(x).shape == (2, 3)
    check_layer(GlobalAvgPool2D(), x)
    x = x + 0.1 * backend.sign(x)            # away from the kink at 0
    check_layer(LeakyReLU(0.1), x)


def test_leaky_relu_backward_rules(backend):
    relu = LeakyReLU(0.5)
    x = backend.asarray(np.array([[-1.0, 2.0, -3.0, 4.0]]))
    g = backend.asarray(np.array([[5.0, -6.0, -7.0, 8.0]]))
    np.testing.assert_array_equal(as_numpy(relu.forward(x)), [[-0.5, 2, -1.5, 4]])
    expected = {"gradient": [[2.5, -6, -3.5, 8]], "deconvnet": [[5, 0, 0, 8]],
                "guided": [[2.5, 0, 0, 8]]}
    for rule, want in expected.items():
        np.testing.assert_array_equal(as_numpy(RELU_RULES[rule]().backward(relu, x, g)), want)


# -- PyTorch ----------------------------------------------------------------------------
@pytest.mark.parametrize("cls, momentum", [(BatchNorm2D, 0.1), (BatchNorm2D, None),
                                           (BatchNorm1D, 0.3)])
def test_batchnorm_matches_torch_over_several_steps(backend, device, rng, cls, momentum):
    torch = pytest.importorskip("torch")
    ours = cls(3, momentum=momentum).astype("float64").to(device)
    theirs = {BatchNorm2D: torch.nn.BatchNorm2d, BatchNorm1D: torch.nn.BatchNorm1d}[cls](
        3, momentum=momentum).double()
    for step in range(3):
        x = rng.standard_normal(SHAPES[cls]) * (step + 1) + step
        g = rng.standard_normal(SHAPES[cls])
        for p in ours.parameters():
            p.zero_grad()
        y = ours.forward(backend.asarray(x))
        gx = ours.backward(backend.asarray(g))
        xt = torch.tensor(x, requires_grad=True)
        theirs.zero_grad()
        yt = theirs(xt)
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(as_numpy(y), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(as_numpy(gx), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(as_numpy(ours.weight.grad), theirs.weight.grad.numpy(),
                                   rtol=1e-9)
        np.testing.assert_allclose(as_numpy(ours.bias.grad), theirs.bias.grad.numpy(), rtol=1e-9)
        np.testing.assert_allclose(as_numpy(ours.running_mean), theirs.running_mean.numpy(),
                                   rtol=1e-12)
        np.testing.assert_allclose(as_numpy(ours.running_var), theirs.running_var.numpy(),
                                   rtol=1e-12)
        assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked)
    ours.eval(), theirs.eval()
    x = rng.standard_normal(SHAPES[cls])
    np.testing.assert_allclose(as_numpy(ours.forward(backend.asarray(x))),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    # our state_dict loads into torch's module and back
    state = Sequential([ours]).state_dict()
    theirs.load_state_dict({k[2:]: torch.tensor(v) for k, v in state.items()})
    back = Sequential([cls(3).astype("float64")]).load_state_dict(
        {"0." + k: v for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(back[0].running_var, as_numpy(ours.running_var))


def test_leaky_relu_and_global_pool_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(LeakyReLU(0.2).forward(x),
                               torch.nn.functional.leaky_relu(torch.tensor(x), 0.2).numpy())
    np.testing.assert_allclose(GlobalAvgPool2D().forward(x),
                               torch.nn.AdaptiveAvgPool2d(1)(torch.tensor(x)).flatten(1).numpy())
