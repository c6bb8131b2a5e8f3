"""The numba.cuda kernels (kernels/cuda.py) equal the reference, checked without a GPU.

Numba's CUDA simulator runs ``@cuda.jit`` kernels in Python threads on NumPy
arrays. It must be switched on (``NUMBA_ENABLE_CUDASIM=1``) before Numba is
imported, which the main test process has already done, so
``test_cuda_kernels_under_simulator`` runs this same file again in a
subprocess with the simulator on; there the ``sim_*`` tests run (tiny arrays:
the simulator is slow) and everywhere else they skip.
On a machine with a GPU, test_kernels.py also runs these kernels for real.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from minicnn.kernels import reference, textbook

IN_SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
only_in_simulator = pytest.mark.skipif(
    not IN_SIMULATOR, reason="runs inside test_cuda_kernels_under_simulator's subprocess")
N_SIM_TESTS = 7


def test_cuda_kernels_under_simulator():
    if IN_SIMULATOR:
        pytest.skip("this is the simulator run itself")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-rs", __file__], env=env, capture_output=True, text=True,
                            timeout=600)
    report = result.stdout + result.stderr
    if "SIMULATOR UNAVAILABLE" in report:
        reason = re.search(r"SIMULATOR UNAVAILABLE: ([^\n]*)", report).group(1)
        pytest.skip(f"numba.cuda simulator cannot be imported: {reason}")
    assert result.returncode == 0, report
    assert f"{N_SIM_TESTS} passed" in report, report


@pytest.fixture(scope="module")
def cuda_kernels():
    try:
        from minicnn.kernels import cuda
    except ImportError as err:  # e.g. neither numba.cuda nor numba-cuda importable
        pytest.skip(f"SIMULATOR UNAVAILABLE: {err}")
    return cuda


def cases(seed, count=3):
    """Small random geometries with overlaps (stride < kernel), padding, dilation and a
    ceil mode: ``rng, kernel, stride, padding, dilation, ceil_mode, shape``."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        kh, kw = (int(k) for k in rng.integers(1, 4, size=2))
        sh, sw = (int(s) for s in rng.integers(1, 3, size=2))
        dh, dw = (int(d) for d in rng.integers(1, 3, size=2))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        h, w = dh * (kh - 1) + 1 + int(rng.integers(0, 3)), dw * (kw - 1) + 1 + int(rng.integers(0, 3))
        yield (rng, (kh, kw), (sh, sw), (ph, pw), (dh, dw), bool(rng.integers(2)),
               (2, 2, h, w))


@only_in_simulator
def test_sim_im2col_col2im_equal_reference_conv(cuda_kernels):
    for dtype in (np.float32, np.float64):
        for rng, kernel, stride, padding, dilation, _, shape in cases(1):
            x = rng.standard_normal(shape).astype(dtype)
            weight = rng.standard_normal((3, shape[1]) + kernel).astype(dtype)
            cols = cuda_kernels.im2col(x, kernel, stride, padding, dilation)
            np.testing.assert_array_equal(cols, textbook.im2col(x, kernel, stride, padding,
                                                                  dilation))
            out_ref = reference.conv2d_forward(x, weight, None, stride, padding, dilation)
            g = rng.standard_normal(out_ref.shape).astype(dtype)
            gx_ref = reference.conv2d_backward(x, weight, g, stride, padding, dilation)[0]
            g2 = g.transpose(1, 0, 2, 3).reshape(3, -1)
            gx = cuda_kernels.col2im(weight.reshape(3, -1).T @ g2, shape, kernel, stride, padding,
                                     dilation)
            assert gx.dtype == dtype
            np.testing.assert_allclose(gx, gx_ref, rtol=1e-4, atol=1e-5)


@only_in_simulator
def test_sim_maxpool_equals_reference_with_ties(cuda_kernels):
    for dtype in (np.float32, np.float64):
        for rng, kernel, stride, padding, dilation, ceil, shape in cases(2):
            x = rng.integers(-1, 2, size=shape).astype(dtype)    # many ties
            out, switches = cuda_kernels.maxpool_forward(x, kernel, stride, padding, dilation,
                                                         ceil)
            out_ref, switches_ref = reference.maxpool_forward(x, kernel, stride, padding,
                                                              dilation, ceil)
            np.testing.assert_array_equal(out, out_ref)
            np.testing.assert_array_equal(switches, switches_ref)
            g = rng.standard_normal(out.shape).astype(dtype)
            gx = cuda_kernels.maxpool_backward(g, switches, shape)
            assert gx.dtype == dtype
            np.testing.assert_allclose(gx, reference.maxpool_backward(g, switches_ref, shape),
                                       rtol=1e-5, atol=1e-6)


@only_in_simulator
def test_sim_avgpool_equals_reference(cuda_kernels):
    for dtype in (np.float32, np.float64):
        for rng, kernel, stride, padding, _, ceil, shape in cases(3):
            x = rng.standard_normal(shape).astype(dtype)
            options = (ceil, bool(rng.integers(2)), [None, 3][int(rng.integers(2))])
            out = cuda_kernels.avgpool_forward(x, kernel, stride, padding, *options)
            np.testing.assert_allclose(
                out, reference.avgpool_forward(x, kernel, stride, padding, *options),
                rtol=1e-5, atol=1e-6)
            g = rng.standard_normal(out.shape).astype(dtype)
            gx = cuda_kernels.avgpool_backward(g, shape, kernel, stride, padding, *options)
            assert gx.dtype == dtype
            np.testing.assert_allclose(
                gx, reference.avgpool_backward(g, shape, kernel, stride, padding, *options),
                rtol=1e-5, atol=1e-6)


@only_in_simulator
def test_sim_overlapping_maxpool_adds_gradients(cuda_kernels):
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 1, 2] = 5.0                      # the maximum of all four 3x3 windows
    _, switches = cuda_kernels.maxpool_forward(x, (3, 3), (1, 1), (0, 0))
    gx = cuda_kernels.maxpool_backward(np.ones((1, 1, 2, 2), np.float32), switches, x.shape)
    assert gx[0, 0, 1, 2] == 4.0 and gx.sum() == 4.0


@only_in_simulator
def test_sim_maxpool_of_non_finite_windows_equals_reference(cuda_kernels):
    """NaN wins (the last NaN of a window), an all -inf window routes to its first tap inside."""
    x = np.full((1, 3, 4, 4), -np.inf)
    x[0, 1, :2, :2] = np.nan
    x[0, 2] = np.arange(16.0).reshape(4, 4)
    x[0, 2, 0, 1], x[0, 2, 1, 0] = np.nan, np.nan
    for padding in [(0, 0), (1, 1)]:
        out, switches = cuda_kernels.maxpool_forward(x, (2, 2), (2, 2), padding)
        out_ref, switches_ref = reference.maxpool_forward(x, (2, 2), (2, 2), padding)
        np.testing.assert_array_equal(out, out_ref)
        np.testing.assert_array_equal(switches, switches_ref)
        assert switches.min() >= 0


@only_in_simulator
def test_sim_launchers_refuse_arrays_of_another_shape(cuda_kernels):
    """The launchers check shapes as cpu.py's entries do (tests/test_kernel_shapes.py); a
    switch outside its plane is skipped by the kernel, never written."""
    x = np.ones((2, 3, 6, 5))
    with pytest.raises(ValueError, match=r"kernels\.col2im: cols has shape \(27, 59\)"):
        cuda_kernels.col2im(np.zeros((27, 59)), x.shape, (3, 3), (1, 1), (1, 1))
    with pytest.raises(ValueError, match=r"kernels\.im2col: no window"):
        cuda_kernels.im2col(x, (7, 3), (1, 1), (0, 0))
    with pytest.raises(ValueError, match=r"kernels\.maxpool_backward: grad_out has shape"):
        cuda_kernels.maxpool_backward(np.ones((2, 4, 3, 2)), np.zeros((2, 4, 3, 2), np.int64),
                                      x.shape)
    with pytest.raises(ValueError, match=r"kernels\.avgpool_backward: grad_out has shape"):
        cuda_kernels.avgpool_backward(np.ones((2, 3, 6, 6)), x.shape, (3, 3), (1, 1), (1, 1))
    out, switches = cuda_kernels.maxpool_forward(x, (2, 2), (2, 2), (0, 0))
    switches[0, 0, 0, 0] = 10 ** 6
    gx = cuda_kernels.maxpool_backward(np.ones_like(out), switches, x.shape)
    assert gx.sum() == out.size - 1


@only_in_simulator
def test_sim_float32_sums_stay_float32_and_close_to_float64(cuda_kernels):
    """col2im and average pooling sum in the arrays' dtype (as textbook's sums do): in
    float32 they agree with float64 sums to float32's rounding of 25 terms."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 7, 7))
    out = cuda_kernels.avgpool_forward(x.astype(np.float32), (5, 5), (1, 1), (2, 2))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, reference.avgpool_forward(x, (5, 5), (1, 1), (2, 2)),
                               rtol=1e-5, atol=1e-6)
    cols = rng.standard_normal((2 * 25, 49))
    gx = cuda_kernels.col2im(cols.astype(np.float32), x.shape, (5, 5), (1, 1), (2, 2))
    assert gx.dtype == np.float32
    np.testing.assert_allclose(gx, textbook.col2im(cols, x.shape, (5, 5), (1, 1), (2, 2)),
                               rtol=1e-5, atol=1e-5)
    # summed in float32 indeed: 1e8 + 1 rounds to 1e8 there (float64 sums would give 1/3)
    row = np.array([[[[1e8, 1.0, -1e8]]]], dtype=np.float32)
    assert cuda_kernels.avgpool_forward(row, (1, 3), (1, 1), (0, 0))[0, 0, 0, 0] == 0.0
    assert textbook.avgpool_forward(row, (1, 3), (1, 1), (0, 0))[0, 0, 0, 0] == 0.0
