"""Activation maximization, its image operations, and DeepDream."""
import numpy as np
import pytest

from minicnn import models
from minicnn.backend import as_numpy
from minicnn.viz.maximize import (deepdream, gaussian_blur, laplacian_normalize, laplacian_pyramid,
                                  maximize, reconstruct, resize)


def test_blur_is_a_normalized_separable_gaussian(backend, rng):
    x = backend.asarray(rng.standard_normal((2, 3, 11, 9)))
    y = gaussian_blur(x, 1.0)
    assert y.shape == x.shape
    const = backend.full((1, 1, 7, 7), 3.0)
    np.testing.assert_allclose(as_numpy(gaussian_blur(const, 2.0)), 3.0)   # weights sum to 1
    impulse = backend.zeros((13, 13))
    impulse[6, 6] = 1.0
    blurred = as_numpy(gaussian_blur(impulse, 1.5))
    t = np.arange(-5, 6)                               # radius ceil(3 * 1.5) = 5
    k = np.exp(-t ** 2 / (2 * 1.5 ** 2))
    np.testing.assert_allclose(blurred[1:12, 1:12], np.outer(k, k) / k.sum() ** 2, atol=1e-12)
    assert as_numpy(y).std() < as_numpy(x).std()       # smoothing removes variance


def test_resize(backend, rng):
    x = backend.asarray(rng.standard_normal((1, 2, 6, 8)))
    np.testing.assert_allclose(as_numpy(resize(x, (6, 8))), as_numpy(x), atol=1e-12)
    up = as_numpy(resize(x, (12, 16)))
    assert up.shape == (1, 2, 12, 16)
    np.testing.assert_allclose(up.mean(), as_numpy(x).mean(), atol=0.05)


@pytest.mark.parametrize("hw", [(28, 28), (13, 7), (5, 4)])
def test_laplacian_pyramid_reconstructs(backend, rng, hw):
    g = backend.asarray(rng.standard_normal((1, 2) + hw))
    bands = laplacian_pyramid(g, levels=4)
    assert bands[0].shape == g.shape and len(bands) <= 4
    assert bands[-1].shape[-2:] == tuple((s + 2 ** (len(bands) - 1) - 1) // 2 ** (len(bands) - 1)
                                         for s in hw)
    np.testing.assert_allclose(as_numpy(reconstruct(bands)), as_numpy(g), atol=1e-12)
    normalized = as_numpy(laplacian_normalize(g))
    assert normalized.shape == g.shape and np.isfinite(normalized).all()


def test_laplacian_normalize_balances_frequencies(backend):
    # a strong smooth wave plus a weak checkerboard: normalizing each band by
    # its std lifts the checkerboard's share several times (the smooth wave
    # leaks a little into the fine band, so the balance is not perfect)
    yy, xx = np.mgrid[0:16, 0:16]
    checker = (-1.0) ** (yy + xx)
    g = 10.0 * np.cos(np.pi * yy / 15) + 0.01 * checker
    out = as_numpy(laplacian_normalize(backend.asarray(g[None, None]), levels=3))[0, 0]
    share = lambda a: (a * checker).mean() / a.std()
    assert share(out) > 4 * share(g) > 0


def _float64_model(device):
    return models.tiny_cnn(seed=3).astype("float64").to(device)


@pytest.mark.parametrize("normalize", ["std", "laplacian"])
def test_maximize_class_logit_rises(device, normalize):
    model = _float64_model(device)
    result = maximize(model, channel=4, steps=40, lr=0.1, decay=0.01, blur_every=4,
                      norm_pct=10, contrib_pct=10, jitter=0, normalize=normalize,
                      value_range=(-0.5, 2.8), seed=0)
    assert result.layer == len(model) - 1 and result.objective.shape == (40,)
    assert result.objective[-5:].mean() > result.objective[:5].mean() + 3.0
    assert result.image.shape == (1, 28, 28) and np.isfinite(result.image).all()
    assert result.image.min() >= -0.5 and result.image.max() <= 2.8


def test_maximize_unit_and_channel_mean(device):
    model = _float64_model(device)
    unit = maximize(model, channel=2, layer=3, position=(4, 4), steps=25, seed=1)
    mean = maximize(model, channel=2, layer=3, position="mean", steps=25, seed=1)
    centre = maximize(model, channel=2, layer=3, steps=25, seed=1)
    np.testing.assert_array_equal(centre.image, unit.image)       # None: centre unit (4, 4)
    for r in (unit, mean):
        assert r.objective[-1] > r.objective[0] and np.isfinite(r.image).all()
    # the unit at (4, 4) of conv2 (8x8 output) only sees input rows/cols 8..19:
    # ascent on it leaves pixels outside that field at (decayed, blurred) noise
    inside = np.abs(unit.image[0, 8:20, 8:20]).mean()
    outside = np.abs(unit.image[0, :6, :]).mean()
    assert inside > 3 * outside
    same = maximize(model, channel=2, layer=3, position="mean", steps=25, seed=1)  # repeats
    np.testing.assert_array_equal(same.image, mean.image)


def test_maximize_leaves_model_untouched(device):
    model = _float64_model(device).train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    maximize(model, channel=0, steps=3)
    assert model.training and all(m.training for m in model.modules())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert not any(as_numpy(p.grad).any() for p in model.parameters())


@pytest.mark.parametrize("objective", ["l2", "mean"])
def test_deepdream_amplifies_layer(device, rng, objective):
    model = _float64_model(device)
    image = rng.uniform(-0.4, 2.8, (1, 28, 28))
    dream = deepdream(model, image, layer=2, steps=6, octaves=2, lr=0.05, objective=objective,
                      value_range=(-0.5, 2.8))
    assert dream.image.shape == image.shape and np.isfinite(dream.image).all()
    assert dream.objective.shape == (12,)
    assert dream.objective[11] > dream.objective[6]       # rises within the full-size octave
    assert dream.image.min() >= -0.5 and dream.image.max() <= 2.8
    assert not np.allclose(dream.image, image)
