"""Transfer learning with frozen convolution layers (the seed's "Feature generalization").

    python examples/study_transfer.py [--model lenet] [--steps 300] [--source-steps 1000]
        [--checkpoint runs/lenet-10ep/model.npz] [--seeds 0 1 2]

(a) train on digits 0-4, freeze the convolution layers, re-initialize and
    retrain the dense layers on digits 5-9; compare with the same network
    trained from scratch on 5-9 with the same number of steps.
(b) reuse the features of a network trained on all of MNIST (--checkpoint, or
    examples/common.py's cached run) for Fashion-MNIST with 15, 30, 60 and all
    labelled images per class, against training from scratch with the same
    number of steps.
Budgets are counted in Adam steps of 64 images; all runs are seeded. With
several --seeds each study runs once per seed and the mean is printed too.
"""
import argparse
import time

import numpy as np
from common import add_model_arguments, model_from_args, model_name, test_images, train_images

from minicnn.models import get_model
from minicnn.studies.transfer import digits_transfer, few_labels_transfer, format_few_labels


def pct(values):
    """``"mean%"`` of fractions, with the per-seed values when there are several."""
    mean = f"{100 * np.mean(values):.2f}%"
    return mean if len(values) == 1 else mean + " (" + ", ".join(
        f"{100 * v:.2f}" for v in values) + ")"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "tiny_cnn", "; --checkpoint and --epochs give the MNIST source "
                        "model of (b)", out=None)
    ap.add_argument("--steps", type=int, default=150, help="steps of each run on the new task")
    ap.add_argument("--source-steps", type=int, default=300, help="steps on digits 0-4 in (a)")
    ap.add_argument("--per-class", nargs="+", default=["15", "30", "60", "all"],
                    help="labelled Fashion-MNIST images per class in (b), or all")
    ap.add_argument("--test", type=int, default=None, help="test images (default: all)")
    ap.add_argument("--skip", choices=["a", "b"], default=None, help="leave out study (a) or (b)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="run each study once per seed (default 0)")
    args = ap.parse_args()
    model_name(args)        # --model, or the one --checkpoint's run recorded

    def make(seed):
        return get_model(args.model, seed=seed)

    if args.skip != "a":
        train, test = train_images(data_dir=args.data_dir), test_images(args.test, args.data_dir)
        runs = []
        for seed in args.seeds:
            start = time.perf_counter()
            result, _ = digits_transfer(make, train, test, steps=args.steps,
                                        source_steps=args.source_steps, seed=seed)
            runs.append(result)
            print(f"(a) seed {seed}: source {100 * result.pretrain:.2f}%, frozen features "
                  f"{100 * result.transfer:.2f}%, scratch {100 * result.scratch:.2f}% "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
        print(f"\n(a) {args.model}, {args.source_steps} steps on digits 0-4, then {args.steps} "
              f"steps on 5-9; seeds {args.seeds}")
        print("| network | test accuracy |\n|---|---|")
        print(f"| source, digits 0-4 | {pct([r.pretrain for r in runs])} |")
        print(f"| frozen 0-4 features + new dense layers, digits 5-9 | "
              f"{pct([r.transfer for r in runs])} |")
        print(f"| from scratch, digits 5-9 | {pct([r.scratch for r in runs])} |")

    if args.skip != "b":
        source = model_from_args(args)
        per_class = [None if k == "all" else int(k) for k in args.per_class]
        train = train_images(data_dir=args.data_dir, dataset="fashion-mnist")
        test = test_images(args.test, args.data_dir, dataset="fashion-mnist")
        tables = []
        for seed in args.seeds:
            start = time.perf_counter()
            rows = few_labels_transfer(source, make, train, test, per_class=per_class,
                                       steps=args.steps, seed=seed)
            tables.append(rows)
            print(f"\n(b) seed {seed} ({time.perf_counter() - start:.0f} s)")
            print(format_few_labels(rows), flush=True)
        if len(tables) > 1:
            print(f"\n(b) {args.model}: MNIST features -> Fashion-MNIST, {args.steps} steps per "
                  f"run, mean over seeds {args.seeds} (per-seed values in brackets)")
            print("| labelled images per class | training images | MNIST features (frozen) "
                  "| from scratch |\n|---|---|---|---|")
            for i, row in enumerate(tables[0]):
                k = "all" if row.per_class is None else row.per_class
                print(f"| {k} | {row.n_train} | {pct([t[i].pretrained for t in tables])} | "
                      f"{pct([t[i].scratch for t in tables])} |")


if __name__ == "__main__":
    main()
