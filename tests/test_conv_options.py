"""Conv2D and pooling options against PyTorch, in float64, forward and every gradient:
dilation, groups (depthwise), "same"/"valid" padding, padding modes, ceil_mode,
count_include_pad, divisor_override, return_indices, MaxUnpool2D; both impls, every backend."""
import numpy as np
import pytest

from minicnn import AvgPool2D, Conv2D, Dense, MaxPool2D, gradcheck
from minicnn.backend import as_numpy
from minicnn.layers import MaxUnpool2D

torch = pytest.importorskip("torch")
from torch_helpers import t, torch_layer  # noqa: E402

TOL = dict(rtol=1e-10, atol=1e-12)


def close(a, b):
    np.testing.assert_allclose(as_numpy(a), b.detach().numpy(), **TOL)


def random_conv(rng):
    """Random Conv2D settings and an input (H, W) big enough for them."""
    groups = int(rng.choice([1, 2, 3]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
    dilation = tuple(int(d) for d in rng.integers(1, 4, size=2))
    mode = str(rng.choice(["zeros", "reflect", "replicate", "circular"]))
    kind = rng.integers(4)
    stride = (1, 1) if kind == 0 else tuple(int(s) for s in rng.integers(1, 3, size=2))
    padding = ["same", "valid", int(rng.integers(0, 3)),
               tuple(int(p) for p in rng.integers(0, 3, size=2))][kind]
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    hw = tuple(span + int(rng.integers(1, 4)) for span in spans)     # > every padding
    return dict(in_channels=c_in, out_channels=c_out, kernel_size=kernel, stride=stride,
                padding=padding, dilation=dilation, groups=groups, padding_mode=mode,
                bias=bool(rng.integers(2))), hw


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("seed", range(12))
def test_conv_options_match_torch(backend, device, impl, seed):
    rng = np.random.default_rng(seed)
    settings, hw = random_conv(rng)
    conv = Conv2D(**settings, seed=seed, impl=impl).astype("float64").to(device)
    twin = torch_layer(conv)
    twin.load_state_dict({name: t(p.value) for name, p in conv.named_parameters()})
    x = rng.standard_normal((2, settings["in_channels"]) + hw)
    xt = t(x).requires_grad_()
    yt = twin(xt)
    y = conv.forward(backend.asarray(x))
    assert y.shape == tuple(yt.shape), settings
    close(y, yt)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(t(g))
    close(conv.backward(backend.asarray(g)), xt.grad)
    close(conv.weight.grad, twin.weight.grad)
    if conv.bias is not None:
        close(conv.bias.grad, twin.bias.grad)


def random_pool(rng, kind):
    kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=2)) if kind == "max" else (1, 1)
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)    # torch: at most k/2
    stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
    hw = tuple(s + int(rng.integers(0, 5)) for s in spans)
    common = dict(kernel_size=kernel, stride=stride, padding=padding,
                  ceil_mode=bool(rng.integers(2)))
    if kind == "max":
        return dict(common, dilation=dilation), hw
    override = [None, None, int(rng.integers(1, 7))][rng.integers(3)]
    return dict(common, count_include_pad=bool(rng.integers(2)),
                divisor_override=override), hw


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("seed", range(12))
def test_pool_options_match_torch(backend, impl, kind, seed):
    rng = np.random.default_rng(1000 + seed)
    settings, hw = random_pool(rng, kind)
    layer = (MaxPool2D if kind == "max" else AvgPool2D)(**settings, impl=impl)
    x = rng.standard_normal((2, 3) + hw)
    if seed % 3 == 0:
        x = np.round(x)                            # ties: first tap in both
    xt = t(x).requires_grad_()
    yt = torch_layer(layer)(xt)
    y = layer.forward(backend.asarray(x))
    assert y.shape == tuple(yt.shape), settings
    close(y, yt)
    if kind == "max":
        _, indices = torch.nn.functional.max_pool2d(xt, return_indices=True, **settings)
        np.testing.assert_array_equal(as_numpy(layer.switches), indices.numpy())
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(t(g))
    close(layer.backward(backend.asarray(g)), xt.grad)


@pytest.mark.parametrize("settings", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                      dict(kernel_size=(2, 3), stride=(2, 1))])
def test_max_unpool_matches_torch(backend, settings):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 8))
    pool = MaxPool2D(**settings, return_indices=True)
    y, switches = pool.forward(backend.asarray(x))
    unpool = MaxUnpool2D(**settings)
    out = unpool.forward(y, switches, output_size=x.shape)
    y_t, idx_t = torch.nn.functional.max_pool2d(t(x), return_indices=True, **settings)
    y_t.requires_grad_()
    out_t = torch.nn.MaxUnpool2d(**settings)(y_t, idx_t, output_size=x.shape[2:])
    close(out, out_t)
    g = rng.standard_normal(x.shape)
    out_t.backward(t(g))
    close(unpool.backward(backend.asarray(g)), y_t.grad)
    assert unpool.output_shape((3, 3, 4)) == tuple(torch.nn.MaxUnpool2d(**settings)(
        torch.zeros(1, 3, 3, 4), torch.zeros(1, 3, 3, 4, dtype=torch.long)).shape[1:])


def test_max_unpool_refuses_switches_outside_its_output(backend):
    pool, unpool = MaxPool2D(2, return_indices=True), MaxUnpool2D(2)
    y, switches = pool.forward(backend.asarray(np.arange(2 * 36.0).reshape(1, 2, 6, 6)))
    with pytest.raises(ValueError, match="MaxUnpool2D.*needs the switches"):
        unpool.forward(y)
    with pytest.raises(ValueError, match="switch points outside"):
        unpool.forward(y, switches, output_size=(4, 4))
    out = unpool.forward(y, switches, output_size=(7, 7))     # the output's own shape checks
    assert out.shape == (1, 2, 7, 7) and unpool.backward(backend.ones(out.shape)).shape == y.shape
    with pytest.raises(ValueError, match=r"MaxUnpool2D.*gradient of the output's shape"):
        unpool.backward(backend.ones((1, 2, 6, 6)))


@pytest.mark.parametrize("layer, shape", [
    (Conv2D(4, 4, 3, dilation=2, groups=4, padding="same", seed=1), (2, 4, 6, 7)),
    (Conv2D(4, 6, (2, 3), groups=2, padding="same", padding_mode="reflect", seed=2),
     (2, 4, 5, 5)),
    (Conv2D(2, 3, 3, stride=2, padding=2, padding_mode="circular", seed=3), (1, 2, 5, 6)),
    (Conv2D(2, 2, 2, dilation=(1, 3), padding=1, padding_mode="replicate", seed=4),
     (1, 2, 5, 7)),
    (MaxPool2D(2, stride=1, dilation=2, ceil_mode=True), (2, 2, 6, 5)),
    (AvgPool2D(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 2, 6, 6)),
    (AvgPool2D(2, stride=3, ceil_mode=True, divisor_override=3), (1, 2, 5, 7)),
], ids=["depthwise-dilated", "grouped-reflect-even", "circular-strided", "replicate-dilated",
        "maxpool-dilated-ceil", "avgpool-exclude-pad", "avgpool-divisor"])
def test_gradient_check_of_each_option(backend, device, layer, shape):
    layer.astype("float64").to(device)
    x = np.random.default_rng(5).permutation(np.prod(shape)).reshape(shape) / 7.0  # no ties
    gradcheck.check_layer(layer, backend.asarray(x))


def test_numpy_integer_sizes_are_accepted(backend, device):
    i = np.int64
    conv = Conv2D(i(2), i(4), i(3), stride=i(1), padding=(i(1), i(1)), dilation=i(2),
                  groups=i(2)).to(device)
    pool = MaxPool2D(np.int32(2), stride=(i(2), i(2)))
    avg = AvgPool2D(i(2), divisor_override=i(3))
    x = backend.zeros((1, 2, 8, 8))
    assert pool.forward(conv.forward(x)).shape == (1, 4, 3, 3)
    assert avg.forward(x).shape == (1, 2, 4, 4)
    assert all(type(v) in (int, bool, list) for v in conv.config().values())
    assert Dense(i(4), i(2)).to(device).forward(backend.zeros((3, 4))).shape == (3, 2)
    assert MaxUnpool2D(i(2)).output_shape((1, 3, 3)) == (1, 6, 6)
    assert conv.config()["groups"] == 2 and type(conv.config()["kernel_size"][0]) is int


@pytest.mark.parametrize("kwargs, shape, match", [
    (dict(padding=3, padding_mode="reflect"), (1, 1, 3, 8), "needs padding less than"),
    (dict(padding=4, padding_mode="circular"), (1, 1, 3, 8), "needs padding at most"),
])
def test_padding_modes_refuse_padding_beyond_the_input(kwargs, shape, match):
    with pytest.raises(ValueError, match=r"Conv2D\(.*" + match):
        Conv2D(1, 1, 3, **kwargs).forward(np.zeros(shape))


def test_same_padding_of_an_even_kernel_pads_bottom_right_as_torch():
    conv = Conv2D(1, 1, 4, padding="same", bias=False)
    assert conv.pads == ((1, 2), (1, 2)) and conv.config()["padding"] == "same"
    assert Conv2D(1, 1, 3, padding="same", dilation=2).config()["padding"] == [2, 2]


def test_options_round_trip_through_a_model_file(tmp_path):
    from minicnn import Sequential, load_model, save_model
    model = Sequential([Conv2D(2, 4, 4, padding="same", dilation=2, groups=2,
                               padding_mode="circular", seed=1),
                        MaxPool2D(3, stride=2, padding=1, dilation=2, ceil_mode=True),
                        AvgPool2D(2, ceil_mode=True, count_include_pad=False,
                                  divisor_override=3)], input_shape=(2, 9, 9))
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert [layer.config() for layer in loaded] == [layer.config() for layer in model]
    x = np.random.default_rng(0).standard_normal((1, 2, 9, 9)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
