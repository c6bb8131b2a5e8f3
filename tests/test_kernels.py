"""Every fast kernel path equals the plain-loop reference.

Paths: the loops the fast engine picks for the backend (Numba on NumPy, numba.cuda
on CuPy) and the textbook formulas (also the fast engine's fallback). The numba.cuda kernels' logic is also
checked without a GPU, under the CUDA simulator, in test_kernels_cuda.py.
"""
import gc
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest
from minicnn.kernels import chunks, reference, textbook

from minicnn import Conv2D, kernels
from minicnn.backend import as_numpy

PATHS = ["dispatched", "textbook"]


def kernel_module(path, x):
    return kernels.fast.loops(x) if path == "dispatched" else textbook


def random_geometry(rng, pool=False):
    """Random kernel, stride (often smaller than the kernel: overlaps) and padding."""
    kh, kw = (int(k) for k in rng.integers(1, 5, size=2))
    sh, sw = (int(s) for s in rng.integers(1, 4, size=2))
    if pool:      # pooling padding is at most half the kernel
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    else:
        ph, pw = (int(p) for p in rng.integers(0, 3, size=2))
    h, w = kh + int(rng.integers(0, 6)), kw + int(rng.integers(0, 6))
    return (kh, kw), (sh, sw), (ph, pw), (h, w)


def assert_close(a, b, dtype):
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(as_numpy(a), as_numpy(b), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("seed", range(6))
def test_conv_from_im2col_col2im_equals_reference(backend, path, dtype, seed):
    """out = W2 @ im2col(x); dW2 = g2 @ cols.T; dx = col2im(W2.T @ g2)."""
    rng = np.random.default_rng(seed)
    kernel, stride, padding, (h, w) = random_geometry(rng)
    n, c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((n, c_in, h, w)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in) + kernel).astype(dtype)
    ops = kernel_module(path, backend.asarray(x))

    cols = ops.im2col(backend.asarray(x), kernel, stride, padding)
    out_ref = reference.conv2d_forward(x, weight, None, stride, padding)
    ho, wo = out_ref.shape[2:]
    assert cols.shape == (c_in * kernel[0] * kernel[1], n * ho * wo) and cols.dtype == dtype
    w2 = backend.asarray(weight.reshape(c_out, -1))
    out = (w2 @ cols).reshape(c_out, n, ho, wo).transpose(1, 0, 2, 3)
    assert_close(out, out_ref, dtype)

    g = rng.standard_normal(out_ref.shape).astype(dtype)
    gx_ref, gw_ref, _ = reference.conv2d_backward(x, weight, g, stride, padding)
    g2 = backend.asarray(g.transpose(1, 0, 2, 3).reshape(c_out, -1))
    gx = ops.col2im(w2.T @ g2, x.shape, kernel, stride, padding)
    assert gx.shape == x.shape and gx.dtype == dtype
    assert_close(gx, gx_ref, dtype)
    assert_close((g2 @ cols.T).reshape(weight.shape), gw_ref, dtype)


def pool_input(rng, shape, ties):
    """Distinct values, or a few small integers so that windows hold ties."""
    if ties:
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    return rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) / 7.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("seed", range(6))
def test_maxpool_equals_reference(backend, path, ties, dtype, seed):
    rng = np.random.default_rng(100 + seed)
    kernel, stride, padding, (h, w) = random_geometry(rng, pool=True)
    x = pool_input(rng, (2, 3, h, w), ties).astype(dtype)
    ops = kernel_module(path, backend.asarray(x))
    out, switches = ops.maxpool_forward(backend.asarray(x), kernel, stride, padding)
    out_ref, switches_ref = reference.maxpool_forward(x, kernel, stride, padding)
    assert out.dtype == dtype and switches.dtype == np.int64
    np.testing.assert_array_equal(as_numpy(out), out_ref)
    np.testing.assert_array_equal(as_numpy(switches), switches_ref)   # ties: first in window
    g = rng.standard_normal(out_ref.shape).astype(dtype)
    gx = ops.maxpool_backward(backend.asarray(g), switches, x.shape)
    assert gx.dtype == dtype
    assert_close(gx, reference.maxpool_backward(g, switches_ref, x.shape), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("seed", range(6))
def test_avgpool_equals_reference(backend, path, dtype, seed):
    rng = np.random.default_rng(200 + seed)
    kernel, stride, padding, (h, w) = random_geometry(rng, pool=True)
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    ops = kernel_module(path, backend.asarray(x))
    out = ops.avgpool_forward(backend.asarray(x), kernel, stride, padding)
    assert out.dtype == dtype
    assert_close(out, reference.avgpool_forward(x, kernel, stride, padding), dtype)
    g = rng.standard_normal(out.shape).astype(dtype)
    gx = ops.avgpool_backward(backend.asarray(g), x.shape, kernel, stride, padding)
    assert gx.dtype == dtype
    assert_close(gx, reference.avgpool_backward(g, x.shape, kernel, stride, padding), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kernel, padding, hw", [
    ((7, 7), (0, 0), (7, 7)),       # one window per plane: each plane filled with its share
    ((3, 5), (0, 0), (3, 5)),
    ((4, 6), (1, 1), (2, 4)),       # as large, but over padding: the window loops
    ((7, 6), (0, 0), (7, 7)),       # a column left out: the window loops
])
def test_avgpool_of_a_whole_plane_equals_reference(backend, path, dtype, kernel, padding, hw):
    """A window as large as the plane (MobileNet's last pooling) shares each gradient over
    the whole plane, the CPU loop filling it as one row."""
    rng = np.random.default_rng(sum(kernel + hw))
    x = rng.standard_normal((3, 5) + hw).astype(dtype)
    ops = kernel_module(path, backend.asarray(x))
    out = ops.avgpool_forward(backend.asarray(x), kernel, kernel, padding)
    assert_close(out, reference.avgpool_forward(x, kernel, kernel, padding), dtype)
    g = rng.standard_normal(out.shape).astype(dtype)
    gx = ops.avgpool_backward(backend.asarray(g), x.shape, kernel, kernel, padding)
    assert_close(gx, reference.avgpool_backward(g, x.shape, kernel, kernel, padding), dtype)


@pytest.mark.parametrize("planes", [1, 3, 4, 5, 9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avgpool_four_planes_at_a_time_as_one_at_a_time(planes, dtype):
    """The CPU loop sums four planes' windows side by side (a plane alone, or the last few,
    one at a time): every window's sum the same bits as the plane's own, whatever its
    place among the planes."""
    from minicnn.kernels import cpu
    rng = np.random.default_rng(planes)
    for kernel, stride, padding, hw in (((7, 7), (7, 7), (0, 0), (7, 7)),
                                        ((3, 2), (2, 1), (1, 1), (6, 5))):
        x = rng.standard_normal((planes, 1) + hw).astype(dtype) * 1e3
        out = cpu.avgpool_forward(x, kernel, stride, padding)
        alone = [cpu.avgpool_forward(x[p:p + 1], kernel, stride, padding) for p in range(planes)]
        np.testing.assert_array_equal(out, np.concatenate(alone))


def test_overlapping_maxpool_shares_gradient(backend):
    """A 3x3 window with stride 1 on a plane whose maximum is in the middle:
    all four windows pick it, so it receives the sum of their gradients."""
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = 5.0
    for path in PATHS:
        ops = kernel_module(path, backend.asarray(x))
        out, switches = ops.maxpool_forward(backend.asarray(x), (3, 3), (1, 1), (0, 0))
        np.testing.assert_array_equal(as_numpy(switches), np.full((1, 1, 2, 2), 1 * 4 + 2))
        gx = ops.maxpool_backward(backend.ones((1, 1, 2, 2)), switches, x.shape)
        assert as_numpy(gx)[0, 0, 1, 2] == 4.0 and as_numpy(gx).sum() == 4.0


def test_dispatch_picks_the_fast_path(backend):
    x = backend.zeros((1, 1, 2, 2))
    module = kernels.fast.loops(x)
    if backend is np:
        assert module.__name__ == "minicnn.kernels.cpu"
    elif backend.__name__ == "fake_cupy":        # the stand-in chose its loops (conftest.py)
        assert module is kernels.fast.gpu_loops(x)
    else:
        assert module.__name__ == "minicnn.kernels.cuda", kernels.fast.gpu_choice


@pytest.mark.parametrize("value, engine", [("textbook", "textbook"), ("reference", "reference"),
                                           ("", "fast"), ("turbo", "fast")])
def test_minicnn_impl_chooses_the_engine(value, engine):
    """MINICNN_IMPL (read at import) is what layers with impl=None run; a value that
    names no engine is one warning line, and the fast engine runs."""
    code = ("import numpy, minicnn; c = minicnn.Conv2D(1, 1, 1); c.forward(numpy.ones((1, 1, 2, 2)));"
            "print(c.engine.__name__)")
    env = dict(os.environ, MINICNN_IMPL=value)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"minicnn.kernels.{engine}"
    warned = [line for line in result.stderr.splitlines() if "MINICNN_IMPL" in line]
    assert len(warned) == (value == "turbo")


@pytest.mark.parametrize("n_batch, per_example, bound, expected", [
    (10, 100, 10_000, [10]),          # fits: one chunk
    (10, 100, 300, [3, 3, 2, 2]),     # 3 fit -> 4 chunks, sizes within one of each other
    (5, 100, 1, [1, 1, 1, 1, 1]),     # a bound below one example still makes progress
])
def test_batch_chunks(n_batch, per_example, bound, expected):
    """Chunks cover the batch in order, without gaps, and respect the bound."""
    parts = chunks.batch_chunks(n_batch, per_example, bound)
    assert [c.stop - c.start for c in parts] == expected
    assert parts[0].start == 0 and parts[-1].stop == n_batch
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))


@pytest.mark.parametrize("padding, stride", [("same", 1), (0, 2)])
def test_conv_chunked_equals_unchunked(backend, device, padding, stride, monkeypatch):
    """A tiny bound puts every example in its own chunk; results must not change."""
    rng = np.random.default_rng(7)
    kernels.threads.set_num_threads(1)      # (threads=2 splits even a small batch in two)
    monkeypatch.setitem(chunks.MAX_KEPT_BYTES, device, 0)     # nothing kept: rebuilt
    whole = Conv2D(3, 4, 3, stride=stride, padding=padding, seed=1, impl="fast")
    chunked = Conv2D(3, 4, 3, stride=stride, padding=padding, seed=1, impl="fast")
    whole, chunked = (c.astype("float64").to(device) for c in (whole, chunked))
    x = backend.asarray(rng.standard_normal((5, 3, 7, 6)))
    monkeypatch.setitem(chunks.MAX_COLS_BYTES, device, 2 ** 30)   # the whole batch in one chunk
    y_whole = whole.forward(x)
    monkeypatch.setitem(chunks.MAX_COLS_BYTES, device, 1)         # every example on its own
    y_chunked = chunked.forward(x)
    assert len(whole.saved.chunks) == 1
    assert len(chunked.saved.chunks) == 5 and chunked.saved.kept is None  # rebuilt in backward
    assert_close(y_chunked, y_whole, np.float64)
    g = backend.asarray(rng.standard_normal(y_whole.shape))
    assert_close(chunked.backward(g), whole.backward(g), np.float64)
    assert_close(chunked.weight.grad, whole.weight.grad, np.float64)
    assert_close(chunked.bias.grad, whole.bias.grad, np.float64)


def _plan(kind, x):
    if kind == "Winograd":
        return kernels.winograd.Winograd(x, (3, 3), ((1, 1), (1, 1)), 6, max_bytes=1)
    return kernels.columns.Columns(x, (3, 3), (1, 1), ((1, 1), (1, 1)), loops=kernels.cpu,
                                   max_bytes=1)


@pytest.mark.skipif(not kernels.fast.WINOGRAD, reason="needs the Numba kernels")
@pytest.mark.parametrize("kind", ["Winograd", "Columns"])
def test_a_plan_lets_its_input_go_once_every_chunk_is_kept(monkeypatch, kind):
    """With every chunk's tiles or columns kept, backward needs only the input's shape: the
    plan lets the input go after forward (its memory counts in a step's peak); when they
    are rebuilt in backward, it keeps it. The gradients are the same bits either way."""
    rng = np.random.default_rng(5)
    w2 = rng.standard_normal((1, 6, 4 * 9))
    results = {}
    for bound in (2 ** 30, 0):
        monkeypatch.setitem(chunks.MAX_KEPT_BYTES, "cpu", bound)
        x = np.random.default_rng(6).standard_normal((3, 4, 7, 9))
        plan, alive = _plan(kind, x), weakref.ref(x)
        out = plan.product(w2)
        del x
        gc.collect()
        assert len(plan.chunks) == 3 and (alive() is None) == (bound > 0)
        g = rng.standard_normal(out.shape) if not results else results[2 ** 30][3]
        results[bound] = (out, *plan.backward(w2, g), g)
    for a, b in zip(results[2 ** 30], results[0]):
        np.testing.assert_array_equal(a, b)


def non_finite_planes():
    """Windows of NaN, of -inf, of both, and of finite values, without and with padding."""
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float64).reshape(2, 3, 4, 4) % 5 - 2.0
    x[0, 0, :2, :2] = -np.inf                    # an all -inf window
    x[0, 1, :2, :2] = np.nan                     # an all NaN window
    x[0, 2, 0, 1], x[0, 2, 1, 0] = np.nan, np.nan   # two NaNs among finite values
    x[1, 0] = -np.inf                            # a whole plane of -inf
    x[1, 1, 1, 1], x[1, 1, 0, 0] = np.nan, -np.inf
    x[1, 2] = np.nan
    return x


@pytest.mark.parametrize("padding", [(0, 0), (1, 1)])
@pytest.mark.parametrize("path", PATHS + ["reference"])
def test_maxpool_of_non_finite_windows_agrees_with_torch(backend, path, padding):
    """NaN propagates (the window's last NaN is the switch) and an all -inf window
    routes to its first tap inside the input, as in PyTorch; gradients follow."""
    torch = pytest.importorskip("torch")
    x = non_finite_planes()
    ops = reference if path == "reference" else kernel_module(path, backend.asarray(x))
    out, switches = ops.maxpool_forward(backend.asarray(x), (2, 2), (2, 2), padding)
    out_t, switches_t = torch.nn.functional.max_pool2d(
        torch.from_numpy(x), 2, 2, padding, return_indices=True)
    np.testing.assert_array_equal(as_numpy(out), out_t.numpy())
    np.testing.assert_array_equal(as_numpy(switches), switches_t.numpy())
    g = np.arange(1.0, out_t.numel() + 1).reshape(out_t.shape)
    xt = torch.from_numpy(x).requires_grad_()
    torch.nn.functional.max_pool2d(xt, 2, 2, padding).backward(torch.from_numpy(g))
    gx = ops.maxpool_backward(backend.asarray(g), switches, x.shape)
    np.testing.assert_array_equal(as_numpy(gx), xt.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_2x2_loop_on_every_window_of_special_values(dtype):
    """The CPU's 2x2 loop (no window bounds, the four taps compared directly) on every
    window of NaN, -inf, -1, -0.0, 0.0, 1 and inf, 7^4 of them, each its own row: the
    same maxima and switches as the general loop and as PyTorch."""
    torch = pytest.importorskip("torch")
    cpu = pytest.importorskip("minicnn.kernels.cpu")
    values = np.array([np.nan, -np.inf, -1.0, -0.0, 0.0, 1.0, np.inf], dtype)
    taps = np.stack(np.meshgrid(*[np.arange(7)] * 4, indexing="ij"), -1).reshape(-1, 4)
    x = values[taps].reshape(-1, 1, 2, 2)           # a plane (and a row) per window
    out, switches = cpu.maxpool_forward(x, (2, 2), (2, 2), (0, 0))
    out_loop, switches_loop = np.empty_like(out), np.empty_like(switches)
    cpu._maxpool_forward_kernel(x, 2, 2, 2, 2, 0, 0, 1, 1, out_loop, switches_loop)
    out_t, switches_t = torch.nn.functional.max_pool2d(torch.from_numpy(x), 2, 2,
                                                       return_indices=True)
    for o, s in ((out_loop, switches_loop), (out_t.numpy(), switches_t.numpy())):
        np.testing.assert_array_equal(out, o)
        np.testing.assert_array_equal(switches, s)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [7, 10 * 2 ** 16])
def test_relu_kernels_equal_the_formula_bit_for_bit(dtype, size):
    """One pass (mask and output together) gives what ``x * (x > 0)`` gives, -0.0 and
    NaN included."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(size).astype(dtype)
    x[:5] = [np.nan, -0.0, 0.0, -np.inf, np.inf]
    x = x.reshape(-1, 1) if size == 7 else x.reshape(10, -1)[:, ::2]  # a strided view too
    g = rng.standard_normal(x.shape).astype(dtype)
    y, active = kernels.relu_forward(x)
    with np.errstate(invalid="ignore"):          # -inf * 0 is NaN in the formula too
        y_ref, active_ref = textbook.relu_forward(x)
    np.testing.assert_array_equal(active, active_ref)
    assert y.dtype == dtype and np.asarray(active).dtype == np.bool_
    assert np.array_equal(y.view(np.uint8), np.ascontiguousarray(y_ref).view(np.uint8))
    for derivative in (active, np.where(active, dtype(1), dtype(0.01))):   # LeakyReLU's too
        dx = kernels.relu_backward(g, derivative)
        dx_ref = textbook.relu_backward(g, derivative)
        assert np.array_equal(dx.view(np.uint8), np.ascontiguousarray(dx_ref).view(np.uint8))


@pytest.mark.parametrize("size", [1, 7, 8, 9, 77, 4 * 2 ** 16 + 3])
def test_the_fast_relu_keeps_its_mask_packed_eight_to_a_byte(size):
    """The mask ``x > 0`` a ReLU keeps for backward costs one bit a number, not NumPy's
    byte a bool (a step's peak memory: benchmarks/README.md, issue 28), and reads back
    as the bool mask; the gradient through it is the formula's, tails of 1-7 numbers too."""
    from minicnn.kernels import passes_cpu
    rng = np.random.default_rng(size)
    x = rng.standard_normal(size).reshape(-1, 1)
    y, active = passes_cpu.relu_forward(x)
    assert active.nbytes <= -(-size // 8)
    np.testing.assert_array_equal(np.asarray(active), x > 0)
    assert active.shape == x.shape and np.asarray(active).dtype == np.bool_
    with pytest.raises(ValueError, match="unpacked into a new array"):
        np.asarray(active, copy=False)               # NumPy's protocol: no silent copy
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(passes_cpu.relu_backward(g, active), g * (x > 0))
