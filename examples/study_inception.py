"""1x1 convolutions and Inception: GoogLeNet's size and cost beside AlexNet and VGG-19.

    python examples/study_inception.py [--table-only] [--models alexnet vgg19 googlenet]

Prints GoogLeNet's summary() (one row per Inception module, with its nested
parameter counts) and a table of parameters and multiply-accumulates (MACs)
per 224x224x3 image for the three networks. Building VGG-19 allocates ~0.6 GB.
"""
import argparse

from minicnn import models

SEED_PAPER = {"alexnet": "60 M params (Krizhevsky et al.)", "vgg19": "143.7 M, 19.6 G MACs (issue 2)",
              "googlenet": "6.8 M, 1.5 G ops (issue 7; Szegedy et al. Table 1 column sums)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table-only", action="store_true", help="skip GoogLeNet's full summary")
    ap.add_argument("--models", nargs="+", choices=list(SEED_PAPER), default=list(SEED_PAPER),
                    help="the networks of the table (default all three)")
    args = ap.parse_args()
    rows = []
    for name in args.models:
        s = models.get_model(name).summary()
        if name == "googlenet" and not args.table_only:
            print(s, end="\n\n")
        rows.append((name, s.params, s.macs))
    print("| model | parameters | MACs per image | published |")
    print("|---|---:|---:|---|")
    for name, params, macs in rows:
        print(f"| {name} | {params:,} ({params / 1e6:.1f} M) | {macs:,} ({macs / 1e9:.2f} G) "
              f"| {SEED_PAPER[name]} |")


if __name__ == "__main__":
    main()
