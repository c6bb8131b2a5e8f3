"""Print the identities that define the propagation methods, measured on lenet in float64.

    python examples/propagation_identities.py [--checkpoint RUN or RUN/model.npz] [--images 8]
        [--steps 16 64 256]

Without a checkpoint, lenet with its seeded initial weights is used (the identities hold
for any weights). The test digits come from MINICNN_DATA or --data-dir.
"""
import argparse

import numpy as np
from common import trained_model

from minicnn import models
from minicnn.data import load_mnist, prepare_images
from minicnn.viz import checks, deeplift, integrated_gradients


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint",
                        help="a model.npz or run folder (default: lenet's seeded initial weights)")
    parser.add_argument("--data-dir", help="folder holding mnist/ (default: MINICNN_DATA, then "
                                           "download)")
    parser.add_argument("--images", type=int, default=8, help="test digits (default 8)")
    parser.add_argument("--steps", type=int, nargs="+", default=[16, 64, 256],
                        help="integrated gradients' node counts (default 16 64 256)")
    args = parser.parse_args()
    model = trained_model(checkpoint=args.checkpoint) if args.checkpoint else models.lenet(seed=0)
    model.astype("float64").eval()
    _, (x_test, _) = load_mnist(args.data_dir)
    x = prepare_images(x_test[:args.images]).astype(np.float64)
    logit = np.abs(model.forward(x).max(axis=1)).max()
    print(f"{args.images} test digits, largest |logit| {logit:.3g}\n")
    print("identity                                          largest error")
    print(f"LRP-0 = gradient x input                          "
          f"{checks.lrp0_minus_gradient_x_input(model, x, None).max():.2e}")
    for rule, eps in (("0", 0.0), ("epsilon", 0.25)):
        rows = checks.lrp_conservation(model, x, None, rule=rule, epsilon=eps)
        absorbed = np.abs(np.sum([r["absorbed"] for r in rows], axis=0)).max()
        drift = np.abs(rows[0]["relevance"] + np.sum([r["absorbed"] for r in rows], axis=0)
                       - rows[-1]["relevance"]).max()
        print(f"LRP-{rule if rule == '0' else 'eps (0.25)'} conservation, bias/eps absorbed  "
              f"{absorbed:9.3g} absorbed; books balance to {drift:.1e}")
    _, delta = deeplift(model, x, None, return_delta=True)
    print(f"DeepLIFT summation to delta                       {np.abs(delta).max():.2e}")
    for method in ("trapezoid", "gausslegendre"):
        for steps in args.steps:
            _, d = integrated_gradients(model, x, None, steps=steps, method=method,
                                        return_delta=True)
            print(f"integrated gradients completeness, {method:13s} {steps:3d} steps "
                  f"{np.abs(d).max():.2e}")


if __name__ == "__main__":
    main()
