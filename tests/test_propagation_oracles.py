"""The propagation methods against independent implementations (float64, same weights).

- LRP rules and composites against zennit (pip ``zennit``; its newest release is 0.5.1),
  on random conv/pool/dense nets and on lenet. zennit's ``__init__`` imports
  ``torchvision.models.resnet`` for its ResNet canonizer only, and the torchvision wheels
  on PyPI are CUDA builds whose compiled ops do not load beside the CPU torch that CI
  installs. So when torchvision cannot be imported, ``install_torchvision_stub`` puts a
  two-class stand-in for ``torchvision.models.resnet`` in ``sys.modules`` before zennit is
  imported: nothing of torchvision is ever called by these tests.
- DeepLIFT (rescale) and gradient x input against Captum 0.9.0. DeepLIFT is compared on a
  net with average pooling only: on nets with max pooling Captum 0.9.0's ``DeepLift``
  breaks its own summation-to-delta (measured here on conv-ReLU-maxpool-dense nets with
  2x2, 3x3/2 padded and 3x3/3 pools: its attributions miss ``f(x) - f(baseline)`` by 0.2 to
  19.5 per image, while minicnn's are within 3e-14), so there the identity is the check
  (``test_propagation.py``), not Captum.

Conventions: LRP starts at the target's logit (zennit: ``attr_output = output * onehot``);
excitation backprop starts at 1 (zennit: ``attr_output = onehot``).
"""
import sys
import types

import numpy as np
import pytest
from test_propagation import random_net

from minicnn import models
from minicnn.backend import as_numpy
from minicnn.viz.propagation import deeplift, excitation_backprop, gradient_x_input, lrp

torch = pytest.importorskip("torch")
from torch_helpers import t, torch_copy  # noqa: E402  (needs torch)

TIGHT = dict(rtol=1e-10, atol=1e-12)


def install_torchvision_stub():
    try:
        import torchvision.models.resnet  # noqa: F401
    except Exception:
        resnet = types.ModuleType("torchvision.models.resnet")
        resnet.Bottleneck = type("Bottleneck", (torch.nn.Module,), {})
        resnet.BasicBlock = type("BasicBlock", (torch.nn.Module,), {})
        tv, tv_models = types.ModuleType("torchvision"), types.ModuleType("torchvision.models")
        tv.models, tv_models.resnet = tv_models, resnet
        sys.modules.update({"torchvision": tv, "torchvision.models": tv_models,
                            "torchvision.models.resnet": resnet})


def zennit():
    install_torchvision_stub()
    return pytest.importorskip("zennit")


def zennit_relevance(twin, x, classes, composite, start="value"):
    from zennit.attribution import Gradient
    xt = t(x).requires_grad_(True)
    onehot = torch.zeros(len(classes), 10 if twin[-1].out_features == 10 else
                         twin[-1].out_features, dtype=torch.float64)
    onehot[range(len(classes)), classes] = 1.0
    attr_output = (lambda out: out * onehot) if start == "value" else (lambda out: onehot)
    with Gradient(twin, composite) as attributor:
        _, relevance = attributor(xt, attr_output)
    return relevance.detach().numpy()


def single_rule_composite(rule):
    from zennit import rules as zr
    from zennit.composites import LayerMapComposite
    from zennit.types import Activation, AvgPool, Convolution
    # LRP-0: minicnn gives a zero share where z == 0; zennit's Epsilon(0) divides by 0 there
    # (NaN). A stabilizer of 1e-300 gives the zero share and changes no other number.
    make = {"0": lambda: zr.Epsilon(epsilon=1e-300), "epsilon": lambda: zr.Epsilon(1e-6),
            "gamma": lambda: zr.Gamma(0.25), "alpha2beta1": lambda: zr.AlphaBeta(2, 1),
            "alpha1beta0": lambda: zr.AlphaBeta(1, 0), "zplus": lambda: zr.ZPlus()}[rule]
    pool_eps = 1e-300 if rule == "0" else 1e-6
    return LayerMapComposite([(Activation, zr.Pass()), (AvgPool, zr.Norm(pool_eps)),
                              (Convolution, make()), (torch.nn.Linear, make())])


@pytest.fixture
def net_and_input(rng):
    return random_net(rng), rng.standard_normal((3, 1, 12, 12)), [1, 4, 2]


@pytest.mark.parametrize("rule", ["0", "epsilon", "gamma", "alpha2beta1", "alpha1beta0", "zplus"])
def test_lrp_rules_match_zennit(backend, device, net_and_input, rule):
    zennit()
    net, x, classes = net_and_input
    theirs = zennit_relevance(torch_copy(net), x, classes, single_rule_composite(rule))
    ours = lrp(net.to(device), backend.asarray(x), classes, rule=rule)
    np.testing.assert_allclose(as_numpy(ours), theirs, **TIGHT)


COMPOSITE_CLASSES = {"epsilon_gamma_box": "EpsilonGammaBox", "epsilon_plus": "EpsilonPlus",
                     "epsilon_alpha2_beta1": "EpsilonAlpha2Beta1",
                     "epsilon_plus_flat": "EpsilonPlusFlat",
                     "epsilon_alpha2_beta1_flat": "EpsilonAlpha2Beta1Flat"}


@pytest.mark.parametrize("name", COMPOSITE_CLASSES)
@pytest.mark.parametrize("model_name", ["random", "lenet"])
def test_lrp_composites_match_zennit(backend, device, rng, net_and_input, name, model_name):
    zennit()
    import zennit.composites as zc
    if model_name == "lenet":
        net = models.lenet(seed=5).astype("float64").eval()
        x, classes = rng.standard_normal((2, 1, 28, 28)), [3, 7]
    else:
        net, x, classes = net_and_input
    low, high = -1.5, 2.5
    kwargs = dict(low=low, high=high) if name == "epsilon_gamma_box" else {}
    composite = getattr(zc, COMPOSITE_CLASSES[name])(**kwargs)
    theirs = zennit_relevance(torch_copy(net), x, classes, composite)
    ours = lrp(net.to(device), backend.asarray(x), classes, composite=name, low=low, high=high)
    np.testing.assert_allclose(as_numpy(ours), theirs, rtol=1e-9, atol=1e-12)


def test_excitation_backprop_matches_zennit(backend, device, net_and_input):
    zennit()
    from zennit.composites import ExcitationBackprop
    net, x, classes = net_and_input
    x = np.abs(x)
    theirs = zennit_relevance(torch_copy(net), x, classes, ExcitationBackprop(), start="one")
    ours = excitation_backprop(net.to(device), backend.asarray(x), classes)
    np.testing.assert_allclose(as_numpy(ours), theirs, **TIGHT)


# -- Captum ---------------------------------------------------------------------------
def test_gradient_x_input_matches_captum(backend, device, net_and_input):
    captum = pytest.importorskip("captum.attr")
    net, x, classes = net_and_input
    theirs = captum.InputXGradient(torch_copy(net)).attribute(t(x), target=classes)
    ours = gradient_x_input(net.to(device), backend.asarray(x), classes)
    np.testing.assert_allclose(as_numpy(ours), theirs.detach().numpy(), **TIGHT)


def test_deeplift_rescale_matches_captum(backend, device, rng):
    captum = pytest.importorskip("captum.attr")
    from minicnn import AvgPool2D
    net = random_net(rng, pool=AvgPool2D)
    x, baseline = rng.standard_normal((3, 1, 12, 12)), rng.standard_normal((3, 1, 12, 12)) * 0.3
    twin = torch_copy(net)
    theirs = captum.DeepLift(twin).attribute(t(x), baselines=t(baseline), target=[0, 3, 4])
    ours = deeplift(net.to(device), backend.asarray(x), [0, 3, 4],
                    baseline=backend.asarray(baseline))
    np.testing.assert_allclose(as_numpy(ours), theirs.detach().numpy(), **TIGHT)


def torch_grad_cam_pp(twin, x, classes, layer):
    """Grad-CAM++ computed by PyTorch alone: its autograd gives ``dy/dA`` at the output of
    ``twin[layer]``, the weights follow Chattopadhay et al. 2018, eq. 19 with the
    exponential score (``alpha = g^2 / (2 g^2 + sum A g^3)``), then bilinear upsampling
    (``align_corners=False``, as ``minicnn.viz.upsample_bilinear``)."""
    a = twin[:layer + 1](t(x)).detach().requires_grad_(True)
    logits = twin[layer + 1:](a)
    logits[range(len(classes)), classes].sum().backward()
    g = a.grad
    g2 = g ** 2
    denom = 2 * g2 + a.detach().sum(dim=(2, 3), keepdim=True) * g2 * g
    alpha = torch.where(g != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)),
                        torch.zeros_like(g))
    weights = (alpha * g.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
    cam = (weights * a.detach()).sum(dim=1, keepdim=True).clamp(min=0)
    return torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear",
                                           align_corners=False).numpy()


@pytest.mark.parametrize("layer", [1, 4])
def test_grad_cam_pp_agrees_with_pytorch_autograd(rng, backend, device, layer):
    """No attribution library ships Grad-CAM++ that CI can install cleanly (Captum and zennit
    have none; pytorch-grad-cam needs OpenCV, ttach and torchvision): the oracle is PyTorch's
    autograd on the same weights, with the paper's weights written out."""
    from minicnn.viz import grad_cam_pp
    net = random_net(rng).to(device).eval()
    x = backend.asarray(rng.standard_normal((3, 1, 12, 12)))
    classes = [1, 2, 4]
    ours = as_numpy(grad_cam_pp(net, x, classes, layer=layer))
    theirs = torch_grad_cam_pp(torch_copy(net), x, classes, layer)
    assert np.abs(theirs).max() > 0
    np.testing.assert_allclose(ours, theirs, **TIGHT)
