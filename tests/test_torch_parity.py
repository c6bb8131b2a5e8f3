"""Parity with PyTorch (CPU, float64): weights exchange both ways, every layer's
forward and backward, the loss, and the optimizer steps."""
import numpy as np
import pytest

from minicnn import (SGD, Adam, AvgPool2D, Conv2D, Dense, MaxPool2D, Parameter,
                     SoftmaxCrossEntropy, models)
from minicnn.backend import as_numpy

torch = pytest.importorskip("torch")
nn = torch.nn
from torch_helpers import t, torch_copy, torch_twin  # noqa: E402  (needs torch)


@pytest.mark.parametrize("name", ["tiny_cnn", "lenet5"])
def test_torch_loads_our_weights_and_agrees(backend, device, rng, name):
    model = models.get_model(name, seed=3).astype("float64").eval()
    twin = torch_copy(model)
    x = rng.standard_normal((4, 1, 28, 28))
    ours = as_numpy(model.to(device).forward(backend.asarray(x)))
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["tiny_cnn", "lenet5"])
def test_we_load_torch_weights_directly(backend, device, rng, name):
    model = models.get_model(name, seed=3).astype("float64").eval()
    twin = torch_twin(model)                      # torch's own initialization
    model.to(device).load_state_dict(twin.state_dict())
    x = rng.standard_normal((2, 1, 28, 28))
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(as_numpy(model.forward(backend.asarray(x))), theirs,
                               rtol=1e-10, atol=1e-12)


def compare_layer(ours, theirs, x, backend, device):
    """Forward and backward (input and parameter gradients) of one layer vs torch."""
    ours.astype("float64").to(device)
    for name, p in ours.named_parameters():
        with torch.no_grad():
            getattr(theirs, name).copy_(t(p.value))
    theirs.double()
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    g = np.random.default_rng(0).standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(g))
    y = ours.forward(backend.asarray(x))
    np.testing.assert_allclose(as_numpy(y), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(as_numpy(ours.backward(backend.asarray(g))), xt.grad.numpy(),
                               rtol=1e-10, atol=1e-12)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(as_numpy(p.grad), getattr(theirs, name).grad.numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("k, s, p, bias", [(3, 1, 0, True), (3, 2, 1, True), ((3, 2), (2, 1),
                                           (1, 2), False), (1, 1, 0, True), (5, 1, 2, True)])
def test_conv2d_matches_torch(backend, device, rng, impl, k, s, p, bias):
    ours = Conv2D(3, 4, k, stride=s, padding=p, bias=bias, seed=0, impl=impl)
    theirs = nn.Conv2d(3, 4, k, s, p, bias=bias)
    compare_layer(ours, theirs, rng.standard_normal((2, 3, 7, 6)), backend, device)


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 2, 0), (3, 1, 1), ((3, 2), (2, 1), (1, 1))])
def test_maxpool_matches_torch_including_switches(backend, rng, impl, k, s, p):
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.1     # distinct: no ties
    ours = MaxPool2D(k, s, p, impl=impl)
    theirs = nn.MaxPool2d(k, s, p, return_indices=True)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt, indices = theirs(xt)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(g))
    y = ours.forward(backend.asarray(x))
    np.testing.assert_array_equal(as_numpy(y), yt.detach().numpy())
    np.testing.assert_array_equal(as_numpy(ours.switches), indices.numpy())
    np.testing.assert_allclose(as_numpy(ours.backward(backend.asarray(g))), xt.grad.numpy(),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_avgpool_matches_torch(backend, device, rng, impl, k, s, p):
    compare_layer(AvgPool2D(k, s, p, impl=impl), nn.AvgPool2d(k, s, p),
                  rng.standard_normal((2, 3, 7, 6)), backend, device)


def test_dense_matches_torch(backend, device, rng):
    compare_layer(Dense(5, 3, seed=0), nn.Linear(5, 3), rng.standard_normal((4, 5)),
                  backend, device)


def test_loss_matches_torch(backend, rng):
    z, labels = rng.standard_normal((6, 4)) * 3, np.array([0, 3, 1, 1, 2, 3])
    zt = torch.from_numpy(z).requires_grad_(True)
    expected = nn.functional.cross_entropy(zt, torch.from_numpy(labels))
    expected.backward()
    loss = SoftmaxCrossEntropy()
    value = loss.forward(backend.asarray(z), backend.asarray(labels))
    assert float(value) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(as_numpy(loss.backward()), zt.grad.numpy(), rtol=1e-10,
                               atol=1e-14)


@pytest.mark.parametrize("ours_cls, theirs_cls, kwargs", [
    (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
])
def test_optimizer_steps_match_torch(backend, rng, ours_cls, theirs_cls, kwargs):
    w0 = rng.standard_normal((3, 4))
    ours = Parameter(backend.asarray(w0.copy()))
    theirs = torch.from_numpy(w0.copy()).requires_grad_(True)
    opt, topt = ours_cls([ours], **kwargs), theirs_cls([theirs], **kwargs)
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        opt.zero_grad()
        ours.accumulate(backend.asarray(g))
        opt.step()
        theirs.grad = torch.from_numpy(g)
        topt.step()
    np.testing.assert_allclose(as_numpy(ours.value), theirs.detach().numpy(), rtol=1e-12,
                               atol=1e-14)
