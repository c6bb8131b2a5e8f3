"""Ready-made models: shapes, parameter counts, summary() tables, initializers, seeding."""
import subprocess
import sys

import numpy as np
import pytest

from minicnn import Conv2D, Dense, models
from minicnn.backend import as_numpy
from minicnn.init import glorot_uniform, he_normal, truncated_normal


def test_lenet_summary_matches_the_tutorial():
    s = models.lenet().summary()
    rows = {i: (w, b) for i, _, _, w, b, _ in s.rows if w or b}
    assert rows == {0: (800, 32), 3: (51_200, 64), 7: (3_211_264, 1_024), 10: (10_240, 10)}
    assert s.params == 3_274_634
    table = str(s)
    for number in ["800", "51,200", "3,211,264", "1,024", "10,240", "3,274,634"]:
        assert number in table
    assert "(64, 7, 7)" in table and "(10,)" in table


def test_summary_prints_from_the_command_line():
    code = "import minicnn; print(minicnn.models.lenet().summary())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "parameters: 3,274,634" in out and "3,211,264" in out


def test_tiny_cnn_counts_and_shapes():
    s = models.tiny_cnn().summary()
    assert s.params == 3_146
    assert [r[2] for r in s.rows if r[1] == "MaxPool2D"] == [(4, 12, 12), (8, 4, 4)]


def conv_macs(c_in, c_out, k, hw_out):
    return c_in * c_out * k * k * hw_out * hw_out


def test_vgg19_size_and_cost():
    """143.7 M parameters and 19.6 G MACs; the exact counts are written out here
    from the architecture (16 3x3 convs, padding 1, and 3 dense layers)."""
    convs = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56)] \
        + [(256, 256, 56)] * 3 + [(256, 512, 28)] + [(512, 512, 28)] * 3 + [(512, 512, 14)] * 4
    dense = [(512 * 7 * 7, 4096), (4096, 4096), (4096, 1000)]
    params = sum(ci * co * 9 + co for ci, co, _ in convs) + sum(i * o + o for i, o in dense)
    macs = sum(conv_macs(ci, co, 3, hw) for ci, co, hw in convs) + sum(i * o for i, o in dense)
    s = models.vgg19().summary()          # allocates ~1.2 GB for a few seconds
    assert (s.params, s.macs) == (params, macs) == (143_667_240, 19_632_062_464)
    assert round(s.params / 1e6, 1) == 143.7 and round(s.macs / 1e9, 1) == 19.6
    assert s.rows[-1][2] == (1000,)


@pytest.mark.parametrize("name", ["tiny_cnn", "lenet5", "lenet", "keras_cnn"])
def test_mnist_models_give_ten_logits(backend, device, name):
    model = models.get_model(name).to(device)
    y = model.forward(backend.zeros((2, 1, 28, 28), dtype=np.float32))
    assert y.shape == (2, 10) and y.dtype == np.float32
    assert model.output_shape((1, 28, 28)) == (10,)


def test_lenet5_layout():
    s = models.lenet5().summary()
    shapes = [r[2] for r in s.rows if r[1] in ("Conv2D", "Dense")]
    assert shapes == [(6, 28, 28), (16, 10, 10), (120,), (84,), (10,)]
    assert s.params == 156 + 2_416 + 48_120 + 10_164 + 850


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        models.get_model("resnet")


def test_seeded_models_are_identical_and_seeds_differ():
    a, b, c = models.tiny_cnn(seed=3), models.tiny_cnn(seed=3), models.tiny_cnn(seed=4)
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key])
    assert not np.array_equal(a.state_dict()["0.weight"], c.state_dict()["0.weight"])


def test_he_normal_std():
    rng = np.random.default_rng(0)
    w = he_normal((400, 1000), 1000, rng)                  # 400,000 draws
    assert w.dtype == np.float32
    assert w.std() == pytest.approx(np.sqrt(2 / 1000), rel=0.01)
    assert abs(w.mean()) < 1e-3
    conv = Conv2D(8, 16, 3, seed=0)                         # fan_in = 8 * 3 * 3 = 72
    assert as_numpy(conv.weight.value).std() == pytest.approx(np.sqrt(2 / 72), rel=0.05)
    assert not np.any(conv.bias.value)


def test_glorot_uniform_limits():
    limit = np.sqrt(6 / (300 + 200))
    w = glorot_uniform((200, 300), 300, 200, np.random.default_rng(0))
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.01)     # std of U(-a, a)
    dense = Dense(300, 200, init="glorot", seed=0)
    assert np.abs(dense.weight.value).max() <= limit


def test_truncated_normal_and_bias():
    w = truncated_normal((500, 400), np.random.default_rng(0))
    assert np.abs(w).max() <= 0.2 + 1e-7 and np.abs(w).max() > 0.19
    # std of N(0, 1) truncated at +-2 is 0.8796
    assert w.std() == pytest.approx(0.1 * 0.8796, rel=0.01)
    dense = Dense(20, 10, init="truncated_normal", seed=0)
    np.testing.assert_array_equal(dense.bias.value, np.full(10, 0.1, np.float32))
    with pytest.raises(ValueError, match="init must be one of"):
        Dense(2, 2, init="xavier")


def test_mobilenet_mnist_counts_match_pytorch():
    """Parameters and MACs of the depthwise-separable net against the same net in PyTorch
    (``torch.utils.flop_counter`` counts 2 FLOPs per MAC of the convs and the dense layer)."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    from torch_helpers import torch_copy
    model = models.mobilenet_mnist()
    s = model.summary()
    net = torch_copy(model)
    assert s.params == sum(p.numel() for p in net.parameters()) == 8_746
    counter = FlopCounterMode(display=False)
    with counter:
        net(torch.zeros(1, 1, 28, 28, dtype=torch.float64))
    assert 2 * s.macs == counter.get_total_flops()
    depthwise = [r for r, layer in zip(s.rows, model) if getattr(layer, "groups", 1) > 1]
    assert [r[2] for r in depthwise] == [(16, 14, 14), (32, 7, 7), (64, 7, 7)]
    assert [r[5] for r in depthwise] == [16 * 14 * 14 * 9, 32 * 7 * 7 * 9, 64 * 7 * 7 * 9]
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28))
    np.testing.assert_allclose(as_numpy(model.astype("float64").forward(x)),
                               net(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
