"""DeepDream on MNIST digits: amplify what a lenet layer already sees, over octaves.

    python examples/deepdream.py [--layer 3] [--octaves 3] [--steps 20] [--out figures]

Writes ``deepdream_layer{L}.png``: each test image above its dream.
"""
import argparse
import os

import numpy as np
from common import add_model_arguments, model_from_args, test_images

from minicnn.data import MNIST_MEAN, MNIST_STD
from minicnn.viz.figures import plot_images
from minicnn.viz.maximize import deepdream


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, "lenet", "; --layer counts lenet's layers", out="figures")
    parser.add_argument("--layer", type=int, default=3, help="lenet: 0 conv1, 3 conv2, 5 pool2")
    parser.add_argument("--images", type=int, default=6, help="test digits to dream on")
    parser.add_argument("--octaves", type=int, default=3, help="image scales, coarse to fine")
    parser.add_argument("--steps", type=int, default=20, help="gradient ascent steps per octave")
    parser.add_argument("--lr", type=float, default=0.05, help="step size")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    model = model_from_args(args)
    images, labels = test_images(args.images, args.data_dir)
    value_range = ((0 - MNIST_MEAN) / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD)
    dreams = [deepdream(model, image, args.layer, steps=args.steps, lr=args.lr,
                        octaves=args.octaves, value_range=value_range) for image in images]
    for label, d in zip(labels, dreams):
        print(f"digit {label}: 0.5*sum(act^2) {d.objective[0]:9.1f} -> {d.objective[-1]:9.1f}")
    both = np.concatenate([images, np.stack([d.image for d in dreams])])
    titles = [f"digit {y}" for y in labels] + ["dream"] * len(dreams)
    path = os.path.join(args.out, f"deepdream_layer{args.layer}.png")
    plot_images(both, path, titles=titles, ncols=len(images),
                title=f"DeepDream, layer {args.layer}, {args.octaves} octaves")
    print("wrote", path)


if __name__ == "__main__":
    main()
