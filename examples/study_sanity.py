"""Sanity checks for saliency maps (Adebayo et al. 2018): do the maps change when the weights do?

    python examples/study_sanity.py --checkpoint RUN_DIR [--n 16] [--data-model tiny_cnn]
        [--skip-model] [--skip-data]
    python examples/study_sanity.py --draw

Cascading and independent model-parameter randomization on the trained model
(--checkpoint) over the first --n test digits (target: the true label), and the
data randomization test: --data-model trained for --data-steps Adam steps on the
first --data-train training digits with true and with permuted labels. Prints
markdown tables (mean Spearman rank correlation with the trained map, signed and
absolute maps) and saves the results as OUT/sanity_model.pkl and OUT/sanity_data.pkl;
--draw writes OUT/sanity.png from them (so the two parts can run side by side).
"""
import argparse
import functools
import os
import pickle
import time

import numpy as np
from common import add_model_arguments, model_from_args, test_images, train_images

from minicnn.models import get_model
from minicnn.studies import sanity


def save(out, part, result):
    with open(os.path.join(out, f"sanity_{part}.pkl"), "wb") as f:
        pickle.dump(result, f)


def load(out, part):
    with open(os.path.join(out, f"sanity_{part}.pkl"), "rb") as f:
        return pickle.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "lenet")
    ap.add_argument("--n", type=int, default=16, help="test digits to average over")
    ap.add_argument("--ig-steps", type=int, default=16, help="integrated gradients nodes")
    ap.add_argument("--smooth-samples", type=int, default=8, help="SmoothGrad samples")
    ap.add_argument("--data-model", default="tiny_cnn", help="net of the data randomization test")
    ap.add_argument("--data-train", type=int, default=2000, help="its training digits")
    ap.add_argument("--data-steps", type=int, default=1500, help="its Adam steps (batch 64)")
    ap.add_argument("--skip-model", action="store_true", help="skip the parameter tests")
    ap.add_argument("--skip-data", action="store_true", help="skip the data randomization test")
    ap.add_argument("--draw", action="store_true",
                    help="only draw OUT/sanity.png from the saved OUT/sanity_*.pkl")
    args = ap.parse_args()

    suite = dict(ig_steps=args.ig_steps, smooth_samples=args.smooth_samples)
    os.makedirs(args.out, exist_ok=True)
    tests, data = [], None
    if args.draw:                          # from the saved results: no data, no model
        tests, data = load(args.out, "model"), load(args.out, "data")
    else:
        x, y = test_images(args.n, args.data_dir)
    if not (args.draw or args.skip_model):
        model = model_from_args(args)
        methods = sanity.method_suite(model, **suite)
        for run in (sanity.cascading_randomization, sanity.independent_randomization):
            start = time.perf_counter()
            test = run(model, x, y, methods)
            tests.append(test)
            print(f"\n{test.test} randomization of {args.model}, {len(x)} test digits "
                  f"({time.perf_counter() - start:.0f} s)")
            for absolute in (False, True):
                print(f"\nmean rank correlation, {'absolute' if absolute else 'signed'} maps")
                print(sanity.format_table(test, absolute))
            undefined = test.undefined()
            for m, name in enumerate(test.methods):
                if undefined[m].any():
                    print(f"{name}: constant maps (no rank correlation) per stage: "
                          f"{undefined[m].tolist()} of {len(x)}")
        save(args.out, "model", tests)
    if not (args.draw or args.skip_data):
        xt, yt = train_images(args.data_train, args.data_dir)
        make = functools.partial(get_model, args.data_model, seed=0)
        start = time.perf_counter()
        data = sanity.data_randomization(make, xt, yt, x, y, args.data_steps,
                                         sanity.method_suite(make(), **suite))
        print(f"\ndata randomization: {args.data_model} trained {args.data_steps} steps on "
              f"{len(xt)} digits ({time.perf_counter() - start:.0f} s)")
        for name in data.train_accuracy:
            print(f"  {name}: training accuracy {100 * data.train_accuracy[name]:.1f}%, "
                  f"test accuracy (true labels, {len(x)} digits) "
                  f"{100 * data.test_accuracy[name]:.1f}%")
        save(args.out, "data", data)
        print("| method | rank correlation (signed) | rank correlation (absolute) |")
        print("|---|---:|---:|")
        with np.errstate(all="ignore"):
            for m, name in enumerate(data.methods):
                print(f"| {name} | {np.nanmean(data.spearman[m]):.3f} | "
                      f"{np.nanmean(data.spearman_abs[m]):.3f} |")
    if args.draw:
        path = os.path.join(args.out, "sanity.png")
        sanity.draw_sanity(*tests, data).savefig(path, dpi=100)
        print("wrote", path)


if __name__ == "__main__":
    main()
