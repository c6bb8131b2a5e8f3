"""Max and average pooling: fast path equals reference (outputs, switches, gradients),
ties go to the first index, switches are flat indices into the unpadded plane."""
import numpy as np
import pytest

from minicnn import AvgPool2D, MaxPool2D
from minicnn.backend import as_numpy

CASES = [  # (kernel, stride, padding, H, W)
    (2, None, 0, 6, 6),
    (2, None, 0, 7, 5),          # leftover rows/cols are dropped
    (3, 2, 0, 7, 7),             # overlapping
    (3, 1, 1, 5, 4),             # overlapping + padded
    (3, 2, 1, 6, 6),
    ((2, 3), (1, 2), (1, 1), 5, 6),
    (4, 2, 2, 5, 5),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("integers", [False, True], ids=["distinct", "with-ties"])
def test_maxpool_fast_equals_reference(backend, rng, case, integers):
    k, s, p, h, w = case
    x = rng.integers(0, 3, (2, 3, h, w)) if integers else rng.standard_normal((2, 3, h, w))
    x = backend.asarray(x.astype(np.float64))
    fast, ref = MaxPool2D(k, s, p), MaxPool2D(k, s, p, impl="reference")
    y_fast, y_ref = fast.forward(x), ref.forward(x)
    np.testing.assert_array_equal(as_numpy(y_fast), as_numpy(y_ref))
    np.testing.assert_array_equal(as_numpy(fast.switches), as_numpy(ref.switches))
    assert fast.switches.dtype == np.int64
    g = backend.asarray(rng.standard_normal(y_fast.shape))
    np.testing.assert_allclose(as_numpy(fast.backward(g)), as_numpy(ref.backward(g)),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_avgpool_fast_equals_reference(backend, rng, case):
    k, s, p, h, w = case
    x = backend.asarray(rng.standard_normal((2, 3, h, w)))
    fast, ref = AvgPool2D(k, s, p), AvgPool2D(k, s, p, impl="reference")
    y_fast, y_ref = fast.forward(x), ref.forward(x)
    np.testing.assert_allclose(as_numpy(y_fast), as_numpy(y_ref), rtol=1e-12, atol=1e-14)
    g = backend.asarray(rng.standard_normal(y_fast.shape))
    np.testing.assert_allclose(as_numpy(fast.backward(g)), as_numpy(ref.backward(g)),
                               rtol=1e-12, atol=1e-14)


def first_real_index(i, j, k, s, p, w):
    """Flat index of the first (row-major) non-padding cell of window (i, j)."""
    return max(i * s - p, 0) * w + max(j * s - p, 0)


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 1, 0), (3, 2, 1)])
def test_ties_go_to_first_index_forward_and_backward(backend, impl, k, s, p):
    h = w = 5
    pool = MaxPool2D(k, s, p, impl=impl)
    y = pool.forward(backend.full((1, 1, h, w), 7.0))          # every window is one big tie
    ho, wo = y.shape[2:]
    expected = np.array([[first_real_index(i, j, k, s, p, w) for j in range(wo)]
                         for i in range(ho)])
    np.testing.assert_array_equal(as_numpy(pool.switches)[0, 0], expected)
    grad = as_numpy(pool.backward(backend.ones(y.shape))).reshape(-1)
    np.testing.assert_array_equal(grad, np.bincount(expected.ravel(), minlength=h * w))


def test_switches_point_at_the_maximum_and_overlaps_add_up(backend):
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0                              # the centre wins all four 2x2 windows
    pool = MaxPool2D(2, stride=1)
    y = pool.forward(backend.asarray(x))
    np.testing.assert_array_equal(as_numpy(y), np.full((1, 1, 2, 2), 5.0))
    np.testing.assert_array_equal(as_numpy(pool.switches), np.full((1, 1, 2, 2), 4))
    grad = as_numpy(pool.backward(backend.asarray(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))))
    assert grad[0, 0, 1, 1] == 10.0 and grad.sum() == 10.0


def test_avgpool_counts_padded_zeros(backend):
    pool = AvgPool2D(3, stride=1, padding=1)
    y = as_numpy(pool.forward(backend.ones((1, 1, 3, 3))))
    assert y[0, 0, 1, 1] == 1.0 and y[0, 0, 0, 0] == pytest.approx(4 / 9)


@pytest.mark.parametrize("pool_cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
@pytest.mark.parametrize("shape", [(1, 4, 4), (1, 1, 1, 4), (2, 1, 4, 4, 1)])
def test_bad_input_names_layer_and_expected_shape(backend, pool_cls, impl, shape):
    pool = pool_cls(2, impl=impl)
    name = pool_cls.__name__
    with pytest.raises(ValueError, match=rf"{name}\(.*expects input of shape \(N, C, H, W\)"):
        pool.forward(backend.zeros(shape))


@pytest.mark.parametrize("pool_cls", [MaxPool2D, AvgPool2D])
def test_bad_settings(pool_cls):
    name = pool_cls.__name__
    with pytest.raises(ValueError, match=f"{name} impl must be one of"):
        pool_cls(2, impl="numba")
    with pytest.raises(ValueError, match=f"{name} padding must be between 0 and half"):
        pool_cls(2, padding=2)
    assert pool_cls(3).stride == (3, 3)             # stride defaults to the kernel size


@pytest.mark.parametrize("h, w", [(9, 10), (10, 9), (9, 9), (3, 5)])
def test_maxpool_2x2_ceil_mode_on_odd_sizes_reads_only_the_input(backend, h, w):
    """With ceil_mode a 2x2 stride-2 pool of an odd side has a last window cut by the
    edge: its value, switch and gradient come from the input pixels inside it (the fast
    2x2 path once read the row or column past the end: numbers that are not in x)."""
    x = np.random.default_rng(h * w).permutation(2 * 2 * h * w).reshape(2, 2, h, w) / 7.0
    fast, ref = (MaxPool2D(2, stride=2, ceil_mode=True, impl=i) for i in ("fast", "reference"))
    y, y_ref = as_numpy(fast.forward(backend.asarray(x))), as_numpy(ref.forward(x))
    assert y.shape == (2, 2, -(-h // 2), -(-w // 2)) and np.isin(y, x).all()
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(as_numpy(fast.switches), ref.switches)
    g = np.arange(1.0, y.size + 1).reshape(y.shape)
    gx = as_numpy(fast.backward(backend.asarray(g)))
    np.testing.assert_array_equal(gx, ref.backward(g))
    try:
        import torch
    except ImportError:
        return                          # the reference is the oracle; PyTorch a second one
    xt = torch.from_numpy(x).requires_grad_()
    yt, indices = torch.nn.functional.max_pool2d(xt, 2, 2, ceil_mode=True, return_indices=True)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(as_numpy(fast.switches), indices.numpy())
    np.testing.assert_array_equal(gx, xt.grad.numpy())


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("settings, shape", [
    (dict(kernel_size=2, padding=(0, 1), dilation=2, ceil_mode=True), (1, 1, 2, 1)),
    (dict(kernel_size=(2, 1), stride=2, padding=(1, 0), dilation=(3, 1), ceil_mode=True),
     (1, 1, 1, 3)),
])
def test_maxpool_refuses_a_window_whose_dilated_taps_miss_the_input(backend, impl, settings,
                                                                    shape):
    """Taps at -1 and 1 of a 1-pixel side: no maximum to take (the fast path once made a
    switch past H*W, which backward wrote through; the reference crashed)."""
    pool = MaxPool2D(**settings, impl=impl)
    with pytest.raises(ValueError, match=r"MaxPool2D\(.*a window's taps all fall outside"):
        pool.forward(backend.zeros(shape))
    bigger = shape[:2] + (shape[2] + 2, shape[3] + 2)            # every window reaches it
    assert pool.forward(backend.zeros(bigger)).shape[2:] == pool.output_shape(bigger[1:])[1:]
