"""Transfer learning with frozen convolution layers (the seed's "Feature generalization").

    python examples/study_transfer.py [--model tiny_cnn] [--steps 150] [--source-steps 300]

(a) train on digits 0-4, freeze the convolution layers, re-initialize and
    retrain the dense layers on digits 5-9; compare with the same network
    trained from scratch on 5-9 with the same number of steps.
(b) reuse the features of a network trained on all of MNIST (examples/common.py's
    cached run) for Fashion-MNIST with 15, 30, 60 and all labelled images per
    class, against training from scratch with the same number of steps.
Budgets are counted in Adam steps of 64 images; all runs are seeded.
"""
import argparse
import time

from common import test_images, train_images, trained_model

from minicnn.models import get_model
from minicnn.studies.transfer import digits_transfer, few_labels_transfer, format_few_labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny_cnn")
    ap.add_argument("--checkpoint", default=None, help="MNIST model for (b) (default: cached run)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs of the cached MNIST run for (b)")
    ap.add_argument("--steps", type=int, default=150, help="steps of each run on the new task")
    ap.add_argument("--source-steps", type=int, default=300, help="steps on digits 0-4 in (a)")
    ap.add_argument("--per-class", nargs="+", default=["15", "30", "60", "all"])
    ap.add_argument("--test", type=int, default=None, help="test images (default: all)")
    ap.add_argument("--skip", choices=["a", "b"], default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    def make(seed):
        return get_model(args.model, seed=seed)

    if args.skip != "a":
        start = time.perf_counter()
        result, _ = digits_transfer(make, train_images(data_dir=args.data_dir),
                                    test_images(args.test, args.data_dir), steps=args.steps,
                                    source_steps=args.source_steps, seed=args.seed)
        print(f"(a) {args.model}, {args.source_steps} steps on digits 0-4, then {args.steps} "
              f"steps on 5-9 ({time.perf_counter() - start:.0f} s)")
        print("| network | test accuracy |\n|---|---|")
        print(f"| source, digits 0-4 | {100 * result.pretrain:.2f}% |")
        print(f"| frozen 0-4 features + new dense layers, digits 5-9 | "
              f"{100 * result.transfer:.2f}% |")
        print(f"| from scratch, digits 5-9 | {100 * result.scratch:.2f}% |")

    if args.skip != "b":
        start = time.perf_counter()
        source = trained_model(args.model, args.checkpoint, args.data_dir, epochs=args.epochs)
        per_class = [None if k == "all" else int(k) for k in args.per_class]
        rows = few_labels_transfer(
            source, make, train_images(data_dir=args.data_dir, dataset="fashion-mnist"),
            test_images(args.test, args.data_dir, dataset="fashion-mnist"),
            per_class=per_class, steps=args.steps, seed=args.seed)
        print(f"\n(b) {args.model}: MNIST features -> Fashion-MNIST, {args.steps} steps per run "
              f"({time.perf_counter() - start:.0f} s)")
        print(format_few_labels(rows))


if __name__ == "__main__":
    main()
