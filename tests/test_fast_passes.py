"""The fast engine's CPU passes of issue 28, each held equal to the formulas it replaces
(float64 to 1e-12, float32 to its rounding), over swept shapes:

- ``kernels/direct.py``: convolutions whose groups read one input channel (depthwise,
  or one input channel) summed tap by tap; the zoo's own layers, and Hypothesis'
  (tests/test_parity_sweep.py also runs them against the reference and PyTorch);
- ``kernels/pointwise.py``: 1x1 convolutions as one product per image;
- ``kernels/norm_cpu.py``: BatchNorm1D/2D's fused passes against the layer's formula
  (the textbook engine), training and eval, affine or not, large means;
- their entry checks: a wrong shape is one ``ValueError`` naming the kernel.
"""
from unittest import mock

import numpy as np
import pytest

from minicnn import Conv2D, kernels
from minicnn.layers.norm import BatchNorm1D, BatchNorm2D

pytest.importorskip("hypothesis", reason="Hypothesis (in the test extra) is not installed")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

needs_numba = pytest.mark.skipif(kernels.fast.cpu is None, reason="needs the Numba kernels")
pytestmark = needs_numba
TOLERANCE = {np.float32: 3e-5, np.float64: 1e-12}     # relative to the largest value


def assert_close(actual, expected, what):
    dtype = expected.dtype.type
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=TOLERANCE[dtype],
                               atol=TOLERANCE[dtype] * scale, err_msg=what)


def conv_results(options, x, g, direct):
    """Forward, input and weight gradients of ``Conv2D(**options)`` on the fast engine,
    with the direct loops on or off (then: im2col, the formulas' engine)."""
    layer = Conv2D(**options, seed=0).astype(x.dtype)
    with kernels.use_impl("fast", direct=direct):
        y = layer.forward(x)
        dx = layer.backward(g)
    plan = type(layer.saved).__name__
    return plan, [y, dx, layer.weight.grad] + ([layer.bias.grad] if layer.bias else [])


def check_direct(options, x, seed=1, plan_name="Direct"):
    layer = Conv2D(**options)
    shape = (x.shape[0],) + layer.output_shape(x.shape[1:])
    g = np.random.default_rng(seed).standard_normal(shape).astype(x.dtype)
    plan, ours = conv_results(options, x, g, direct=True)
    assert plan == plan_name
    _, theirs = conv_results(options, x, g, direct=False)
    for name, a, b in zip(["forward", "input gradient", "weight gradient", "bias gradient"],
                          ours, theirs):
        assert a.dtype == x.dtype
        assert_close(a, b, name)


ZOO_LAYERS = {   # the zoo's convolutions the direct loops run (batch 3, MNIST-sized)
    "lenet conv1": (dict(in_channels=1, out_channels=32, kernel_size=5, padding="same"), 28),
    "tiny_cnn conv1": (dict(in_channels=1, out_channels=4, kernel_size=5), 28),
    "fast_cnn conv1": (dict(in_channels=1, out_channels=16, kernel_size=5, bias=False), 28),
    "bn_cnn conv1": (dict(in_channels=1, out_channels=32, kernel_size=3, padding=1), 28),
    "mobilenet depthwise, stride 2": (dict(in_channels=16, out_channels=16, kernel_size=3,
                                           stride=2, padding=1, groups=16), 28),
    "mobilenet depthwise 7x7": (dict(in_channels=64, out_channels=64, kernel_size=3,
                                     padding=1, groups=64), 7),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ZOO_LAYERS)
def test_direct_loops_equal_im2col_on_the_zoo_layers(name, dtype):
    options, side = ZOO_LAYERS[name]
    x = np.random.default_rng(0).standard_normal((3, options["in_channels"], side, side))
    check_direct(options, x.astype(dtype))


@settings(max_examples=2 * settings.default.max_examples)
@given(groups=st.integers(1, 5), per_group=st.integers(1, 3), n=st.integers(1, 9),
       kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.tuples(st.integers(0, 3), st.integers(0, 3)), extra=st.integers(0, 9),
       mode=st.sampled_from(kernels.PADDING_MODES), bias=st.booleans(),
       dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2 ** 16))
def test_direct_loops_equal_im2col_on_every_shape_they_take(groups, per_group, n, kernel,
                                                            stride, dilation, padding, extra,
                                                            mode, bias, dtype, seed):
    """Any one-input-channel-per-group convolution the direct loops accept (strides 1 to
    3 along each axis: the input's phases; dilation, padding in every mode, many images:
    several blocks and threads' parts)."""
    span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    hw = [max(s, p + 1) + extra for s, p in zip(span, padding)]    # windows fit, modes legal
    options = dict(in_channels=groups, out_channels=groups * per_group, kernel_size=kernel,
                   stride=stride, dilation=dilation, padding=padding, groups=groups,
                   padding_mode=mode, bias=bias)
    x = np.random.default_rng(seed).standard_normal((n, groups, *hw)).astype(dtype)
    layer = Conv2D(**options)
    pointwise = kernels.pointwise.suits(x, layer.kernel_size, layer.stride, layer.pads, groups)
    check_direct(options, x, seed, "Pointwise" if pointwise else "Direct")


@given(n=st.integers(1, 40), c_in=st.integers(1, 9), c_out=st.integers(1, 9),
       hw=st.tuples(st.integers(1, 9), st.integers(1, 9)), bias=st.booleans(),
       dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2 ** 16),
       parts=st.integers(1, 3))
def test_pointwise_products_equal_im2col(n, c_in, c_out, hw, bias, dtype, seed, parts):
    """Every 1x1 convolution (stride 1, no padding, one group) the products take, the
    batch in one part or shared between threads (each part's weight gradient summed in
    its own slot)."""
    options = dict(in_channels=c_in, out_channels=c_out, kernel_size=1, bias=bias)
    x = np.random.default_rng(seed).standard_normal((n, c_in, *hw)).astype(dtype)
    kernels.threads.set_num_threads(parts)
    with mock.patch.object(kernels.threads, "MIN_PARALLEL_SIZE", 0):
        check_direct(options, x, seed, plan_name="Pointwise")


def test_pointwise_refuses_weights_bias_and_gradients_of_another_shape():
    plan = kernels.pointwise.Pointwise(np.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"kernels\.Pointwise: w2 has shape \(1, 5, 3\)"):
        plan.product(np.zeros((1, 5, 3)))
    with pytest.raises(ValueError, match=r"kernels\.Pointwise\.product: bias has shape \(4,\)"):
        plan.product(np.zeros((1, 5, 4)), np.zeros(4))
    with pytest.raises(ValueError, match=r"kernels\.Pointwise\.backward: g has shape"):
        plan.backward(np.zeros((1, 5, 4)), np.zeros((2, 5, 8)))


def test_direct_loops_split_a_batch_between_threads_alike():
    """Two threads (each its part of the images) give the one thread's outputs and input
    gradients bit for bit (direct loops and per-image products); the weight gradient adds
    the parts' sums in another grouping: equal to rounding (float32 for the products)."""
    for options in (dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8),
                    dict(in_channels=8, out_channels=6, kernel_size=1)):
        x = np.random.default_rng(0).standard_normal((64, 8, 14, 14)).astype(np.float32)
        g = np.random.default_rng(1).standard_normal((64, options["out_channels"], 14, 14))
        results = []
        for count in (1, 2):
            kernels.threads.set_num_threads(count)
            results.append(conv_results(options, x, g.astype(np.float32), direct=True)[1])
        (y1, dx1, dw1, *_), (y2, dx2, dw2, *_) = results
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(dx1, dx2)
        np.testing.assert_allclose(dw1, dw2, rtol=1e-5, atol=1e-5 * np.abs(dw1).max())


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_direct_backward_gives_only_what_is_asked(mode):
    """Each part makes both gradients in one hand-off; asked for one, the other is None and
    the one asked for is the same bits (stride 2: the phases), before the product or after
    (the plan keeps ``x``: each pass makes the phases it reads)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4, 9, 9))
    plan = kernels.direct.Direct(x, (3, 3), (2, 2), ((1, 1), (1, 1)), groups=4,
                                 padding_mode=mode)
    w2 = rng.standard_normal((4, 2, 9))
    g = rng.standard_normal((40, 8, 25))
    before = plan.backward(w2, g)
    first = plan.product(w2)
    np.testing.assert_array_equal(plan.product(w2), first)
    both = plan.backward(w2, g)
    for made, again in zip(before, both):
        np.testing.assert_array_equal(made, again)
    only_w, none_x = plan.backward(w2, g, inputs=False)
    none_w, only_x = plan.backward(w2, g, weights=False)
    assert none_x is None and none_w is None
    np.testing.assert_array_equal(only_w, both[0])
    np.testing.assert_array_equal(only_x, both[1])
    assert both[1].shape == x.shape and both[0].shape == w2.shape


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options, plan_name", [
    (dict(in_channels=6, out_channels=12, kernel_size=3, stride=2, padding=1, groups=6), "Direct"),
    (dict(in_channels=1, out_channels=5, kernel_size=5, padding=2), "Direct"),
    (dict(in_channels=6, out_channels=7, kernel_size=1), "Pointwise"),
    (dict(in_channels=6, out_channels=7, kernel_size=3, padding=1), "Winograd"),
])
@pytest.mark.parametrize("frozen", [False, True], ids=["trained", "weight frozen"])
def test_bias_gradient_summed_in_the_loops_over_parts(options, plan_name, frozen, dtype):
    """Direct, Pointwise and Winograd sum the bias gradient in their backward loops, a
    part's sum per thread added in part order (float64): the sums of g over images and
    positions, as the textbook engine makes them; with the weight frozen (no weight
    loop) still the sums."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((37, options["in_channels"], 14, 14)).astype(dtype)
    results = []
    kernels.threads.set_num_threads(2)              # (conftest restores the count)
    for impl in ("fast", "textbook"):
        layer = Conv2D(**options, seed=0).astype(dtype)
        layer.weight.requires_grad = not frozen
        with kernels.use_impl(impl):
            y = layer.forward(x)
            g = np.random.default_rng(6).standard_normal(y.shape).astype(dtype)
            layer.backward(g)
        if impl == "fast":
            assert type(layer.saved).__name__ == plan_name
            plan = layer.saved
            parts = plan.chunk_bounds()[0] if plan_name == "Winograd" else plan.parts
            assert len(parts) == 2
        results.append(layer.bias.grad)
    assert results[0].dtype == dtype
    assert_close(results[0], results[1], "bias gradient")
    assert_close(results[0], g.astype(np.float64).sum(axis=(0, 2, 3)).astype(dtype), "sums")


@pytest.mark.parametrize("options, plan_name", [
    (dict(in_channels=6, out_channels=12, kernel_size=3, stride=2, padding=1, groups=6), "Direct"),
    (dict(in_channels=6, out_channels=7, kernel_size=1), "Pointwise"),
    (dict(in_channels=6, out_channels=7, kernel_size=3, padding=1), "Winograd"),
    (dict(in_channels=6, out_channels=7, kernel_size=3, padding=1, dilation=2), "Columns"),
])
def test_a_conv_without_bias_sums_no_bias_gradient(options, plan_name):
    """A bias-less layer (before a BatchNorm: bn_cnn, fast_cnn) has no bias gradient to
    make: its plan's loops sum no ``g`` (``bias_grad`` stays ``None``), nor does
    ``convolve_backward`` (its ``gb`` is ``None``); the weight gradient is unchanged."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((9, 6, 10, 10))
    layer = Conv2D(**options, bias=False, seed=0).astype(np.float64)
    with kernels.use_impl("fast"):
        y = layer.forward(x)
        g = rng.standard_normal(y.shape)
        plan = layer.saved
        assert type(plan).__name__ == plan_name
        gx, gw, gb = kernels.fast.convolve_backward(plan, layer.weight.value, g,
                                                    **layer._geometry())
    assert gb is None and plan.bias_grad is None
    plain = Conv2D(**options, bias=False, seed=0).astype(np.float64)
    with kernels.use_impl("textbook"):
        plain.forward(x)
        expected_x = plain.backward(g)
    assert_close(gw, plain.weight.grad, "weight gradient")
    assert_close(gx, expected_x, "input gradient")


def test_direct_refuses_weights_bias_and_gradients_of_another_shape():
    x = np.zeros((2, 4, 6, 6))
    plan = kernels.direct.Direct(x, (3, 3), (1, 1), ((1, 1), (1, 1)), groups=4)
    w2 = np.zeros((4, 1, 9))
    with pytest.raises(ValueError, match=r"kernels\.Direct: w2 has shape \(4, 1, 8\)"):
        plan.product(np.zeros((4, 1, 8)))
    with pytest.raises(ValueError, match=r"kernels\.Direct\.product: bias has shape \(3,\)"):
        plan.product(w2, np.zeros(3))
    plan.product(w2)
    with pytest.raises(ValueError, match=r"kernels\.Direct\.backward: g has shape"):
        plan.backward(w2, np.zeros((2, 4, 35)))


# -- BatchNorm's fused passes ---------------------------------------------------------------

def batchnorm_results(cls, x, g, training, affine, momentum, impl):
    """Output, gradients and running statistics of a BatchNorm layer on ``impl``'s path."""
    rng = np.random.default_rng(3)
    layer = cls(x.shape[1], momentum=momentum, affine=affine).astype(x.dtype)
    layer.running_mean = rng.standard_normal(x.shape[1]).astype(x.dtype)
    layer.running_var = rng.uniform(0.5, 2, x.shape[1]).astype(x.dtype)
    if affine:
        layer.weight.value = rng.uniform(0.5, 1.5, x.shape[1]).astype(x.dtype)
        layer.bias.value = rng.standard_normal(x.shape[1]).astype(x.dtype)
    layer.train(training)
    with kernels.use_impl(impl):
        y = layer.forward(x)
        dx = layer.backward(g)
        fused = layer.fused is not None
    out = dict(output=y, input_gradient=dx, running_mean=layer.running_mean,
               running_var=layer.running_var)
    if affine:
        out.update(weight_gradient=layer.weight.grad, bias_gradient=layer.bias.grad)
    return fused, out


@settings(max_examples=2 * settings.default.max_examples)
@given(shape=st.sampled_from([(2, 3, 4, 5), (5, 1, 1, 2), (1, 4, 3, 3), (3, 6), (7, 2, 5)]),
       training=st.booleans(), affine=st.booleans(), momentum=st.sampled_from([0.1, None]),
       offset=st.sampled_from([0.0, 1e3]), dtype=st.sampled_from([np.float64, np.float32]),
       seed=st.integers(0, 2 ** 16), parts=st.integers(1, 3))
def test_fused_batchnorm_equals_the_formulas(shape, training, affine, momentum, offset, dtype,
                                             seed, parts):
    """Training and eval, affine or not, BatchNorm1D on (N, C) and (N, C, L), BatchNorm2D;
    inputs far from zero (offset 1000: the variance's sums must not cancel); the batch in
    one part or shared between threads (each part's sums in its own slot)."""
    cls = BatchNorm2D if len(shape) == 4 else BatchNorm1D
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + offset).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    kernels.threads.set_num_threads(parts)
    with mock.patch.object(kernels.threads, "MIN_PARALLEL_SIZE", 0):
        fused, ours = batchnorm_results(cls, x, g, training, affine, momentum, "fast")
    plain, theirs = batchnorm_results(cls, x, g, training, affine, momentum, "textbook")
    assert fused and not plain
    for name in theirs:
        assert ours[name].dtype == theirs[name].dtype, name
        # float32 with a large offset: x - mean loses digits in the formula too
        tolerance = 1e-3 if dtype is np.float32 and offset else TOLERANCE[dtype]
        scale = max(1.0, float(np.abs(theirs[name]).max()))
        np.testing.assert_allclose(ours[name], theirs[name], rtol=tolerance,
                                   atol=tolerance * scale, err_msg=name)


def test_batchnorm_passes_share_a_batch_between_threads():
    """Each of BatchNorm's four passes runs on every thread, a part of the images each:
    two threads give one thread's output and input gradient to rounding (the channel sums
    grouped by part), and the same bits run after run."""
    from minicnn.kernels import parallel
    x = np.random.default_rng(0).standard_normal((64, 8, 14, 14)).astype(np.float32) + 2
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    launched, call = [], parallel.PartsLoop.__call__

    def spy(loop, *args):
        launched.append((loop.__name__, len(args[loop.parts_at])))
        return call(loop, *args)

    results = []
    for count in (1, 2, 2):
        kernels.threads.set_num_threads(count)
        with mock.patch.object(parallel.PartsLoop, "__call__", spy):
            results.append(batchnorm_results(BatchNorm2D, x, g, True, True, 0.1, "fast")[1])
    assert {name for name, parts in launched if parts == 2} == {
        "_stats_parts", "_normalize_parts", "_grad_sums_parts", "_normalize_grad_parts"}
    one, two, again = results
    for name in one:
        np.testing.assert_array_equal(two[name], again[name], err_msg=name)
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_norm_passes_refuse_arrays_of_another_shape():
    norm = kernels.fast.norm_loops(np.zeros(1))
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"kernels\.normalize: weight has shape \(2,\)"):
        norm.normalize(x, np.zeros(3), np.ones(3), np.ones(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"kernels\.grad_sums: x has shape \(2, 3\)"):
        norm.grad_sums(x, np.zeros((2, 3)), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=r"kernels\.grad_sums: mean has shape \(2,\)"):
        norm.grad_sums(x, x, np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match=r"kernels\.normalize_grad: inv_std has shape \(4,\)"):
        norm.normalize_grad(x, x, np.zeros(3), np.ones(4))


def test_batchnorm_keeps_its_formula_off_the_fast_engine():
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3))
    layer = BatchNorm2D(2).astype("float64")
    with kernels.use_impl("reference"):
        layer.forward(x)
    assert layer.fused is None
    with kernels.use_impl("fast"):
        layer.forward(x)
    assert layer.fused is kernels.norm_cpu


def test_a_direct_plan_keeps_the_input_not_a_padded_copy_of_it():
    """What a depthwise layer keeps for backward is its input, the array the layer before
    returned (PyTorch keeps the same): the phases each pass reads are made a block at a
    time in a small scratch (a step's peak memory: benchmarks/README.md, issue 28)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16, 14, 14)).astype(np.float32)
    w2 = rng.standard_normal((16, 1, 9)).astype(np.float32)
    kernels.direct.Direct(x, (3, 3), (2, 2), ((1, 1), (1, 1)), groups=16).product(w2)  # compiled
    tracemalloc.start()
    plan = kernels.direct.Direct(x, (3, 3), (2, 2), ((1, 1), (1, 1)), groups=16)
    out = plan.product(w2)
    held = tracemalloc.get_traced_memory()[0] - out.nbytes
    tracemalloc.stop()
    assert held < x.nbytes / 20, f"the plan holds {held} bytes beside x ({x.nbytes})"
    assert plan.source is x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("length", [1, 7, 16, 81 * 50 + 20])
def test_scratch_rows_start_on_cache_lines(dtype, length):
    """Each row of a work array starts on a 64-byte line and holds ``length`` numbers."""
    rows = kernels.scratch.rows((3, 2), length, dtype)
    assert rows.shape[:2] == (3, 2) and length <= rows.shape[2] < length + 64
    assert rows.dtype == dtype and rows.flags.c_contiguous
    for p in range(3):
        for r in range(2):
            assert rows[p, r].ctypes.data % 64 == 0


def test_direct_loops_add_into_rows_on_cache_lines():
    """The rows the direct loops add into pass after pass (the forward's four sums, the
    phases, the backward's views of its scratch) start on cache lines: rows that straddle
    lines made those passes up to 2x as slow, and a process kept the offset its first
    allocation drew (benchmarks/README.md, issue 28, "The twelfth session")."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3, 11, 11)).astype(np.float32)
    w2 = rng.standard_normal((3, 5, 9)).astype(np.float32)
    g = rng.standard_normal((40, 15, 36)).astype(np.float32)
    seen = {}

    def spy(name):
        loop = getattr(kernels.parallel, name)
        names = loop.__wrapped__.__code__.co_varnames      # the loop's arguments, by name

        def call(*args):
            seen[name] = dict(zip(names, args))
            return loop(*args)
        return mock.patch.object(kernels.parallel, name, call)
    plan = kernels.direct.Direct(x, (3, 3), (2, 2), ((1, 1), (1, 1)), groups=3)
    with spy("direct_forward"), spy("direct_backward"):
        plan.product(w2)
        plan.backward(w2, g)
    forward, backward = seen["direct_forward"], seen["direct_backward"]
    assert forward["sums"].shape[:2] == (len(plan.parts), 4)
    for p in range(len(plan.parts)):
        rows = list(forward["rows"][p]) + list(forward["sums"][p])
        assert all(r.ctypes.data % 64 == 0 for r in rows)
        assert backward["scratch"][p].ctypes.data % 64 == 0
    for view in ("rows_p", "rows_g", "rows_t", "sums_t"):     # the views cut at whole lines
        assert backward[view][1] * x.itemsize % 64 == 0, view
