"""Every attribution method of the sanity and faithfulness studies on the same test digits.

    python examples/propagation_figure.py --checkpoint RUN_DIR [--n 5] [--out PNG]

One row per digit (the first --n test digits), one column per method of
``minicnn.studies.sanity.method_suite`` (gradient, gradient x input, guided
backprop, deconvnet, integrated gradients, SmoothGrad, Grad-CAM, Grad-CAM++, LRP
epsilon, LRP epsilon-gamma-box, DeepLIFT, excitation backprop), each explaining
the predicted class's logit, in two blocks of six methods (each block starts with
the digits) so that the figure fits a page. Signed maps: red positive, blue
negative, each panel scaled to its 98th percentile of |value| (the colour bar
under each column: -1 .. 1 on that scale, clipped beyond).
"""
import argparse
import os
import time

from common import add_model_arguments, model_from_args, test_images

from minicnn.studies.sanity import method_suite
from minicnn.viz import attribution_grid, resolve_target


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "lenet", out=os.path.join("out", "propagation.png"),
                        out_help="the PNG to write")
    ap.add_argument("--n", type=int, default=5, help="test digits (rows)")
    args = ap.parse_args()

    model = model_from_args(args)
    x, y = test_images(args.n, args.data_dir)
    predicted = resolve_target(model, x, None).where[1]
    columns = []
    for name, fn in method_suite(model).items():
        start = time.perf_counter()
        columns.append((name, fn(model, x, predicted), {}))
        print(f"{name}: {time.perf_counter() - start:.1f} s for {len(x)} digits")
    labels = [f"label {int(a)}, predicted {int(b)}" for a, b in zip(y, predicted)]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    attribution_grid(x, columns, args.out, row_labels=labels, cell=1.5, wrap=6)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
