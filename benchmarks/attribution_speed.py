"""Batch time of each attribution method on lenet, minicnn beside Captum and zennit.

    python benchmarks/attribution_speed.py [--batch 256] [--repeats 3] [--checkpoint RUN_DIR]

Every method explains the predicted class of ``--batch`` random MNIST-shaped float32
images on the CPU; the same weights go into a PyTorch twin (``tests/torch_helpers.py``)
for Captum 0.9 and zennit. Each library's call of a method is timed ``--repeats``
times after one warm-up call, minicnn's and the others' calls interleaved; the median
wall time is printed as a markdown table (seconds per batch). A method's cost is its
number of backward passes: one for most, ``--ig-steps`` for integrated gradients and
``--smooth-samples`` for SmoothGrad.
"""
import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))      # the torch twin of the tests

from minicnn import load_model, models  # noqa: E402
from minicnn.studies.sanity import BACKGROUND, WHITE, method_suite  # noqa: E402
from minicnn.viz import resolve_target  # noqa: E402


def others(model, ig_steps, smooth_samples):
    """``{method name: fn(x_torch, classes) -> attribution}`` of Captum and zennit, by method."""
    import torch
    from captum import attr
    from torch_helpers import torch_copy
    twin = torch_copy(model).float()
    cam_layer = twin[4]
    out = {"gradient": ("Captum", lambda x, c: attr.Saliency(twin).attribute(x, c, abs=False)),
           "gradient x input": ("Captum", lambda x, c: attr.InputXGradient(twin).attribute(x, c)),
           "guided backprop": ("Captum", lambda x, c: attr.GuidedBackprop(twin).attribute(x, c)),
           "deconvnet": ("Captum", lambda x, c: attr.Deconvolution(twin).attribute(x, c)),
           "integrated gradients": ("Captum", lambda x, c: attr.IntegratedGradients(twin).attribute(
               x, torch.full_like(x, BACKGROUND), c, n_steps=ig_steps, method="gausslegendre",
               internal_batch_size=len(x))),
           "SmoothGrad": ("Captum", lambda x, c: attr.NoiseTunnel(attr.Saliency(twin)).attribute(
               x, nt_type="smoothgrad", nt_samples=smooth_samples, stdevs=0.15 * float(
                   WHITE - BACKGROUND), target=c, abs=False)),
           "Grad-CAM": ("Captum", lambda x, c: attr.LayerAttribution.interpolate(
               attr.LayerGradCam(twin, cam_layer).attribute(x, c, relu_attributions=True),
               (28, 28), "bilinear")),
           "DeepLIFT": ("Captum", lambda x, c: attr.DeepLift(twin).attribute(
               x, torch.full_like(x, BACKGROUND), c))}
    try:
        from test_propagation_oracles import install_torchvision_stub
        install_torchvision_stub()
        from zennit import composites as zc
        from zennit import rules as zr
        from zennit.attribution import Gradient
        from zennit.types import Activation, Convolution
    except Exception as error:                       # zennit is optional
        print(f"zennit not available ({error}): its rows are left out")
        return out

    def zennit(composite, start_value=True):
        def run(x, c):
            onehot = torch.nn.functional.one_hot(c, 10).float()
            with Gradient(twin, composite) as attributor:
                return attributor(x.requires_grad_(True),
                                  (lambda o: o * onehot) if start_value else onehot)[1]
        return run
    epsilon = zc.LayerMapComposite([(Activation, zr.Pass()), (Convolution, zr.Epsilon(0.25)),
                                    (torch.nn.Linear, zr.Epsilon(0.25))])
    out["LRP epsilon"] = ("zennit", zennit(epsilon))
    out["LRP epsilon-gamma-box"] = ("zennit", zennit(zc.EpsilonGammaBox(
        low=BACKGROUND, high=WHITE, epsilon=0.25, gamma=0.25)))
    out["excitation backprop"] = ("zennit", zennit(zc.ExcitationBackprop(), start_value=False))
    return out


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ig-steps", type=int, default=16)
    ap.add_argument("--smooth-samples", type=int, default=8)
    ap.add_argument("--checkpoint", default=None, help="a model.npz (default: lenet(seed=0))")
    args = ap.parse_args()

    import torch
    warnings.filterwarnings("ignore", category=UserWarning)     # Captum's notes on its hooks
    model = (load_model(args.checkpoint) if args.checkpoint else models.lenet(seed=0)).eval()
    x = np.random.default_rng(0).standard_normal((args.batch, 1, 28, 28)).astype(np.float32)
    classes = resolve_target(model, x, None).where[1]
    xt, ct = torch.from_numpy(x), torch.from_numpy(classes)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    ours = method_suite(model, ig_steps=args.ig_steps, smooth_samples=args.smooth_samples)
    theirs = others(model, args.ig_steps, args.smooth_samples)
    print(f"| method | minicnn s / {args.batch} images | library | its s / {args.batch} images |")
    print("|---|---:|---|---:|")
    for name, fn in ours.items():
        mine = lambda: fn(model, x, classes)                       # noqa: E731
        lib, other = theirs.get(name, ("-", None))
        mine()
        if other is not None:
            other(xt.clone(), ct)
        t_mine = timed(mine, args.repeats)
        t_other = timed(lambda: other(xt.clone(), ct), args.repeats) if other else None
        print(f"| {name} | {t_mine:.2f} | {lib} | "
              f"{'-' if t_other is None else f'{t_other:.2f}'} |", flush=True)


if __name__ == "__main__":
    main()
