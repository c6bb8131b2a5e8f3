"""The 9 training images that excite each unit of a lenet layer most, cropped to the
unit's receptive field, with each crop's deconvnet projection beside it.

    python examples/top_patches.py [--layer 5] [--n 10000] [--units 16] [--no-project]

Only the running top 9 per unit is kept while scanning, so ``--n 60000`` (the
whole training set) needs no more memory than ``--n 1000``, just more time.
"""
import argparse
import os
import time

from common import train_images, trained_model
from minicnn.data import MNIST_MEAN, MNIST_STD
from minicnn.viz.figures import plot_top_patches
from minicnn.viz.receptive import receptive_fields
from minicnn.viz.units import top_patches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a model.npz from minicnn.save_model (default: train)")
    parser.add_argument("--data-dir", help="folder holding mnist/ (default: MINICNN_DATA)")
    parser.add_argument("--out", default="figures", help="folder for the PNG files")
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 5],
                        help="layer indices (lenet: 2 = pool1, 6x6 fields; 5 = pool2, 16x16)")
    parser.add_argument("--n", type=int, default=10000, help="training images to scan (max 60000)")
    parser.add_argument("--units", type=int, default=16, help="units (channels) to draw")
    parser.add_argument("--k", type=int, default=9)
    parser.add_argument("--no-project", action="store_true", help="skip deconvnet projections")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    model = trained_model("lenet", args.checkpoint, args.data_dir)
    images, _ = train_images(args.n, args.data_dir)
    fields = receptive_fields(model)
    data_range = ((0 - MNIST_MEAN) / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD)
    for layer in args.layers:
        start = time.perf_counter()
        top = top_patches(model, layer, images, k=args.k, channels=range(args.units),
                          project=not args.no_project)
        f = fields[layer]
        print(f"{f.name}: receptive field {f.size}, jump {f.jump}, start {f.start}; "
              f"scanned {len(images)} images in {time.perf_counter() - start:.1f} s")
        path = os.path.join(args.out, f"top_patches_layer{layer}.png")
        print("wrote", plot_top_patches(top, path, data_range=data_range))


if __name__ == "__main__":
    main()
