"""Attribution: saliency, deconvnet, guided backprop, Grad-CAM, SmoothGrad,
integrated gradients and occlusion, checked against finite differences, hand
computations, the rule formulas, PyTorch and receptive fields."""
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential, Softmax
from minicnn.backend import as_numpy
from minicnn.gradcheck import numerical_gradient
from minicnn.viz.attribution import (deconvnet, guided_backprop, integrated_gradients, saliency,
                                     smoothgrad)
from minicnn.viz.cam import grad_cam, guided_grad_cam, upsample_bilinear
from minicnn.viz.occlusion import occlusion
from minicnn.viz.receptive import receptive_box
from minicnn.viz.rules import RELU_RULES
from minicnn.viz.targets import Unit, resolve_target, target_value


def small_net(seed=0, channels=2, pool=True, size=10):
    """conv 3x3 -> ReLU -> [max pool 2] -> conv 3x3 -> ReLU -> flatten -> dense 6 -> ReLU -> dense 3
    on (channels, size, size) images, float64."""
    rng = np.random.default_rng(seed)
    hw = (size - 2) // 2 - 2 if pool else size - 4
    layers = [Conv2D(channels, 3, 3, seed=rng), ReLU()] + ([MaxPool2D(2)] if pool else []) + \
        [Conv2D(3, 4, 3, seed=rng), ReLU(), Flatten(), Dense(4 * hw * hw, 6, seed=rng), ReLU(),
         Dense(6, 3, seed=rng)]
    return Sequential(layers, input_shape=(channels, size, size)).astype("float64")


def put(backend, device, model, x):
    return model.to(device), backend.asarray(x)


def assert_off_kinks(model, x, margin=1e-4):
    """Finite differences need every ReLU input away from 0 and no near-ties in pooling
    (a window of zeros from switched-off ReLUs is fine: nudging them changes nothing)."""
    out = x
    for layer in model.layers:
        if isinstance(layer, ReLU):
            assert float(abs(as_numpy(out)).min()) > margin
        if isinstance(layer, MaxPool2D):
            o = as_numpy(out)
            n, c, h, w = o.shape
            win = o[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
            win = np.sort(win.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4), -1)
            gap = (win[..., -1] - win[..., -2])[win[..., -1] > 0]
            assert gap.min() > margin
        out = layer.forward(out)


def test_saliency_equals_finite_differences(backend, device):
    model, x = put(backend, device, small_net(channels=1, size=8),
                   np.random.default_rng(1).standard_normal((2, 1, 8, 8)))
    classes = [0, 2]
    assert_off_kinks(model, x)
    analytic = as_numpy(saliency(model, x, classes))
    model.eval()
    numeric = numerical_gradient(lambda: model.forward(x)[[0, 1], classes].sum(), x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)
    assert np.abs(analytic).max() > 1e-3


def test_single_relu_rules_relate(backend):
    rng = np.random.default_rng(2)
    x, g = (backend.asarray(rng.standard_normal((3, 2, 4, 4))) for _ in range(2))
    relu = ReLU()
    relu.forward(x)
    out = {}
    for rule in ("gradient", "deconvnet", "guided"):
        out[rule] = as_numpy(RELU_RULES[rule]().backward(relu, x, g))
    xn, gn = as_numpy(x), as_numpy(g)
    np.testing.assert_array_equal(out["guided"], out["gradient"] * (gn > 0))
    np.testing.assert_array_equal(out["guided"], out["deconvnet"] * (xn > 0))
    np.testing.assert_array_equal(out["deconvnet"], np.maximum(gn, 0))


def test_rules_relate_at_every_relu_of_a_network(backend, device):
    """Record the gradient arriving at each ReLU during guided backprop and apply all three rules."""
    model, x = put(backend, device, small_net(3),
                   np.random.default_rng(3).standard_normal((2, 2, 10, 10)))
    model.eval()
    out = model.forward(x)
    grad = backend.zeros_like(out)
    grad[:, 1] = 1.0
    checked = 0
    for layer in reversed(model.layers):
        if isinstance(layer, ReLU):
            got = {}
            for rule in ("gradient", "deconvnet", "guided"):
                got[rule] = as_numpy(RELU_RULES[rule]().backward(layer, None, grad))
            g, active = as_numpy(grad), as_numpy(layer.active)
            np.testing.assert_array_equal(got["guided"], got["gradient"] * (g > 0))
            np.testing.assert_array_equal(got["guided"], got["deconvnet"] * active)
            checked += 1
            grad = RELU_RULES["guided"]().backward(layer, None, grad)
        else:
            grad = layer.backward(grad)
    assert checked == 3                                  # conv, conv and dense ReLUs


def test_rules_coincide_when_every_mask_is_on(backend, device):
    """Positive weights, biases and inputs: every ReLU is on and every gradient >= 0."""
    model = small_net(4)
    for p in model.parameters():
        p.value = np.abs(p.value) + 0.01
    model, x = put(backend, device, model,
                   np.random.default_rng(4).uniform(0.1, 1.0, (2, 2, 10, 10)))
    maps = [as_numpy(f(model, x, [0, 2])) for f in (saliency, guided_backprop, deconvnet)]
    assert maps[0].min() >= 0 and maps[0].max() > 0
    np.testing.assert_allclose(maps[1], maps[0], rtol=1e-12)
    np.testing.assert_allclose(maps[2], maps[0], rtol=1e-12)


def test_deconvnet_without_pooling_ignores_the_input(backend, device):
    model, x = put(backend, device, small_net(5, pool=False),
                   np.random.default_rng(5).standard_normal((2, 2, 10, 10)))
    y = backend.asarray(np.random.default_rng(6).standard_normal((2, 2, 10, 10)))
    np.testing.assert_array_equal(as_numpy(deconvnet(model, x, 1)), as_numpy(deconvnet(model, y, 1)))
    assert not np.allclose(as_numpy(saliency(model, x, 1)), as_numpy(saliency(model, y, 1)))


def hand_net():
    """x (1, 3, 3) -> conv 2x2 K=[[1, 0], [0, -1]] -> max pool 2 -> ReLU -> dense [[2], [-1]].

    The ReLU sits after the pool so that an all-negative window still has a
    unique maximum (after a ReLU it would be a tie of zeros).
    """
    conv, dense = Conv2D(1, 1, 2), Dense(1, 2)
    conv.weight.value = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    conv.bias.value = np.zeros(1)
    dense.weight.value = np.array([[2.0], [-1.0]])
    dense.bias.value = np.zeros(2)
    return Sequential([conv, MaxPool2D(2), ReLU(), Flatten(), dense])


def test_hand_worked_network(backend, device):
    # conv out = x[i, j] - x[i+1, j+1].
    # Image A: [[2, 0], [0, 1]] -> max 2 at (0, 0), ReLU on.  Logits (4, -2).
    # Image B: [[-2, -3], [-3, -1]] -> max -1 at (1, 1), ReLU off.  Logits (0, 0).
    a = [[4, 1, 0], [1, 2, 1], [0, 1, 1]]
    b = [[0, 0, 1], [0, 2, 3], [0, 3, 3]]
    model, x = put(backend, device, hand_net(), np.array([[a], [b]], dtype=np.float64))
    np.testing.assert_array_equal(as_numpy(model.forward(x)), [[4, -2], [0, 0]])
    zero = np.zeros((3, 3))
    # g at the pool = the dense weight (2 or -1); the pool switch sends it to one
    # conv output, and conv backward spreads g * K over that output's 2x2 window.
    k_at_a = np.array([[1, 0, 0], [0, -1, 0], [0, 0, 0]])   # K placed at (0, 0)
    k_at_b = np.array([[0, 0, 0], [0, 1, 0], [0, 0, -1]])   # K placed at (1, 1)
    expected = {
        # class 0 (g = 2): A passes everywhere; B: only the deconvnet ignores the off ReLU
        (0, "saliency"): [2 * k_at_a, zero], (0, "guided"): [2 * k_at_a, zero],
        (0, "deconvnet"): [2 * k_at_a, 2 * k_at_b],
        # class 1 (g = -1): only the true gradient lets a negative signal through
        (1, "saliency"): [-k_at_a, zero], (1, "guided"): [zero, zero],
        (1, "deconvnet"): [zero, zero],
    }
    methods = {"saliency": saliency, "guided": guided_backprop, "deconvnet": deconvnet}
    for (cls, name), maps in expected.items():
        got = as_numpy(methods[name](model, x, cls))
        np.testing.assert_array_equal(got, np.array(maps)[:, None], err_msg=f"{name}, class {cls}")


def torch_copy(model):
    """``(torch, a torch.nn.Sequential copy of model)``; skips without torch."""
    torch = pytest.importorskip("torch")
    from torch_helpers import torch_copy as copy
    return torch, copy(model)


def test_agrees_with_pytorch_saliency_and_guided_backprop(backend, device):
    model = small_net(7)
    torch, net = torch_copy(model)
    x_np = np.random.default_rng(7).standard_normal((3, 2, 10, 10))
    classes = [2, 0, 1]

    def torch_grad():
        xt = torch.tensor(x_np, requires_grad=True)
        net(xt)[torch.arange(3), torch.tensor(classes)].sum().backward()
        return xt.grad.numpy()

    expected_saliency = torch_grad()
    # guided backprop as usually written in PyTorch: clamp each ReLU's input gradient at 0
    hooks = [m.register_full_backward_hook(lambda m, gin, gout: (gin[0].clamp(min=0),))
             for m in net if isinstance(m, torch.nn.ReLU)]
    expected_guided = torch_grad()
    for h in hooks:
        h.remove()
    model, x = put(backend, device, model, x_np)
    np.testing.assert_allclose(as_numpy(saliency(model, x, classes)), expected_saliency,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(as_numpy(guided_backprop(model, x, classes)), expected_guided,
                               rtol=1e-10, atol=1e-12)
    assert not np.allclose(expected_guided, expected_saliency)


def test_bilinear_upsampling_by_hand(backend):
    # output o samples input coordinate (o + 0.5) * 2 / 4 - 0.5 = -0.25 (clamped), 0.25, 0.75, 1.25
    up = upsample_bilinear(backend.asarray([[[[0.0, 1.0]]]]), (1, 4))
    np.testing.assert_allclose(as_numpy(up), [[[[0.0, 0.25, 0.75, 1.0]]]])
    torch = pytest.importorskip("torch")
    maps = np.random.default_rng(8).standard_normal((2, 3, 5, 4))
    expected = torch.nn.functional.interpolate(torch.from_numpy(maps), size=(11, 7),
                                               mode="bilinear", align_corners=False)
    np.testing.assert_allclose(as_numpy(upsample_bilinear(backend.asarray(maps), (11, 7))),
                               expected.numpy(), rtol=1e-12, atol=1e-12)


def test_grad_cam_from_the_definition(backend, device):
    model = small_net(9)
    model, x = put(backend, device, model, np.random.default_rng(9).standard_normal((2, 2, 10, 10)))
    layer, classes = 4, [1, 2]                          # the ReLU after the second conv
    model.eval()
    act = model[:layer + 1].forward(x).copy()           # A (N, 4, 3, 3)
    tail = model[layer + 1:]                            # flatten, dense, ReLU, dense
    rows = np.arange(2)
    # d logit / d A by finite differences through the tail only
    d_act = numerical_gradient(lambda: as_numpy(tail.forward(act))[rows, classes].sum(), act)
    alpha = d_act.mean(axis=(2, 3), keepdims=True)
    cam = np.maximum((alpha * as_numpy(act)).sum(axis=1, keepdims=True), 0)
    expected = as_numpy(upsample_bilinear(cam, (10, 10)))
    got = as_numpy(grad_cam(model, x, classes, layer))
    assert got.shape == (2, 1, 10, 10) and expected.max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    guided = as_numpy(guided_backprop(model, x, classes))
    np.testing.assert_allclose(as_numpy(guided_grad_cam(model, x, classes, layer)), guided * got)


def test_integrated_gradients_completeness(backend, device):
    model, x = put(backend, device, small_net(10),
                   np.random.default_rng(10).standard_normal((2, 2, 10, 10)))
    attr, delta = integrated_gradients(model, x, [0, 1], steps=50, return_delta=True)
    change = as_numpy(target_value(model, x, [0, 1]) - target_value(model, 0 * x, [0, 1]))
    assert attr.shape == x.shape
    np.testing.assert_allclose(as_numpy(attr).reshape(2, -1).sum(1), change,
                               rtol=0.02, atol=0.02 * np.abs(change).max())
    np.testing.assert_allclose(as_numpy(delta), as_numpy(attr).reshape(2, -1).sum(1) - change)


def test_integrated_gradients_and_smoothgrad_of_a_linear_model(backend, device):
    """Without ReLUs the gradient is constant: IG = (x - x') * grad, SmoothGrad = grad."""
    rng = np.random.default_rng(11)
    model = Sequential([Conv2D(1, 2, 3, seed=rng), Flatten(), Dense(2 * 4 * 4, 3, seed=rng)])
    model, x = put(backend, device, model.astype("float64"), rng.standard_normal((2, 1, 6, 6)))
    base = backend.asarray(rng.standard_normal((2, 1, 6, 6)))
    grad = as_numpy(saliency(model, x, 2))
    np.testing.assert_allclose(as_numpy(integrated_gradients(model, x, 2, base, steps=3)),
                               as_numpy(x - base) * grad, rtol=1e-10)
    np.testing.assert_allclose(as_numpy(smoothgrad(model, x, 2, n_samples=3)), grad, rtol=1e-10)


def test_smoothgrad_seeded_and_without_noise(backend, device):
    model, x = put(backend, device, small_net(12),
                   np.random.default_rng(12).standard_normal((2, 2, 10, 10)))
    np.testing.assert_allclose(as_numpy(smoothgrad(model, x, 1, n_samples=2, noise_level=0.0)),
                               as_numpy(saliency(model, x, 1)), rtol=1e-12)
    a, b, c = (as_numpy(smoothgrad(model, x, 1, n_samples=3, seed=s)) for s in (0, 0, 1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_unit_saliency_stays_in_its_receptive_field(backend, device):
    # conv 3x3 -> pool 2 -> conv 3x3: conv2 unit (y, x) sees pool rows y..y+2,
    # i.e. conv1 rows 2y..2y+5, i.e. input rows 2y..2y+7 (and the same for columns).
    model, x = put(backend, device, small_net(13),
                   np.random.default_rng(13).standard_normal((2, 2, 10, 10)))
    unit = Unit(layer=3, channel=1)                     # conv2 (pre-ReLU), strongest position
    where = resolve_target(model, x, unit).where
    assert (as_numpy(target_value(model, x, unit)) != 0).all()
    sal = as_numpy(saliency(model, x, unit))
    for n in range(2):
        y, x0 = int(where[2][n]), int(where[3][n])
        inside = np.zeros((10, 10), bool)
        inside[2 * y:2 * y + 8, 2 * x0:2 * x0 + 8] = True
        box = receptive_box(model, 3, y, x0)
        assert (box.top, box.left, box.bottom, box.right) == \
            (2 * y, 2 * x0, min(2 * y + 8, 10), min(2 * x0 + 8, 10))
        assert np.abs(sal[n][:, ~inside]).max() == 0
        assert np.abs(sal[n][:, inside]).max() > 0


def test_batched_equals_one_by_one_and_fixed_positions(backend, device):
    model, x = put(backend, device, small_net(14),
                   np.random.default_rng(14).standard_normal((3, 2, 10, 10)))
    for target in (Unit(1, 2), Unit(7, 3), None):
        together = as_numpy(guided_backprop(model, x, target))
        alone = np.concatenate([as_numpy(guided_backprop(model, x[i:i + 1], target))
                                for i in range(3)])
        np.testing.assert_allclose(together, alone, rtol=1e-12)
    got = as_numpy(saliency(model, x, Unit(1, 0, position=(2, 5))))
    assert np.abs(got[:, :, 5:, :]).max() == 0        # conv1 unit at row 2 sees rows 2..4 only


def test_eval_mode_and_softmax_head(backend, device):
    rng = np.random.default_rng(15)
    model = small_net(15)
    with_dropout = Sequential(model.layers[:-1] + [Dropout(0.5, seed=rng), model.layers[-1]])
    with_softmax = Sequential(model.layers + [Softmax()])
    for m in (model, with_dropout, with_softmax):
        m.to(device)
    x = backend.asarray(rng.standard_normal((2, 2, 10, 10)))
    with_dropout.train()
    expected = as_numpy(saliency(model, x, [0, 1]))
    np.testing.assert_array_equal(as_numpy(saliency(with_dropout, x, [0, 1])), expected)
    assert with_dropout.training and with_dropout.layers[-2].training
    assert all(float(abs(p.grad).max()) == 0 for p in model.parameters())
    # a model ending in Softmax is explained by its logit, not by the saturated probability
    np.testing.assert_array_equal(as_numpy(saliency(with_softmax, x, [0, 1])), expected)
    np.testing.assert_array_equal(as_numpy(saliency(model, x, None)),
                                  as_numpy(saliency(model, x, model.forward(x).argmax(1))))
    full = as_numpy(saliency(model, x, 1))
    reduced = as_numpy(saliency(model, x, 1, abs=True, reduce_channels="max"))
    np.testing.assert_array_equal(reduced, np.abs(full).max(axis=1, keepdims=True))
    assert full.min() < 0


def occlusion_net(rng):
    """conv 3x3 on (1, 8, 8) -> flatten -> dense 3, with the dense weights of conv output
    columns >= 3 set to 0: input columns >= 5 cannot change anything."""
    conv, dense = Conv2D(1, 2, 3, seed=rng), Dense(2 * 6 * 6, 3, seed=rng)
    w = dense.weight.value.reshape(3, 2, 6, 6)
    w[..., 3:] = 0
    return Sequential([conv, ReLU(), Flatten(), dense]).astype("float64")


def test_occlusion_of_an_ignored_region_changes_nothing(backend, device):
    rng = np.random.default_rng(16)
    model, x = put(backend, device, occlusion_net(rng), rng.standard_normal((2, 1, 8, 8)))
    probs = as_numpy(Softmax().forward(model.forward(x)))[np.arange(2), [0, 2]]
    grid = as_numpy(occlusion(model, x, [0, 2], size=3, stride=1, grid=True))
    assert grid.shape == (2, 6, 6)
    np.testing.assert_allclose(grid[:, :, 5], np.repeat(probs[:, None], 6, 1), rtol=1e-12)
    assert np.abs(grid[:, :, :3] - probs[:, None, None]).max() > 1e-3
    pixels = as_numpy(occlusion(model, x, [0, 2], size=3, stride=1, fill=0.5, batch_size=5))
    assert pixels.shape == (2, 1, 8, 8)
    np.testing.assert_allclose(pixels[:, 0, :, 7], np.repeat(probs[:, None], 8, 1), rtol=1e-12)
    # a conv unit whose field (input rows 2..4, columns 0..2) the occluder misses keeps its
    # clean value; placements at columns 4..6 (grid column 2) miss it, those at 0..2 do not
    unit = Unit(0, 0, position=(2, 0))
    _, unit_grid = occlusion(model, x, [0, 2], 3, 2, unit=unit, grid=True, batch_size=1)
    clean, unit_grid = as_numpy(target_value(model, x, unit)), as_numpy(unit_grid)
    assert unit_grid.shape == (2, 3, 3)
    np.testing.assert_allclose(unit_grid[:, :, 2], np.repeat(clean[:, None], 3, 1), rtol=1e-12)
    assert np.abs(unit_grid[:, 1, 0] - clean).min() > 1e-6


@pytest.mark.parametrize("method", ["trapezoid", "gausslegendre"])
def test_integrated_gradients_keeps_float32_points(method):
    """The path points stay in the input's dtype: NumPy 2 turns float32 * np.float64 into
    float64, which once ran every pass of a float32 model in float64 (twice the time)."""
    from minicnn import models
    model = models.tiny_cnn(seed=0)
    seen, forward = [], model.layers[0].forward
    model.layers[0].forward = lambda x: (seen.append(x.dtype), forward(x))[1]
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    attr = integrated_gradients(model, x, 3, steps=4, method=method)
    smooth = smoothgrad(model, x, 3, n_samples=3)
    assert attr.dtype == smooth.dtype == np.float32
    assert set(seen) == {np.dtype(np.float32)}


@pytest.mark.parametrize("target, says", [
    (12, "target class 12 is out of range: the model has 10 outputs (classes 0 to 9)"),
    (-1, "target class -1 is out of range: the model has 10 outputs (classes 0 to 9)"),
    ([1, 2, 3], "target gives 3 classes for 2 images: give one class, or one per image"),
    (2.5, "target must be a class index (an int), one per image, None or a Unit, got 2.5"),
    ("3", "target must be a class index (an int), one per image, None or a Unit, got '3'"),
])
def test_a_class_target_outside_the_model_is_one_line(target, says):
    """Found by trying: class 12 of a 10-class model was NumPy's IndexError from deep in
    the backward pass, and class -1 silently explained the last class."""
    from minicnn import models
    model = models.tiny_cnn(seed=0)
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError) as info:
        saliency(model, x, target)
    assert str(info.value) == says


@pytest.mark.parametrize("unit, says", [
    ((0, 4), "Unit(layer=0, channel=4): layer 0 has 4 channels (0 to 3)"),
    ((0, 1, (24, 0)), "Unit(layer=0, channel=1, position=(24, 0)): layer 0's output is 24x24"),
    ((7, 16), "Unit(layer=7, channel=16): layer 7 has 16 channels (0 to 15)"),
])
def test_a_unit_target_outside_its_layer_is_one_line(unit, says):
    from minicnn import models
    from minicnn.viz.targets import Unit
    model = models.tiny_cnn(seed=0)
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError) as info:
        saliency(model, x, Unit(*unit))
    assert says in str(info.value)


@pytest.mark.parametrize("call, says", [
    (lambda m, x: integrated_gradients(m, x, 0, steps=0), "integrated_gradients steps must be >= 1, got 0"),
    (lambda m, x: integrated_gradients(m, x, 0, steps=2.5), "integrated_gradients steps must be an int, got 2.5"),
    (lambda m, x: smoothgrad(m, x, 0, n_samples=0), "smoothgrad n_samples must be >= 1, got 0"),
    (lambda m, x: smoothgrad(m, x, 0, noise_level=float("nan")),
     "smoothgrad noise_level must be a finite number >= 0, got nan"),
    (lambda m, x: smoothgrad(m, x, 0, noise_level=-1), "smoothgrad noise_level must be a finite number >= 0, got -1"),
    (lambda m, x: occlusion(m, x, 0, size=0, stride=1), "occlusion size must be >= 1, got 0"),
    (lambda m, x: occlusion(m, x, 0, size=4, stride=0), "occlusion stride must be >= 1, got 0"),
])
def test_bad_method_settings_are_one_line(call, says):
    """Found by trying: ``steps=0`` was a ZeroDivisionError, ``n_samples=0`` an IndexError,
    ``stride=0`` "range() arg 3 must not be zero"; ``size=0`` and a NaN or negative noise
    level gave maps."""
    from minicnn import models
    model = models.tiny_cnn(seed=0)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError) as info:
        call(model, x)
    assert str(info.value) == says


@pytest.mark.parametrize("layer, says", [
    (1.5, "layer must be a layer index (an int) or None, got 1.5"),
    ("conv", "layer must be a layer index (an int) or None, got 'conv'"),
])
def test_a_layer_that_is_not_an_index_is_one_line(layer, says):
    from minicnn import models
    model = models.tiny_cnn(seed=0)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError) as info:
        grad_cam(model, x, 0, layer=layer)
    assert str(info.value) == says


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift", "relevance_by_layer"])
def test_a_baseline_of_another_shape_is_one_line(method):
    """Found by trying: a baseline for two images given with one image was an IndexError
    in integrated gradients, and in DeepLIFT a message blaming the first Conv2D."""
    from minicnn import models, viz
    model = models.tiny_cnn(seed=0)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    call = {"integrated_gradients": lambda b: viz.integrated_gradients(model, x, 0, baseline=b),
            "deeplift": lambda b: viz.deeplift(model, x, 0, baseline=b),
            "relevance_by_layer": lambda b: viz.relevance_by_layer(model, x, 0, "deeplift",
                                                                   baseline=b)}[method]
    for shape in [(2, 1, 28, 28), (5,)]:
        with pytest.raises(ValueError) as info:
            call(np.zeros(shape))
        assert str(info.value) == (f"{method}: the baseline has shape {shape}, which does not "
                                   f"broadcast to x's shape (1, 1, 28, 28)")
    call(np.zeros((1, 28, 28)))                       # one image for the batch: fine


def test_an_image_without_its_batch_axis_is_refused_as_the_model_says():
    """Since output_shape checks shapes, a single image ``x[0]`` was refused by the first
    Conv2D's output_shape; the model's own line says what it expects and how to fix it."""
    from minicnn import models
    model = models.tiny_cnn(seed=0)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError) as info:
        saliency(model, x[0], 0)
    assert str(info.value).startswith("Sequential expects input of shape (N, 1, 28, 28)")


def test_a_receptive_box_of_a_layer_or_position_outside_the_model_is_one_line():
    """Found by trying: ``receptive_box(model, 99, 0, 0)`` on a 10-layer model wrapped 99
    round to layer 9 and answered."""
    from minicnn import models
    model = models.tiny_cnn(seed=0)
    with pytest.raises(IndexError, match="layer 99 is out of range for a model with 10 layers"):
        receptive_box(model, 99, 0, 0)
    with pytest.raises(ValueError, match=r"position \(24, 0\) is outside layer 0's 24x24 output"):
        receptive_box(model, 0, 24, 0)
