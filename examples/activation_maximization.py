"""Images that a trained lenet's class logits and conv units like most, by gradient
ascent from noise with Yosinski et al.'s regularizers (decay, blur, clipping, jitter).

    python examples/activation_maximization.py [--steps 200] [--out figures]

Writes ``maximize_classes_std.png`` and ``maximize_classes_laplacian.png`` (the
ten digits' logits, plain and with Laplacian-pyramid gradient normalization) and
``maximize_conv2_units.png`` (the centre unit of the first conv2 channels).
"""
import argparse
import os

from common import add_model_arguments, model_from_args

from minicnn.data import MNIST_MEAN, MNIST_STD
from minicnn.viz.figures import plot_images
from minicnn.viz.maximize import maximize


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, "lenet", out="figures")
    parser.add_argument("--steps", type=int, default=200, help="gradient ascent steps per image")
    parser.add_argument("--units", type=int, default=10, help="conv2 channels to render")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    model = model_from_args(args)
    # the pixel range of normalized MNIST: keeps the images drawable as digits
    settings = dict(steps=args.steps, lr=0.05, decay=0.005, blur_every=4, blur_sigma=0.5,
                    norm_pct=20, contrib_pct=20, jitter=1,
                    value_range=((0 - MNIST_MEAN) / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD))
    for normalize in ("std", "laplacian"):
        results = [maximize(model, digit, normalize=normalize, **settings) for digit in range(10)]
        for r in results:
            print(f"{normalize:9s} class {r.channel}: logit {r.objective[0]:7.2f} -> "
                  f"{r.objective[-1]:7.2f}")
        path = os.path.join(args.out, f"maximize_classes_{normalize}.png")
        plot_images([r.image for r in results], path,
                    titles=[f"{r.channel}: {r.objective[-1]:.1f}" for r in results],
                    title=f"class logits ({normalize} gradient normalization)")
        print("wrote", path)
    conv2 = [i for i, layer in enumerate(model.layers) if type(layer).__name__ == "Conv2D"][1]
    units = [maximize(model, c, layer=conv2, **settings) for c in range(args.units)]
    path = os.path.join(args.out, "maximize_conv2_units.png")
    plot_images([r.image for r in units], path, titles=[f"unit {r.channel}" for r in units],
                title=f"conv2 (layer {conv2}) centre units")
    print("wrote", path)


if __name__ == "__main__":
    main()
