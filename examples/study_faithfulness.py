"""Deletion and insertion curves of every attribution method, with random and edge baselines.

    python examples/study_faithfulness.py --checkpoint RUN_DIR [--n 1000] [--steps 20]

For the first --n test digits (target: the class the model predicts), each
method's map orders the pixels; the target's probability is recorded as they are
set to the background (deletion) or copied onto a blank image (insertion) in
--steps equal steps. Prints the table of areas under the curves and writes
OUT/faithfulness.png (and the curves as OUT/faithfulness.npz).
"""
import argparse
import os
import time

import numpy as np
from common import add_model_arguments, model_from_args, test_images

from minicnn.studies import faithfulness, sanity
from minicnn.studies.gallery import predict_proba


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "lenet")
    ap.add_argument("--n", type=int, default=1000, help="test digits")
    ap.add_argument("--steps", type=int, default=20, help="points of each curve, minus one")
    ap.add_argument("--ig-steps", type=int, default=16, help="integrated gradients nodes")
    ap.add_argument("--smooth-samples", type=int, default=8, help="SmoothGrad samples")
    args = ap.parse_args()

    model = model_from_args(args)
    x, y = test_images(args.n, args.data_dir)
    accuracy = (predict_proba(model, x).argmax(axis=1) == y).mean()
    print(f"{args.model}: accuracy on these {len(x)} test digits {100 * accuracy:.2f}%")
    methods = sanity.method_suite(model, ig_steps=args.ig_steps,
                                  smooth_samples=args.smooth_samples)
    start = time.perf_counter()
    study = faithfulness.faithfulness_study(
        model, x, None, methods, steps=args.steps,
        progress=lambda name: print(f"  {name} ({time.perf_counter() - start:.0f} s)",
                                    flush=True))
    print(f"\n{len(x)} test digits, {args.steps} steps of {784 / args.steps:.1f} pixels "
          f"({time.perf_counter() - start:.0f} s)")
    print(faithfulness.format_table(study))
    os.makedirs(args.out, exist_ok=True)
    np.savez(os.path.join(args.out, "faithfulness.npz"), names=np.array(study.names),
             fractions=study.fractions, deletion=study.deletion, insertion=study.insertion,
             targets=study.targets)
    path = os.path.join(args.out, "faithfulness.png")
    faithfulness.draw_faithfulness(study).savefig(path, dpi=110)
    print("wrote", path)


if __name__ == "__main__":
    main()
