"""The zoo benchmark of issue 28. benchmarks/twin.py: each trainable zoo model's PyTorch
twin computes what the model computes (float64), in eval mode and in training mode
(BatchNorm on the batch's statistics, its running statistics moved alike; the weight
gradients equal too), so bench.py and epoch.py compare the same network; zoo.sh, the one
command that measures every target, is valid bash."""
import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from minicnn import models
from minicnn.training.config import MNIST_MODELS
from minicnn.layers import (AvgPool2D, BatchNorm1D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten,
                            GlobalAvgPool2D, LeakyReLU, MaxPool2D, ReLU, Sequential, Softmax)

torch = pytest.importorskip("torch")
_spec = importlib.util.spec_from_file_location(
    "twin", Path(__file__).resolve().parents[1] / "benchmarks" / "twin.py")
twin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(twin)


def without_dropout(model, net):
    """Training mode with the Dropout layers off on both sides (their masks differ)."""
    for layer, module in zip(model.layers, net):
        if isinstance(layer, Dropout):
            layer.training, module.training = False, False


def assert_same(model, net, x, train):
    model.train(train)
    net.train(train)
    if train:
        without_dropout(model, net)
    y = model.forward(x)
    xt = torch.from_numpy(x)
    yt = net(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    if not train:
        return
    g = np.random.default_rng(1).standard_normal(y.shape)
    model.backward(g)
    yt.backward(torch.from_numpy(g))
    theirs = dict(net.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, theirs[name].grad.numpy(), rtol=1e-9, atol=1e-10,
                                   err_msg=name)
    buffers = dict(net.named_buffers())
    for name, value in model.named_buffers():            # BatchNorm's running statistics
        np.testing.assert_allclose(value, buffers[name].numpy(), rtol=1e-10, err_msg=name)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", MNIST_MODELS)
def test_zoo_twin_computes_the_same(name, train):
    model = models.get_model(name, seed=3).astype("float64")
    for layer in model.modules():          # running statistics away from (0, 1)
        if isinstance(layer, (BatchNorm1D, BatchNorm2D)):
            rng = np.random.default_rng(layer.num_features)
            layer.running_mean = rng.standard_normal(layer.num_features)
            layer.running_var = rng.uniform(0.5, 2.0, layer.num_features)
            layer.weight.value = rng.uniform(0.5, 1.5, layer.num_features)
            layer.bias.value = rng.standard_normal(layer.num_features)
    net = twin.torch_model(model)
    assert next(net.parameters()).dtype == torch.float64
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28))
    assert_same(model, net, x, train)


def test_twin_copies_every_option():
    """The options the zoo does not use: grouped, dilated, reflect-padded and 'same'
    (odd split) convolutions, BatchNorm's momentum None and eps, ceil_mode pooling,
    AvgPool2D's divisor rules, LeakyReLU, GlobalAvgPool2D."""
    model = Sequential([
        Conv2D(2, 4, (3, 2), padding="same", dilation=(1, 2), padding_mode="reflect", seed=0),
        BatchNorm2D(4, eps=1e-3, momentum=None), LeakyReLU(0.2),
        Conv2D(4, 4, 3, stride=2, padding=1, groups=4, bias=False, padding_mode="circular",
               seed=1),
        MaxPool2D(2, stride=1, padding=1, dilation=2, ceil_mode=True),
        AvgPool2D(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        AvgPool2D(1, divisor_override=2), GlobalAvgPool2D(),
        BatchNorm1D(4, momentum=0.3), Dense(4, 3, bias=False, seed=2),
    ]).astype("float64")
    net = twin.torch_model(model)
    x = np.random.default_rng(0).standard_normal((2, 2, 9, 8))
    assert_same(model, net, x, train=True)
    assert_same(model, net, x, train=False)


def test_twin_refuses_a_layer_it_does_not_know():
    with pytest.raises(ValueError, match="no PyTorch twin for Softmax"):
        twin.torch_model(Sequential([Flatten(), Softmax()]))


def test_relu_and_flatten_twins_need_no_weights():
    model = Sequential([ReLU(), Flatten()]).astype("float64")
    net = twin.torch_model(model)
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 2))
    np.testing.assert_array_equal(model.forward(x), net(torch.from_numpy(x)).numpy())


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_zoo_script_is_valid_bash():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo.sh"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
