"""Draw a trained lenet's conv filters and every layer's feature maps for one test image.

    python examples/filters_and_feature_maps.py [--checkpoint model.npz] [--out figures]

Writes ``filters_conv1.png`` (one tile per 5x5 filter), ``filters_conv2.png``
(a row per output channel, a column per input channel; both on a symmetric
grey scale, 0 = mid-grey) and ``feature_maps.png``.
"""
import argparse
import os

from common import add_model_arguments, model_from_args, test_images

from minicnn.viz.figures import plot_feature_maps, plot_filters
from minicnn.viz.units import conv_filters, feature_maps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, "lenet", out="figures")
    parser.add_argument("--index", type=int, default=0, help="which test image")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    model = model_from_args(args)
    convs = [i for i, layer in enumerate(model.layers) if type(layer).__name__ == "Conv2D"]
    for n, i in enumerate(convs, start=1):
        path = os.path.join(args.out, f"filters_conv{n}.png")
        plot_filters(conv_filters(model, i), path, title=f"conv{n} (layer {i}) weights")
        print("wrote", path)
    images, labels = test_images(args.index + 1, args.data_dir)
    maps = feature_maps(model, images[args.index])
    for m in maps:
        print(f"  {m.name:14s} {str(m.shape):16s} max {m.activation.max():8.3f}")
    path = os.path.join(args.out, "feature_maps.png")
    plot_feature_maps(maps, path, image=images[args.index])
    print("wrote", path)


if __name__ == "__main__":
    main()
