"""A parity sweep that searches: Hypothesis draws Conv2D, MaxPool2D and AvgPool2D settings
the way a user combines them (the defaults often, every option sometimes), and every
implementation must agree with the plain loops, forward and backward:

- ``numba``: the fast engine with the Numba kernels (``kernels/cpu.py``), convolutions as
  Winograd tiles, direct loops or per-image products where they suit
  (``winograd.suits``, ``direct.suits``, ``pointwise.suits``: then the test checks that
  they ran);
- ``numba-im2col``: the same with both off (only where one of them suits);
- ``fast-formulas``: the fast engine's chunks with the textbook formulas for loops (its
  fallback without Numba, and the GPU's without numba.cuda);
- ``textbook``: ``impl="textbook"``, the layers' own im2col bodies;
- ``reference``: ``impl="reference"``, the oracle;
- PyTorch in float64 (``torch.nn`` built from the same keyword arguments), where installed.

On a GPU the ``numba`` path is the numba.cuda kernels. Max pooling gets distinct values
(no ties: the switches must be equal too). Settings the layer refuses must be refused by
every implementation with the same ``ValueError`` (never another error or a signal), and
by PyTorch too. The budget is tests/conftest.py's Hypothesis profile: "ci" (the default) a
fixed number of examples and seed, ``HYPOTHESIS_PROFILE=local`` a longer search.
"""
from contextlib import contextmanager

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="Hypothesis (in the test extra) is not installed")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from minicnn import AvgPool2D, Conv2D, MaxPool2D, kernels  # noqa: E402
from minicnn.backend import as_numpy  # noqa: E402

# PyTorch's note that an even kernel with padding="same" copies the input
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

try:
    import torch
except ImportError:
    torch = None

# the backend fixture only names an array module: the same for every example
fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
# a pooling example takes milliseconds, a convolution's up to a second (the reference's
# loops over 16 channels): pooling gets more of them than the profile's budget
pool_budget = settings(fixture_ok, max_examples=4 * settings.default.max_examples)
TOLERANCE = {np.float32: 2e-4, np.float64: 1e-9}     # relative to the output's scale


@contextmanager
def kernels_path(path):
    """``minicnn.kernels`` routed to one implementation while inside (then restored)."""
    loops = kernels.fast.loops
    if path == "fast-formulas":       # as without Numba (or numba.cuda on the GPU)
        kernels.fast.loops = lambda x: kernels.textbook
    impl = "textbook" if path == "textbook" else "fast"
    special = None if path == "numba" else False           # None: as it is (on with Numba)
    try:
        with kernels.use_impl(impl, winograd=special, direct=special):
            yield
    finally:
        kernels.fast.loops = loops


def one_or_pair(values):
    return st.one_of(values, st.tuples(values, values))


def usually(default, others):
    """``default`` two times in three (what most networks use), else one of ``others``."""
    return st.one_of(st.just(default), st.just(default), others)


def span(kernel, dilation=1):
    """The pixels a window covers along each axis: ``d (k - 1) + 1``."""
    k, d = kernels.pair(kernel), kernels.pair(dilation)
    return [d[a] * (k[a] - 1) + 1 for a in range(2)]


@st.composite
def inputs(draw, spans, channels, distinct=False):
    """``x (N, C, H, W)`` mostly around the window's span (one pixel short: refused unless
    padded), sometimes smaller, in float32 or float64; distinct values (no ties) for max
    pooling."""
    n = draw(st.sampled_from([1, 2]))
    h, w = (draw(st.one_of(st.integers(max(1, s - 1), s + 5), st.integers(1, s + 5)))
            for s in spans)
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    shape = (n, channels, h, w)
    if distinct:
        return (rng.permutation(np.prod(shape)).reshape(shape) / 7.0).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@st.composite
def conv_cases(draw):
    """``(Conv2D keyword arguments, x)``: a third of them shaped for Winograd (4 channels
    or more, 3x3 or 5x5, stride 1), a third for the direct loops (each group reads one
    input channel: depthwise, or one input channel), the rest any mix of the options."""
    shape = draw(st.sampled_from(["winograd", "direct", "any"]))
    if shape == "direct":
        groups = draw(st.integers(1, 4))
        options = dict(in_channels=groups, out_channels=groups * draw(st.integers(1, 3)),
                       groups=groups, kernel_size=draw(one_or_pair(st.integers(1, 5))),
                       stride=draw(st.one_of(st.just(1), one_or_pair(st.integers(1, 3)))),
                       dilation=draw(st.one_of(st.just(1), one_or_pair(st.integers(1, 2)))),
                       padding=draw(st.one_of(one_or_pair(st.integers(0, 3)),
                                              st.sampled_from(["same", "valid"]))),
                       padding_mode=draw(usually("zeros", st.sampled_from(kernels.PADDING_MODES))),
                       bias=draw(st.booleans()))
    elif shape == "winograd":
        kernel = draw(st.sampled_from([3, 5]))
        options = dict(in_channels=draw(st.sampled_from([4, 16, 17])),
                       out_channels=draw(st.sampled_from([5, 16, 18])), kernel_size=kernel,
                       padding=draw(st.one_of(one_or_pair(st.integers(0, kernel)),
                                              st.sampled_from(["same", "valid"]))))
    else:
        groups = draw(st.sampled_from([1, 1, 2, 3]))
        options = dict(in_channels=groups * draw(st.integers(1, 2)),
                       out_channels=groups * draw(st.integers(1, 2)), groups=groups,
                       kernel_size=draw(one_or_pair(st.integers(1, 4))),
                       stride=draw(st.one_of(st.just(1), one_or_pair(st.integers(1, 3)))),
                       dilation=draw(st.one_of(st.just(1), one_or_pair(st.integers(1, 3)))),
                       padding=draw(st.one_of(one_or_pair(st.integers(0, 3)),
                                              st.sampled_from(["same", "valid"]))),
                       padding_mode=draw(st.sampled_from(kernels.PADDING_MODES)),
                       bias=draw(st.booleans()))
    spans = span(options["kernel_size"], options.get("dilation", 1))
    return options, draw(inputs(spans, options["in_channels"]))


@st.composite
def pool_cases(draw, layer):
    """``(MaxPool2D or AvgPool2D keyword arguments, x)``: each option usually at its most
    common value (``MaxPool2D(2)`` is what most networks use), otherwise drawn."""
    kernel = draw(usually(2, one_or_pair(st.integers(1, 4))))
    options = dict(kernel_size=kernel,
                   stride=draw(usually(None, one_or_pair(st.integers(1, 3)))))
    if layer is MaxPool2D:
        options["dilation"] = draw(usually(1, one_or_pair(st.integers(1, 3))))
    else:
        options["count_include_pad"] = draw(st.booleans())
        options["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    spans = span(kernel, options.get("dilation", 1))
    # padding up to half the dilated window (over half the kernel: refused, by PyTorch too)
    halves = [s // 2 for s in spans]
    options["padding"] = draw(usually(0, st.tuples(*map(st.integers, [0, 0], halves))))
    options["ceil_mode"] = draw(st.booleans())
    return options, draw(inputs(spans, draw(st.integers(1, 2)), distinct=layer is MaxPool2D))


def paths(backend, special=False):
    """The implementations to compare with ``reference`` on this backend (``special``:
    Winograd or the direct loops ran on the ``numba`` path, so im2col runs too)."""
    return ["numba"] + (["numba-im2col"] if special else []) + ["fast-formulas", "textbook"]


def assert_close(actual, expected, dtype, what):
    expected = as_numpy(expected).astype(np.float64)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(as_numpy(actual).astype(np.float64), expected,
                               rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype] * scale,
                               err_msg=what)


def run(make, path, x, g, backend):
    """``make(impl)``'s layer on ``path``: ``(layer, y, dx)``, or the ``ValueError`` it raised."""
    try:
        layer = make("reference" if path == "reference" else None)
        layer.astype(x.dtype).to("cpu" if backend is np else "gpu")
        with kernels_path(path):
            y = layer.forward(backend.asarray(x))
            dx = layer.backward(backend.asarray(g(y.shape, x.dtype)))
    except ValueError as refusal:
        return refusal
    return layer, y, dx


def torch_run(make_torch, weights, x, g):
    """``make_torch()``'s module with ``weights`` (ours), in float64:
    ``(module, y, indices or None, dx)``, or the exception PyTorch raised. Without ``g``,
    forward only (``dx`` None): PyTorch 2.13's max-pooling backward writes through a switch
    outside the input, where minicnn refuses, and crashes the process."""
    try:
        module = make_torch().double()
        for name, value in weights.items():
            getattr(module, name).data = torch.from_numpy(value.astype(np.float64))
        if isinstance(module, torch.nn.MaxPool2d):
            module.return_indices = True
        xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
        y = module(xt)
    except (ValueError, RuntimeError) as refusal:
        return refusal
    y, indices = y if isinstance(y, tuple) else (y, None)
    if g is None:
        return module, y.detach().numpy(), indices, None
    y.backward(torch.from_numpy(g(tuple(y.shape), np.float64)))
    return module, y.detach().numpy(), indices, xt.grad.numpy()


def gradient(seed):
    """The same output gradient, in the dtype asked for, on every path."""
    return lambda shape, dtype: np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def check_parity(make, make_torch, x, backend, plan_of=None):
    """Every path of ``make(impl)``'s layer equals ``reference`` on ``x``, which equals
    ``make_torch()``'s; or every one refuses. ``plan_of(x)``: the class the fast engine's
    ``plan`` must pick on the ``numba`` path (a convolution on the CPU)."""
    g = gradient(x.size)
    expected = run(make, "reference", x, g, backend)
    weights = {} if isinstance(expected, ValueError) else \
        {name: as_numpy(p.value) for name, p in expected[0].named_parameters()}
    refused = isinstance(expected, ValueError)
    theirs = None if torch is None else torch_run(make_torch, weights, x, None if refused else g)
    plan = None if refused or plan_of is None else plan_of(x)
    if refused:
        event("refused")
        for path in paths(backend):                  # refused alike: same one-line message
            refusal = run(make, path, x, g, backend)
            assert isinstance(refusal, ValueError) and str(refusal) == str(expected), path
        if theirs is not None and not isinstance(theirs, Exception):
            # PyTorch answers a window whose dilated taps miss the input: -inf, a bad switch
            assert "taps all fall outside" in str(expected) and np.isneginf(theirs[1]).any(), \
                f"PyTorch accepts what minicnn refuses ({expected})"
        return
    ref, y_ref, dx_ref = expected
    dtype = x.dtype.type
    for path in paths(backend, plan not in (None, "Columns")):
        result = run(make, path, x, g, backend)
        assert not isinstance(result, ValueError), f"{path} refused: {result}"
        layer, y, dx = result
        if path == "numba" and plan is not None:
            event(f"plan: {plan}")
            assert type(layer.saved).__name__ == plan
        assert y.dtype == dx.dtype == x.dtype and y.shape == y_ref.shape, path
        assert_close(y, y_ref, dtype, f"{path} forward")
        if isinstance(layer, MaxPool2D):
            np.testing.assert_array_equal(as_numpy(layer.switches), as_numpy(ref.switches),
                                          path)
        assert_close(dx, dx_ref, dtype, f"{path} input gradient")
        for name, p in layer.named_parameters():
            assert_close(p.grad, dict(ref.named_parameters())[name].grad, dtype,
                         f"{path} {name} gradient")
    if theirs is None:
        return
    assert not isinstance(theirs, Exception), f"PyTorch refuses what minicnn accepts: {theirs}"
    module, y_t, indices, dx_t = theirs
    assert_close(y_ref, y_t, dtype, "reference vs PyTorch forward")
    if indices is not None:
        np.testing.assert_array_equal(as_numpy(ref.switches), indices.numpy())
    assert_close(dx_ref, dx_t, dtype, "reference vs PyTorch input gradient")
    for name, p in ref.named_parameters():
        assert_close(p.grad, getattr(module, name).grad.numpy(), dtype,
                     f"reference vs PyTorch {name} gradient")


@fixture_ok
@given(case=conv_cases())
def test_conv2d_implementations_agree(backend, case):
    options, x = case
    plan_of = None
    if backend is np:
        def plan_of(x):
            layer = Conv2D(**options)
            if kernels.winograd.suits(x, layer.kernel_size, layer.stride, layer.dilation,
                                      layer.groups, layer.padding_mode, layer.out_channels):
                return "Winograd"
            if kernels.pointwise.suits(x, layer.kernel_size, layer.stride, layer.pads,
                                       layer.groups):
                return "Pointwise"
            return "Direct" if kernels.direct.suits(x, layer.stride, layer.groups) else "Columns"
    check_parity(lambda impl: Conv2D(**options, impl=impl, seed=0),
                 lambda: torch.nn.Conv2d(**options), x, backend, plan_of)


@pool_budget
@given(case=pool_cases(MaxPool2D))
def test_maxpool2d_implementations_agree(backend, case):
    options, x = case
    check_parity(lambda impl: MaxPool2D(**options, impl=impl),
                 lambda: torch.nn.MaxPool2d(**options), x, backend)


@pool_budget
@given(case=pool_cases(AvgPool2D))
def test_avgpool2d_implementations_agree(backend, case):
    options, x = case
    check_parity(lambda impl: AvgPool2D(**options, impl=impl),
                 lambda: torch.nn.AvgPool2d(**options), x, backend)
