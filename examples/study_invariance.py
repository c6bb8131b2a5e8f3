"""Pooling and local translation invariance: shift digits by 1-2 pixels and compare
the map entering a max-pool layer (conv + ReLU) with the map leaving it.

    python examples/study_invariance.py [--model lenet] [--n 1000]

Prints, per pooling layer and shift, how much the maps change at fixed units
and writes out/invariance_<model>.png for one digit.
"""
import argparse
import os

import numpy as np
from common import add_model_arguments, model_from_args, test_images

from minicnn.layers import MaxPool2D
from minicnn.studies.invariance import draw_invariance, pooling_invariance
from minicnn.studies.translation import shift_images


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "lenet")
    ap.add_argument("--n", type=int, default=1000, help="test digits to average over")
    ap.add_argument("--digit", type=int, default=0, help="index of the digit drawn")
    args = ap.parse_args()

    model = model_from_args(args)
    images, _ = test_images(args.n, args.data_dir)
    pools = [i for i, layer in enumerate(model.layers) if isinstance(layer, MaxPool2D)]
    print(f"{args.model}, {len(images)} test digits; relative change ||after - before|| / "
          f"||before|| at fixed units, and the fraction of units unchanged")
    print("| pool layer | shift (dy, dx) | conv map change | conv map change after moving "
          "it with the image | pooled change | conv units unchanged | pooled units unchanged |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for pool in pools:
        for shift in [(0, 1), (1, 1), (0, 2), (2, 2)]:
            r = pooling_invariance(model, images, shift, pool=pool)
            # after the first pool a 1-pixel shift is a fraction of a map pixel: no "moved" map
            moved = "-" if np.isnan(r.conv_moved) else f"{100 * r.conv_moved:.1f}%"
            print(f"| {pool} | {shift} | {100 * r.conv_change:.1f}% | {moved} "
                  f"| {100 * r.pooled_change:.1f}% | {100 * r.conv_unchanged:.1f}% "
                  f"| {100 * r.pooled_unchanged:.1f}% |")
    one = images[args.digit:args.digit + 1]
    r = pooling_invariance(model, one, (0, 1), pool=pools[0])
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"invariance_{args.model}.png")
    draw_invariance(one[0], shift_images(one, 0, 1, float(one.min()))[0], r, path=path)
    print("wrote", path)


if __name__ == "__main__":
    main()
