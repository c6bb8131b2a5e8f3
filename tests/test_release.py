"""``release``: a training step drops each layer's cache right after that layer's backward
(as PyTorch frees its saved tensors), so the step's peak memory holds less; nothing else
changes, and a backward after it is refused in one line."""
import tracemalloc

import numpy as np
import pytest

from minicnn import Adam, models
from minicnn.layers import (AvgPool2D, BatchNorm1D, BatchNorm2D, Concat, Conv2D, Dense, Dropout,
                            Flatten, GlobalAvgPool2D, LeakyReLU, MaxPool2D, ReLU, Sequential,
                            SoftmaxCrossEntropy)
from minicnn.backend import as_numpy
from minicnn.parameter import Parameter


def every_kind(impl):
    """One of each built-in layer a trainable model is made of (float64)."""
    return Sequential([
        Conv2D(1, 4, 3, padding=1, seed=1, impl=impl), BatchNorm2D(4), ReLU(),
        MaxPool2D(2, impl=impl),
        Concat([Sequential([Conv2D(4, 2, 1, seed=2, impl=impl), LeakyReLU(0.1)]),
                Sequential([AvgPool2D(3, stride=1, padding=1, impl=impl)])]),
        Conv2D(6, 6, 3, padding=1, groups=6, seed=3, impl=impl), GlobalAvgPool2D(),
        Dense(6, 8, seed=4), BatchNorm1D(8), ReLU(), Dropout(0.3, seed=5), Flatten(),
        Dense(8, 3, seed=6)]).astype("float64")


def kept_arrays(layer):
    """The names of ``layer``'s own attributes that hold arrays (or a kernel's saved state)
    and are neither parameters nor buffers: what its forward kept."""
    names = set()
    for name, value in vars(layer).items():
        if name in layer.param_names or name in layer.buffer_names or isinstance(value, Parameter):
            continue
        values = value if isinstance(value, tuple) else (value,)
        if any(hasattr(v, "shape") and hasattr(v, "dtype")
               or type(v).__module__.startswith("minicnn.kernels.") for v in values):
            names.add(name)
    return names


@pytest.mark.parametrize("impl", ["fast", "textbook"])
@pytest.mark.parametrize("input_grad", [True, False])
def test_release_drops_every_cache_and_changes_no_gradient(backend, device, impl, input_grad):
    rng = np.random.default_rng(0)
    x = backend.asarray(rng.standard_normal((5, 1, 8, 8)))
    g = backend.asarray(rng.standard_normal((5, 3)))
    kept, released = every_kind(impl).to(device), every_kind(impl).to(device)
    kept.forward(x)
    released.forward(x)
    kept_gx = kept.backward(g, input_grad=input_grad)
    released_gx = released.backward(g, input_grad=input_grad, release=True)
    if input_grad:
        np.testing.assert_array_equal(as_numpy(released_gx), as_numpy(kept_gx))
    for a, b in zip(kept.parameters(), released.parameters()):
        np.testing.assert_array_equal(as_numpy(b.grad), as_numpy(a.grad))
    for layer in released.modules():
        assert kept_arrays(layer) == set(), f"{layer.label()} still holds {kept_arrays(layer)}"
    with pytest.raises(ValueError, match="backward called before forward.*release"):
        released.backward(g)
    released.forward(x)                     # a new forward: backward works again
    released.backward(g)


def test_every_layer_names_what_its_forward_keeps():
    """What ``release`` drops is each class's ``cache_names``: a cache a layer keeps under
    another name would stay alive through the step."""
    model = every_kind("fast")
    model.forward(np.random.default_rng(1).standard_normal((4, 1, 8, 8)))
    for layer in model.modules():
        assert kept_arrays(layer) <= set(layer.cache_names), \
            f"{type(layer).__name__} keeps {kept_arrays(layer) - set(layer.cache_names)} " \
            f"without naming it in cache_names"


def step_peak(model, x, y, release):
    """The traced peak bytes of one training step (as benchmarks/bench.py measures)."""
    loss, opt = SoftmaxCrossEntropy(check=False), Adam(model.parameters(), lr=1e-3)
    for traced in (False, True):           # the first step allocates Adam's moments
        if traced:
            tracemalloc.start()
        opt.zero_grad()
        loss.forward(model.forward(x), y)
        model.backward(loss.backward(), input_grad=False, release=release)
        opt.step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_a_step_that_releases_as_it_goes_peaks_lower():
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    kept = step_peak(models.lenet5(), x, y, release=False)
    released = step_peak(models.lenet5(), x, y, release=True)
    assert released < 0.95 * kept, (released, kept)


def test_the_trainer_releases_each_step(monkeypatch):
    """The trainer's step asks for it (what the peak above depends on)."""
    from minicnn.training.trainer import Trainer
    asked = []
    original = Sequential.backward

    def spy(self, grad_out, input_grad=True, release=False):
        asked.append(release)
        return original(self, grad_out, input_grad, release)
    monkeypatch.setattr(Sequential, "backward", spy)
    trainer = Trainer.__new__(Trainer)               # only what _train_step uses
    trainer.model, trainer.loss_fn = models.tiny_cnn(), SoftmaxCrossEntropy(check=False)
    trainer.optimizer, trainer.schedule = Adam(trainer.model.parameters()), None
    rng = np.random.default_rng(0)
    trainer._train_step(rng.random((4, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 4))
    assert asked == [True]
