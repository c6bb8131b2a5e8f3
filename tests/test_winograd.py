"""Winograd convolutions (minicnn.kernels.winograd): the transforms' identity, equality with
the plain-loop reference in float64 and float32, every chunking and thread count, and
which convolutions take this path."""
import numpy as np
import pytest
from minicnn.kernels import reference, threads, winograd

from minicnn import Conv2D, kernels
from minicnn.gradcheck import check_layer

pytestmark = pytest.mark.skipif(not kernels.fast.WINOGRAD, reason="needs the Numba kernels")


@pytest.mark.parametrize("m, r", [(4, 3), (2, 5), (4, 5)])
def test_transforms_compute_a_one_dimensional_correlation(m, r, rng):
    at, g, bt = winograd.transforms(m, r)
    assert np.array_equal(bt, np.round(bt * 4) / 4)          # quarters: exact in float32
    d, w = rng.standard_normal(m + r - 1), rng.standard_normal(r)
    direct = [d[i:i + r] @ w for i in range(m)]
    np.testing.assert_allclose(at @ ((g @ w) * (bt @ d)), direct, rtol=1e-13, atol=1e-13)


CASES = [  # (N, C, C_out, H, W, r, pads): odd sizes leave part tiles at the edges
    (3, 16, 20, 9, 11, 5, ((2, 2), (2, 2))),
    (2, 17, 16, 8, 8, 3, ((1, 1), (1, 1))),
    (2, 16, 16, 7, 10, 3, ((0, 1), (2, 0))),               # unequal sides, as "same" gives
    (2, 16, 18, 6, 6, 5, ((0, 0), (0, 0))),                # valid: 2 x 2 outputs, one tile
]


def _reference(x, w, b, g, pads):
    out = reference.conv2d_forward(x, w, b, stride=(1, 1), padding=pads)
    gx, gw, _ = reference.conv2d_backward(x, w, g, stride=(1, 1), padding=pads)
    return out, gx, gw


def _winograd(x, w, b, g, pads, max_bytes=None):
    plan = winograd.Winograd(x, w.shape[2:], pads, w.shape[0], max_bytes)
    w2 = w.reshape(1, w.shape[0], -1)
    out = plan.product(w2, b).reshape(g.shape)
    gw, gx = plan.backward(w2, g.reshape(g.shape[0], g.shape[1], -1))
    return plan, out, gx, gw.reshape(w.shape)


def _case(rng, n, c, c_out, h, w, r, pads, dtype):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((c_out, c, r, r)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    ho, wo = h + sum(pads[0]) - r + 1, w + sum(pads[1]) - r + 1
    return x, weight, bias, rng.standard_normal((n, c_out, ho, wo)).astype(dtype)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("max_bytes", [None, 1])          # 1: one image per chunk
# the transforms' runs: one tile, runs across rows and images with a part run at the end,
# every tile of a chunk in one run
@pytest.mark.parametrize("run_numbers", [1, 50, 10 ** 6])
def test_equals_the_reference_in_float64(case, max_bytes, run_numbers, rng, monkeypatch):
    monkeypatch.setattr(winograd, "RUN_NUMBERS", run_numbers)
    *shape, pads = case
    x, w, b, g = _case(rng, *shape, pads, np.float64)
    plan, *got = _winograd(x, w, b, g, pads, max_bytes)
    assert len(plan.chunks) == (x.shape[0] if max_bytes else min(x.shape[0], plan.workers))
    for mine, ref in zip(got, _reference(x, w, b, g, pads)):
        np.testing.assert_allclose(mine, ref, rtol=1e-11, atol=1e-11 * np.abs(ref).max())


@pytest.mark.parametrize("case", CASES[:2])
def test_float32_stays_within_its_rounding(case, rng):
    *shape, pads = case
    x, w, b, g = _case(rng, *shape, pads, np.float32)
    _, *got = _winograd(x, w, b, g, pads)
    refs = _reference(x.astype(float), w.astype(float), b.astype(float), g.astype(float), pads)
    for mine, ref in zip(got, refs):
        assert mine.dtype == np.float32
        assert np.abs(mine - ref).max() <= 2e-5 * np.abs(ref).max()


def test_backward_gives_only_what_is_asked(rng):
    *shape, pads = CASES[0]
    x, w, b, g = _case(rng, *shape, pads, np.float64)
    _, _, gx, gw = _winograd(x, w, b, g, pads)
    w2, g3 = w.reshape(1, w.shape[0], -1), g.reshape(g.shape[0], g.shape[1], -1)
    plan = winograd.Winograd(x, w.shape[2:], pads, w.shape[0])
    none_w, only_x = plan.backward(w2, g3, weights=False)
    only_w, none_x = plan.backward(w2, g3, inputs=False)
    assert none_w is None and none_x is None
    np.testing.assert_array_equal(only_x, gx)
    np.testing.assert_array_equal(only_w.reshape(w.shape), gw)


def test_kept_tiles_and_rebuilt_tiles_agree(rng, monkeypatch):
    *shape, pads = CASES[1]
    x, w, b, g = _case(rng, *shape, pads, np.float64)
    kept_plan, *kept = _winograd(x, w, b, g, pads)
    monkeypatch.setitem(kernels.chunks.MAX_KEPT_BYTES, "cpu", 0)
    rebuilt_plan, *rebuilt = _winograd(x, w, b, g, pads)
    assert kept_plan.kept is not None and rebuilt_plan.kept is None
    for a, b_ in zip(kept, rebuilt):
        np.testing.assert_array_equal(a, b_)


def test_thread_counts_agree_and_repeat_bit_for_bit(rng):
    x, w, b, g = _case(rng, 8, 16, 16, 12, 12, 3, ((1, 1), (1, 1)), np.float32)
    results = {}
    for count in (1, 2, 3, 2):
        threads.set_num_threads(count)
        plan, *got = _winograd(x, w, b, g, ((1, 1), (1, 1)), max_bytes=1)
        if count in results:
            for a, b_ in zip(results[count], got):
                np.testing.assert_array_equal(a, b_)
        results[count] = got
    for a, b_ in zip(results[1], results[3]):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5 * np.abs(a).max())


def test_conv2d_layer_passes_the_gradient_check_on_the_winograd_path(rng):
    layer = Conv2D(16, 16, 3, padding="same", seed=0).astype("float64")   # value and grad
    layer.bias.value[...] = rng.standard_normal(16)
    x = rng.standard_normal((2, 16, 5, 6))
    layer.forward(x)
    assert isinstance(layer.saved, winograd.Winograd)
    check_layer(layer, x)           # raises GradientCheckError if any gradient is off


@pytest.mark.parametrize("kwargs, expected", [
    (dict(in_channels=32, out_channels=64, kernel_size=5, padding="same"), True),
    (dict(in_channels=16, out_channels=16, kernel_size=3, padding=1), True),
    (dict(in_channels=1, out_channels=32, kernel_size=5, padding="same"), False),  # few channels
    (dict(in_channels=32, out_channels=3, kernel_size=3), False),  # under MIN_CHANNELS
    (dict(in_channels=32, out_channels=32, kernel_size=3, stride=2), False),
    (dict(in_channels=32, out_channels=32, kernel_size=3, dilation=2), False),
    (dict(in_channels=32, out_channels=32, kernel_size=3, groups=2), False),
    (dict(in_channels=32, out_channels=32, kernel_size=3, padding=1,
          padding_mode="reflect"), False),
    (dict(in_channels=32, out_channels=32, kernel_size=7, padding=3), False),
    (dict(in_channels=32, out_channels=32, kernel_size=(3, 5)), False),
])
def test_which_convolutions_take_the_winograd_path(kwargs, expected, rng):
    layer = Conv2D(**kwargs, seed=0)
    layer.forward(rng.standard_normal((1, kwargs["in_channels"], 12, 12)).astype(np.float32))
    assert isinstance(layer.saved, winograd.Winograd) is expected


def test_winograd_off_runs_im2col_with_the_same_result(rng, monkeypatch):
    layer = Conv2D(16, 16, 5, padding="same", seed=0)
    x = rng.standard_normal((2, 16, 9, 9)).astype(np.float32)
    fast = layer.forward(x)
    with kernels.use_impl(winograd=False):
        plain = layer.forward(x)
    assert isinstance(layer.saved, kernels.columns.Columns)
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5 * np.abs(plain).max())


def test_gpu_arrays_keep_im2col():
    cupy = pytest.importorskip("cupy")
    try:
        x = cupy.zeros((1, 16, 8, 8), dtype=cupy.float32)
    except Exception as err:            # CuPy installed, no usable GPU
        pytest.skip(f"no GPU: {err}")
    assert not winograd.suits(x, (3, 3), (1, 1), (1, 1), 1, "zeros", 16)
