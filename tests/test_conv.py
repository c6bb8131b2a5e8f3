"""Conv2D: the im2col path equals the plain-loop reference; settings and bad input."""
import numpy as np
import pytest

from minicnn import Conv2D
from minicnn.backend import as_numpy


def both_impls(c_in, c_out, k, s, p, bias):
    """A fast and a reference Conv2D with identical float64 weights."""
    fast = Conv2D(c_in, c_out, k, stride=s, padding=p, bias=bias, seed=5).astype("float64")
    ref = Conv2D(c_in, c_out, k, stride=s, padding=p, bias=bias, seed=5,
                 impl="reference").astype("float64")
    return fast, ref


def random_case(rng):
    kh, kw = rng.integers(1, 4, size=2)
    sh, sw = rng.integers(1, 3, size=2)
    ph, pw = rng.integers(0, 3, size=2)
    h, w = kh + rng.integers(0, 4), kw + rng.integers(0, 4)
    return (int(rng.integers(1, 4)), int(rng.integers(1, 4)), (int(kh), int(kw)),
            (int(sh), int(sw)), (int(ph), int(pw)), bool(rng.integers(2)), (int(h), int(w)))


@pytest.mark.parametrize("seed", range(8))
def test_fast_equals_reference(backend, device, seed):
    rng = np.random.default_rng(seed)
    c_in, c_out, k, s, p, bias, (h, w) = random_case(rng)
    fast, ref = both_impls(c_in, c_out, k, s, p, bias)
    fast.to(device), ref.to(device)
    x = backend.asarray(rng.standard_normal((2, c_in, h, w)))
    y_fast, y_ref = fast.forward(x), ref.forward(x)
    np.testing.assert_allclose(as_numpy(y_fast), as_numpy(y_ref), rtol=1e-10, atol=1e-12)
    g = backend.asarray(rng.standard_normal(y_fast.shape))
    gx_fast, gx_ref = fast.backward(g), ref.backward(g)
    np.testing.assert_allclose(as_numpy(gx_fast), as_numpy(gx_ref), rtol=1e-10, atol=1e-12)
    for (name, a), (_, b) in zip(fast.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(as_numpy(a.grad), as_numpy(b.grad), rtol=1e-10,
                                   atol=1e-12, err_msg=name)


def test_output_shapes_and_same_padding(backend, device):
    x = backend.zeros((2, 3, 7, 6), dtype=np.float32)

    def conv(*args, **kwargs):
        return Conv2D(3, 4, *args, **kwargs).to(device)
    assert conv(5, padding="same").forward(x).shape == (2, 4, 7, 6)
    assert conv((3, 1), padding="same").forward(x).shape == (2, 4, 7, 6)
    assert conv(3, stride=2).forward(x).shape == (2, 4, 3, 2)
    assert conv(3, stride=(2, 1), padding=(1, 0)).forward(x).shape == (2, 4, 4, 4)
    assert conv(1).forward(x).shape == (2, 4, 7, 6)
    assert Conv2D(3, 4, 3).output_shape((3, 7, 6)) == (4, 5, 4)


def test_weight_layout_and_no_bias():
    conv = Conv2D(3, 8, (5, 3), bias=False)
    assert conv.weight.shape == (8, 3, 5, 3)
    assert conv.bias is None and [n for n, _ in conv.named_parameters()] == ["weight"]


def test_backward_accumulates_into_grad(backend, device, rng):
    conv = Conv2D(2, 3, 3, seed=0).astype("float64").to(device)
    x = backend.asarray(rng.standard_normal((1, 2, 4, 4)))
    g = backend.ones((1, 3, 2, 2))
    conv.forward(x), conv.backward(g)
    once = as_numpy(conv.weight.grad).copy()
    conv.forward(x), conv.backward(g)
    np.testing.assert_allclose(as_numpy(conv.weight.grad), 2 * once)


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("shape, what", [
    ((3, 8, 8), "wrong ndim"),
    ((2, 2, 8, 8), "wrong channel count"),
    ((2, 3, 4, 8), "too small for the kernel"),
])
def test_bad_input_names_layer_and_expected_shape(backend, device, shape, what, impl):
    conv = Conv2D(3, 4, 5, impl=impl).to(device)
    with pytest.raises(ValueError, match=r"Conv2D\(.*expects input of shape \(N, 3, H, W\)"):
        conv.forward(backend.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding="same"),
                                    dict(kernel_size=4, stride=(1, 2), padding="same")])
def test_same_padding_needs_stride_1(kwargs):
    with pytest.raises(ValueError, match="Conv2D padding='same' needs stride 1"):
        Conv2D(1, 1, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(impl="cuda"), "Conv2D impl must be one of"),
    (dict(padding=-1), "Conv2D padding must be >= 0"),
    (dict(padding="full"), "padding \\(or 'same', 'valid'\\) must be an int or a pair"),
    (dict(groups=2), "groups=2 must divide in_channels=1"),
    (dict(dilation=0), "dilation must be >= 1"),
    (dict(padding_mode="mirror"), "padding_mode must be one of"),
    (dict(stride=(1, 2, 3)), "stride must be an int or a pair"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv2D(1, 1, 3, **kwargs)
