"""Every attribution method against Captum 0.9.0, the widely used PyTorch attribution library.

One small network (conv 3x3 pad 1 -> ReLU -> max pool 2 -> conv 3x3 -> ReLU -> flatten ->
dense -> ReLU -> dense, on 2 x 12 x 12 images; random weights and biases from a fixed seed)
runs in minicnn and, with the same weights, as a float64 ``torch.nn.Sequential`` for Captum.
Where the arithmetic is the same, the maps agree to rounding (``TIGHT``): saliency (signed
and ``abs``), guided backprop, deconvnet, their unit targets (Captum's ``Neuron*`` classes),
Grad-CAM at every layer with a 4-D output, guided Grad-CAM and integrated gradients.

Where the conventions differ, the exact relation between the two is checked:

- integrated gradients: minicnn's trapezoid rule on ``steps`` intervals is the mean of
  Captum's ``riemann_left`` and ``riemann_right`` with ``n_steps=steps``. Captum's
  ``riemann_trapezoid`` puts ``n`` points ``1/(n-1)`` apart but weights them by ``1/n``
  (ends halved), weights that sum to ``(n-1)/n``: with ``n = steps + 1`` it is minicnn's
  result times ``steps / (steps + 1)``. Captum casts the weights to float32, so ``n`` is a
  power of two here (``1/n`` exact).
- Grad-CAM: minicnn upsamples bilinearly (``align_corners=False``); Captum's ``LayerGradCam``
  stays at the layer's resolution and ``GuidedGradCam`` upsamples with "nearest" unless told
  "bilinear". Compared at the layer's resolution and after bilinear upsampling.
- occlusion: minicnn gives the target's probability with the square in place, averaged over
  the placements covering each pixel; Captum the drop ``p(x) - p(occluded)``, averaged the
  same way, in every channel: ``captum = p(x) - minicnn``. Captum's ``Occlusion`` casts to
  float32 before dividing by the counts (hence ``rtol=1e-6`` there); for non-overlapping
  squares ``FeatureAblation`` with one feature per square stays in float64 and checks the
  placement grid to rounding. Sizes and strides are chosen so that the squares tile the
  image (Captum adds clipped squares at the edges otherwise).
- SmoothGrad: Captum's ``NoiseTunnel`` draws from torch's RNG and takes an absolute standard
  deviation, so the definition is checked instead: with the noise minicnn documents
  (``sigma = noise_level * (max - min)`` per image), the map is the mean of minicnn's
  saliency and of torch autograd gradients over the noisy copies.
"""
import functools

import numpy as np
import pytest

from minicnn import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from minicnn.backend import as_numpy
from minicnn.viz import (Unit, deconvnet, grad_cam, guided_backprop, guided_grad_cam,
                         integrated_gradients, occlusion, saliency, smoothgrad)

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
from captum.attr import (  # noqa: E402
    Deconvolution,
    FeatureAblation,
    GuidedBackprop,
    GuidedGradCam,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NeuronDeconvolution,
    NeuronGradient,
    NeuronGuidedBackprop,
    Occlusion,
    Saliency,
)
from torch_helpers import t, torch_copy  # noqa: E402  (needs torch)

# Captum warns each time it hooks the ReLUs (guided backprop, deconvnet and their variants)
# and each time it turns on requires_grad of an input tensor.
pytestmark = [pytest.mark.filterwarnings("ignore:Setting backward hooks:UserWarning"),
              pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already:UserWarning")]

TIGHT = dict(rtol=1e-10, atol=1e-12)
CLASSES = [2, 0, 1]


def setup(backend, device, seed=0):
    """``(model, net, x, xt)``: the minicnn model on ``device``, its torch copy, and the
    images ``(3, 2, 12, 12)`` on ``device`` and as a float64 tensor."""
    rng = np.random.default_rng(seed)
    model = Sequential([Conv2D(2, 4, 3, padding=1, seed=rng), ReLU(), MaxPool2D(2),
                        Conv2D(4, 6, 3, seed=rng), ReLU(), Flatten(), Dense(96, 10, seed=rng),
                        ReLU(), Dense(10, 3, seed=rng)], input_shape=(2, 12, 12))
    model.astype("float64")
    for name, p in model.named_parameters():
        if name.endswith("bias"):                   # nonzero biases, so that some units are off
            p.value = 0.1 * rng.standard_normal(p.value.shape)
    x = rng.standard_normal((3, 2, 12, 12))
    return model.to(device), torch_copy(model), backend.asarray(x), torch.from_numpy(x)


def classes_for(net, xt, target):
    """Captum's target: the given classes, or for ``None`` the predicted ones, ``(N,)``."""
    with torch.no_grad():
        return net(xt).argmax(1) if target is None else torch.tensor(target)


def close(ours, theirs, **tolerance):
    """``ours`` (NumPy/CuPy) equals ``theirs`` (a tensor) within ``tolerance`` (default TIGHT)."""
    np.testing.assert_allclose(as_numpy(ours), theirs.detach().numpy(), **(tolerance or TIGHT))


@pytest.mark.parametrize("ours, theirs, kwargs", [
    (saliency, Saliency, dict(abs=False)),
    (functools.partial(saliency, abs=True), Saliency, dict(abs=True)),
    (guided_backprop, GuidedBackprop, {}),
    (deconvnet, Deconvolution, {}),
], ids=["saliency", "saliency-abs", "guided-backprop", "deconvnet"])
@pytest.mark.parametrize("target", [CLASSES, None], ids=["classes", "predicted"])
def test_class_maps_match_captum(backend, device, ours, theirs, kwargs, target):
    model, net, x, xt = setup(backend, device)
    expected = theirs(net).attribute(xt, target=classes_for(net, xt, target), **kwargs)
    close(ours(model, x, target), expected)
    assert float(expected.detach().abs().max()) > 0.01


def strongest(channel):
    """Captum neuron selector: each image's largest activation in ``channel``, ``(N,)``."""
    return lambda out: out[:, channel].flatten(1).max(dim=1).values


@pytest.mark.parametrize("unit, selector", [
    (Unit(0, 1, (3, 4)), (1, 3, 4)),                # conv1, before its ReLU
    (Unit(1, 2, (5, 5)), (2, 5, 5)),                # after it
    (Unit(3, 5, (2, 2)), (5, 2, 2)),                # conv2, behind the max pooling
    (Unit(4, 3), strongest(3)),                     # its ReLU, strongest position per image
    (Unit(7, 4), 4),                                # the dense layer's ReLU
], ids=["conv1", "relu1", "conv2", "relu2-strongest", "dense-relu"])
@pytest.mark.parametrize("ours, theirs", [
    (saliency, NeuronGradient), (guided_backprop, NeuronGuidedBackprop),
    (deconvnet, NeuronDeconvolution),
], ids=["saliency", "guided-backprop", "deconvnet"])
def test_unit_maps_match_captum_neuron_methods(backend, device, unit, selector, ours, theirs):
    model, net, x, xt = setup(backend, device)
    if callable(selector):                          # a unique, positive maximum in every image
        top = net[:unit.layer + 1](xt)[:, unit.channel].flatten(1).topk(2).values
        assert (top[:, 0] > 0).all() and (top[:, 0] > top[:, 1]).all()
    expected = theirs(net, net[unit.layer]).attribute(xt, neuron_selector=selector)
    close(ours(model, x, unit), expected)
    assert float(expected.detach().abs().max()) > 0.01


@pytest.mark.parametrize("layer", [0, 1, 2, 3, 4], ids=["conv1", "relu1", "pool", "conv2", "relu2"])
def test_grad_cam_matches_layer_grad_cam(backend, device, layer):
    model, net, x, xt = setup(backend, device)
    cam = LayerGradCam(net, net[layer]).attribute(xt, target=torch.tensor(CLASSES),
                                                  relu_attributions=True)   # (3, 1, h, h)
    ours = grad_cam(model, x, CLASSES, layer)                                # (3, 1, 12, 12)
    close(ours, LayerAttribution.interpolate(cam, (12, 12), "bilinear"))
    # At the layer's resolution: a 12x12 layer is not resampled, and on a 4x4 layer (factor
    # 3, pixel centres aligned) output pixel 3i + 1 samples the layer's position i exactly.
    h = cam.shape[2]
    if h in (12, 4):
        step = 12 // h
        close(ours[:, :, step // 2::step, step // 2::step], cam)
    assert (cam.flatten(1).max(dim=1).values > 0).all()          # no image's map is blank


@pytest.mark.parametrize("layer", [1, 4], ids=["relu1", "relu2"])
def test_guided_grad_cam_matches_captum(backend, device, layer):
    model, net, x, xt = setup(backend, device)
    expected = GuidedGradCam(net, net[layer]).attribute(xt, target=torch.tensor(CLASSES),
                                                        interpolate_mode="bilinear")
    close(guided_grad_cam(model, x, CLASSES, layer), expected)
    assert float(expected.detach().abs().max()) > 1e-4


@pytest.mark.parametrize("baseline", ["zeros", "random"])
def test_integrated_gradients_match_captum(backend, device, baseline):
    model, net, x, xt = setup(backend, device)
    base = np.zeros(x.shape) if baseline == "zeros" else \
        np.random.default_rng(5).standard_normal(x.shape)
    ig, target = IntegratedGradients(net), torch.tensor(CLASSES)

    def captum(method, n_steps):
        return ig.attribute(xt, t(base), target=target, n_steps=n_steps, method=method,
                            return_convergence_delta=True)

    ours, delta = integrated_gradients(model, x, CLASSES, backend.asarray(base), steps=16,
                                       return_delta=True)
    (left, left_delta), (right, right_delta) = captum("riemann_left", 16), \
        captum("riemann_right", 16)
    close(ours, (left + right) / 2)
    close(delta, (left_delta + right_delta) / 2)
    assert float(left.detach().abs().max()) > 0.01 and not torch.allclose(left, right)
    trapezoid = captum("riemann_trapezoid", 16)[0]
    close(integrated_gradients(model, x, CLASSES, backend.asarray(base), steps=15) * 15 / 16,
          trapezoid)


def probabilities(net):
    """The forward function for occlusion: softmax probabilities, ``(N, classes)``."""
    return lambda z: torch.softmax(net(z), dim=1)


def clean_probability(net, xt):
    """``p(x)`` of ``CLASSES`` per image, ``(N,)``."""
    with torch.no_grad():
        return probabilities(net)(xt)[torch.arange(3), torch.tensor(CLASSES)].numpy()


@pytest.mark.parametrize("size, stride, fill", [(4, 2, None), (3, 1, 0.5), (3, 3, None),
                                                (4, 4, -1.0)])
def test_occlusion_matches_captum(backend, device, size, stride, fill):
    model, net, x, xt = setup(backend, device)
    base = xt.mean(dim=(2, 3), keepdim=True) if fill is None else fill    # minicnn's gray
    drop = Occlusion(probabilities(net)).attribute(
        xt, sliding_window_shapes=(2, size, size), strides=(2, stride, stride), baselines=base,
        target=torch.tensor(CLASSES))                                      # (3, 2, 12, 12)
    assert drop.dtype == torch.float32                # Captum divides by the counts in float32
    ours = as_numpy(occlusion(model, x, CLASSES, size, stride, fill=fill))   # (3, 1, 12, 12)
    expected = clean_probability(net, xt)[:, None, None, None] - ours
    np.testing.assert_allclose(np.broadcast_to(expected, drop.shape), drop.numpy(),
                               rtol=1e-6, atol=1e-12)
    assert np.abs(expected).max() > 1e-3


@pytest.mark.parametrize("size, fill", [(3, None), (4, 0.5)])
def test_occlusion_grid_matches_feature_ablation(backend, device, size, fill):
    """Non-overlapping squares: Captum's drop on a square's pixels is ``p(x) - grid[square]``."""
    model, net, x, xt = setup(backend, device)
    rows = 12 // size
    squares = np.arange(rows * rows).reshape(rows, rows).repeat(size, 0).repeat(size, 1)
    base = xt.mean(dim=(2, 3), keepdim=True) if fill is None else fill
    drop = FeatureAblation(probabilities(net)).attribute(
        xt, baselines=base, target=torch.tensor(CLASSES),
        feature_mask=torch.from_numpy(squares)[None, None])    # (1, 1, 12, 12): both channels
    grid = as_numpy(occlusion(model, x, CLASSES, size, size, fill=fill, grid=True))
    expected = (clean_probability(net, xt)[:, None, None] - grid).repeat(size, 1).repeat(size, 2)
    for channel in range(2):
        np.testing.assert_allclose(expected, drop[:, channel].numpy(), **TIGHT)
    assert np.abs(expected).max() > 1e-3


@pytest.mark.parametrize("target", [CLASSES, None], ids=["classes", "predicted"])
def test_smoothgrad_is_the_mean_gradient_over_its_noise(backend, device, target):
    model, net, x, xt = setup(backend, device)
    n_samples, level, seed = 4, 0.2, 3
    x_np = xt.numpy()
    spread = x_np.max(axis=(1, 2, 3)) - x_np.min(axis=(1, 2, 3))         # per image, (N,)
    sigma = level * spread[:, None, None, None]
    rng = np.random.default_rng(seed)                                    # as documented
    noisy = [x_np + sigma * rng.standard_normal(x_np.shape) for _ in range(n_samples)]
    classes = classes_for(net, xt, target)             # fixed on the clean images

    def torch_gradient(z):
        z = torch.from_numpy(z).requires_grad_(True)
        (grad,) = torch.autograd.grad(net(z)[torch.arange(3), classes].sum(), z)
        return grad.numpy()

    ours = as_numpy(smoothgrad(model, x, target, n_samples=n_samples, noise_level=level,
                               seed=seed))
    by_torch = np.mean([torch_gradient(z) for z in noisy], axis=0)
    np.testing.assert_allclose(ours, by_torch, **TIGHT)
    by_minicnn = np.mean([as_numpy(saliency(model, backend.asarray(z), classes.tolist()))
                          for z in noisy], axis=0)
    np.testing.assert_allclose(ours, by_minicnn, **TIGHT)
    # the test can tell: the noise matters, and so does sigma being per image
    assert not np.allclose(ours, as_numpy(saliency(model, x, classes.tolist())), atol=1e-3)
    assert len(set(spread.round(6))) == 3
    rng = np.random.default_rng(seed)
    one_sigma = level * (x_np.max() - x_np.min())
    batch_wide = np.mean([torch_gradient(x_np + one_sigma * rng.standard_normal(x_np.shape))
                          for _ in range(n_samples)], axis=0)
    assert not np.allclose(ours, batch_wide, atol=1e-3)


def setup_options(backend, device, seed=1):
    """Like ``setup``, through the newer options: a depthwise conv with dilation and
    reflect padding, a dilated ceil-mode max pool, a grouped conv with even 'same' padding,
    and an average pool that leaves the padding out. Images ``(3, 2, 13, 13)``."""
    rng = np.random.default_rng(seed)
    model = Sequential([
        Conv2D(2, 4, 3, padding=2, dilation=2, groups=2, padding_mode="reflect", seed=rng),
        ReLU(), MaxPool2D(2, stride=2, dilation=2, ceil_mode=True),
        Conv2D(4, 6, 2, padding="same", groups=2, seed=rng), ReLU(),
        AvgPool2D(3, stride=2, padding=1, count_include_pad=False), Flatten(),
        Dense(54, 10, seed=rng), ReLU(), Dense(10, 3, seed=rng)], input_shape=(2, 13, 13))
    model.astype("float64")
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.value = 0.1 * rng.standard_normal(p.value.shape)
    x = rng.standard_normal((3, 2, 13, 13))
    return model.to(device), torch_copy(model), backend.asarray(x), torch.from_numpy(x)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("ours, theirs", [(saliency, Saliency), (guided_backprop, GuidedBackprop),
                                          (deconvnet, Deconvolution)],
                         ids=["saliency", "guided-backprop", "deconvnet"])
def test_rule_swapping_through_the_new_options_matches_captum(backend, device, ours, theirs):
    model, net, x, xt = setup_options(backend, device)
    kwargs = dict(abs=False) if theirs is Saliency else {}
    expected = theirs(net).attribute(xt, target=torch.tensor(CLASSES), **kwargs)
    close(ours(model, x, CLASSES), expected)
    assert float(expected.detach().abs().max()) > 1e-4


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("layer", [1, 2, 4, 5], ids=["relu1", "pool", "relu2", "avgpool"])
def test_grad_cam_through_the_new_options_matches_captum(backend, device, layer):
    model, net, x, xt = setup_options(backend, device)
    cam = LayerGradCam(net, net[layer]).attribute(xt, target=torch.tensor(CLASSES),
                                                  relu_attributions=True)
    close(grad_cam(model, x, CLASSES, layer),
          LayerAttribution.interpolate(cam, (13, 13), "bilinear"))
    assert (cam.flatten(1).max(dim=1).values > 0).any()
