"""Which pixels decide a trained lenet's answer: for a few test digits, the image,
saliency, deconvnet, guided backprop, occlusion and Grad-CAM side by side.

    python examples/attribution_figure.py [--checkpoint model.npz] [--n 5] [--out PATH]

Every map explains the predicted class's pre-softmax logit, except occlusion,
which shows how much the predicted class's probability drops while a square
slides over the image, ``p(x) - p(x occluded)`` (red = covering that part hurts
the prediction; each panel on its own scale, its colour bar in probability). On
MNIST the square is black by default (it erases strokes); ``--fill gray`` uses
each image's mean, as Zeiler & Fergus's gray square on photographs.
"""
import argparse
import os
import time

import numpy as np
from common import add_model_arguments, model_from_args, test_images

from minicnn.data import MNIST_MEAN, MNIST_STD
from minicnn.viz.attribution import deconvnet, guided_backprop, saliency
from minicnn.viz.cam import grad_cam
from minicnn.viz.occlusion import occlusion
from minicnn.viz.plotting import attribution_grid
from minicnn.viz.targets import class_probabilities

CAM_LAYER = 4          # lenet: the ReLU after the second conv (64 maps of 14x14)


BLACK = (0.0 - MNIST_MEAN) / MNIST_STD     # pixel value 0 after the training normalization


def attribution_columns(model, images, occluder=7, stride=2, fill=BLACK):
    """``(title, maps, drawing options)`` for each method, explaining the predicted class."""
    probabilities = class_probabilities(model, images)
    predicted = probabilities.argmax(axis=1)
    p = probabilities[np.arange(len(images)), predicted][:, None, None, None]
    drop = p - occlusion(model, images, predicted, occluder, stride, fill=fill)
    return predicted, [
        ("saliency |grad|", saliency(model, images, predicted, abs=True), {"sign": "absolute"}),
        ("deconvnet", deconvnet(model, images, predicted), {"sign": "all"}),
        ("guided backprop", guided_backprop(model, images, predicted), {"sign": "all"}),
        (f"occlusion {occluder}x{occluder}", drop,                 # each on its own scale
         {"outlier_perc": 0, "colorbar": "panel", "label": "p - p(occluded)"}),
        ("Grad-CAM", grad_cam(model, images, predicted, CAM_LAYER),
         {"sign": "positive", "method": "overlay", "cmap": "jet", "alpha": 0.5}),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, "lenet", "; CAM_LAYER counts lenet's layers",
                        out="figures/attribution.png", out_help="the PNG to write")
    parser.add_argument("--n", type=int, default=5, help="test digits (rows)")
    parser.add_argument("--occluder", type=int, default=7, help="occluding square's side")
    parser.add_argument("--stride", type=int, default=2, help="occluder step in pixels")
    parser.add_argument("--fill", choices=["black", "gray"], default="black",
                        help="occluder: black (background) or gray (the image's mean)")
    args = parser.parse_args()

    model = model_from_args(args)
    images, labels = test_images(args.n, args.data_dir)
    start = time.perf_counter()
    predicted, columns = attribution_columns(model, images, args.occluder, args.stride,
                                             BLACK if args.fill == "black" else None)
    print(f"{len(columns)} maps for {args.n} images in {time.perf_counter() - start:.1f} s")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    rows = [f"label {y}, pred {p}" for y, p in zip(labels, predicted)]
    attribution_grid(images, columns, path=args.out, row_labels=rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
