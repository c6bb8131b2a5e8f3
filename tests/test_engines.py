"""The three engines (``minicnn.kernels``): the same gradients on every zoo model, one
switch, and a textbook route a learner can follow to the arithmetic."""
import os
import subprocess
import sys

import numpy as np
import pytest
from minicnn.kernels import textbook

import minicnn
from minicnn import Conv2D, kernels
from minicnn.backend import as_numpy
from minicnn.layers import SoftmaxCrossEntropy
from minicnn.models import get_model
from minicnn.training.config import MNIST_MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gradients(name, impl, x, y, device):
    """Every parameter's gradient and the input's, float64, for ``impl``."""
    model = get_model(name, seed=3).astype("float64").to(device)
    loss = SoftmaxCrossEntropy()
    with kernels.use_impl(impl):
        model.train()
        for layer in model.modules():               # dropout and batch norm seeded alike
            if hasattr(layer, "generator"):
                layer.generator = np.random.default_rng(0)
        loss(model.forward(x), y)
        gx = model.backward(loss.backward())
    return [as_numpy(gx)] + [as_numpy(p.grad) for p in model.parameters()]


@pytest.mark.parametrize("name", MNIST_MODELS)
def test_textbook_fast_and_reference_give_the_same_gradients(backend, device, name):
    """Float64, every trainable model of the zoo: the three engines agree to 1e-9."""
    rng = np.random.default_rng(0)
    x = backend.asarray(rng.standard_normal((2, 1, 28, 28)))
    y = backend.asarray(np.array([3, 7]))
    fast = gradients(name, "fast", x, y, device)
    for impl in ("textbook", "reference"):
        if impl == "reference" and name in ("keras_cnn", "bn_cnn"):
            continue                     # the plain loops take minutes on these: fast = textbook
        for got, want in zip(gradients(name, impl, x, y, device), fast):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11 * np.abs(want).max())


def test_use_impl_sets_the_program_and_a_layer_may_choose(rng):
    x = rng.standard_normal((1, 1, 6, 6))
    follows, own = Conv2D(1, 2, 3), Conv2D(1, 2, 3, impl="reference")
    with kernels.use_impl("textbook"):
        follows.forward(x), own.forward(x)
        assert follows.engine is textbook and own.engine is kernels.reference
        assert kernels.default_impl == "textbook"
    follows.forward(x)
    assert follows.engine is kernels.fast and kernels.default_impl == "fast"


def test_use_impl_refuses_an_unknown_engine():
    with pytest.raises(ValueError, match="use_impl must be one of"):
        minicnn.use_impl("cuda")


def test_a_learners_edit_of_the_textbook_im2col_is_what_training_runs(monkeypatch, rng):
    """Turn the switch on and the edited im2col runs; the fast engine never calls it."""
    calls = []
    original = textbook.im2col

    def edited(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)
    monkeypatch.setattr(textbook, "im2col", edited)
    model, loss = get_model("tiny_cnn"), SoftmaxCrossEntropy()
    x, y = rng.standard_normal((4, 1, 28, 28)).astype(np.float32), np.array([0, 1, 2, 3])
    loss(model.forward(x), y)
    assert calls == [] or kernels.fast.cpu is None    # fast: the compiled im2col
    with minicnn.use_impl("textbook"):
        loss(model.forward(x), y)
        model.backward(loss.backward())
    assert len(calls) >= 2                            # both convolutions (and both pools)


def test_winograd_switch_is_part_of_use_impl(rng):
    conv = Conv2D(16, 16, 3, padding=1)
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    with kernels.use_impl(winograd=False):
        conv.forward(x)
        assert type(conv.saved).__name__ == "Columns"
    conv.forward(x)
    assert type(conv.saved).__name__ == ("Winograd" if kernels.fast.cpu else "Columns")


def test_the_textbook_route_is_short():
    """From Conv2D/MaxPool2D forward and backward with impl="textbook", a debugger meets
    the arithmetic within a dozen functions, in the layer's file and textbook.py only
    (besides base.py, parameter.py, backend.py): benchmarks/trace_route.py counts."""
    script = os.path.join(ROOT, "benchmarks", "trace_route.py")
    result = subprocess.run([sys.executable, script, "--impl", "textbook"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    allowed = {"base.py", "parameter.py", "backend.py", "textbook.py", "conv.py", "pool.py"}
    routes = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert len(routes) == 6
    for line in routes:
        count = int(line.split(": ")[1].split(" functions")[0])
        assert count <= 12, line
    files = {line.split("(")[-1].rstrip(")").split("/")[-1]
             for line in result.stdout.splitlines() if line.startswith("    ")}
    assert files <= allowed, files


@pytest.mark.parametrize("call, says", [
    (lambda: minicnn.use_impl("textbook", winograd=True),
     "use_impl: winograd= and direct= choose passes of the fast engine; with impl='textbook' "
     "they would change nothing"),
    (lambda: minicnn.use_impl("fast", winograd="yes"),
     "use_impl winograd must be True, False or None, got 'yes'"),
    (lambda: minicnn.use_impl(direct=1), "use_impl direct must be True, False or None, got 1"),
])
def test_use_impl_refuses_options_it_would_ignore(call, says):
    """Found by trying: ``use_impl("textbook", winograd=True)`` and ``winograd="yes"`` were
    accepted, the first doing nothing the caller asked for."""
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == says
