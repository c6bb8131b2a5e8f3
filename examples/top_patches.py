"""The 9 training images that excite each unit of a lenet layer most, cropped to the
unit's receptive field, with each crop's deconvnet projection beside it.

    python examples/top_patches.py [--checkpoint model.npz] [--layers 2 5] [--n 60000]
                                   [--units 16] [--no-project] [--out figures]

Scans the whole training set (60,000 images) by default. The images stay uint8 as
loaded (47 MB); each batch is scaled and normalized on its own
(``minicnn.data.prepare_images``) and only the running top 9 per unit is kept, so
the scan's extra memory does not grow with ``--n``, only its time does. For each
layer it prints the wall time of the ``top_patches`` call (scan, crops and
projections) and two memory figures: the tracemalloc peak of the Python allocations
made during the call (NumPy arrays included; the loaded data set is not counted) and
the process's peak resident set size so far (``resource.getrusage`` ``ru_maxrss``,
which includes the loaded data set, the model and the interpreter). Writes
``top_patches_layer{L}.png`` for each layer.
"""
import argparse
import os
import resource
import time
import tracemalloc

from common import add_model_arguments, model_from_args, stored_images

from minicnn.data import MNIST_MEAN, MNIST_STD, prepare_images
from minicnn.viz.figures import plot_top_patches
from minicnn.viz.receptive import receptive_fields
from minicnn.viz.units import top_patches


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, "lenet", "; --layers counts lenet's layers", out="figures")
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 5],
                        help="layer indices (lenet: 2 = pool1, 6x6 fields; 5 = pool2, 16x16)")
    parser.add_argument("--n", type=int, default=None,
                        help="scan the first N training images (default: all 60,000)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per scanned batch")
    parser.add_argument("--units", type=int, default=16, help="units (channels) to draw")
    parser.add_argument("--k", type=int, default=9, help="images kept per unit")
    parser.add_argument("--no-project", action="store_true", help="skip deconvnet projections")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    model = model_from_args(args)
    images, _ = stored_images("train", args.data_dir)       # uint8 (60000, 28, 28)
    images = images[:args.n]                                 # a view, no copy
    print(f"scanning {len(images)} training images, {images.dtype} {images.shape[1:]}, "
          f"{images.nbytes / 2**20:.1f} MiB as loaded; batch {args.batch_size}")
    fields = receptive_fields(model)
    data_range = ((0 - MNIST_MEAN) / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD)
    for layer in args.layers:
        tracemalloc.start()
        start = time.perf_counter()
        top = top_patches(model, layer, images, k=args.k, batch_size=args.batch_size,
                          channels=range(args.units), project=not args.no_project,
                          prepare=prepare_images)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
        f = fields[layer]
        print(f"{f.name}: receptive field {f.size}, jump {f.jump}, start {f.start}; "
              f"scanned {len(images)} images in {seconds:.1f} s; tracemalloc peak during "
              f"the call {peak / 2**20:.1f} MiB; process peak RSS so far {rss:.0f} MiB")
        path = os.path.join(args.out, f"top_patches_layer{layer}.png")
        plot_top_patches(top, path, data_range=data_range)
        print("wrote", path)


if __name__ == "__main__":
    main()
