"""Pixelwise classification by patches: the class of the 28x28 patch around every
pixel of a scene of MNIST digits, computed fully convolutionally.

    python examples/study_segmentation.py [--model tiny_cnn] [--size 84 84] [--digits 5]

The fast map needs valid (unpadded) convolutions to equal the patch-by-patch
one exactly; tiny_cnn has them. With --compare the patch-by-patch map is also
computed and the largest difference and both timings printed. Timings are the
median of --repeat calls after one untimed call (the first call of a process
also compiles the Numba kernels). Writes out/segmentation_<model>.png.
"""
import argparse
import os
import statistics
import time

import numpy as np
from common import add_model_arguments, model_from_args, test_images

from minicnn.studies.segmentation import (class_map, digit_scene, draw_class_map, map_scores,
                                          patch_outputs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "tiny_cnn")
    ap.add_argument("--size", type=int, nargs=2, default=(84, 84), metavar=("H", "W"),
                    help="the scene's size in pixels (default 84 84)")
    ap.add_argument("--digits", type=int, default=5, help="test digits placed in the scene")
    ap.add_argument("--threshold", type=float, default=0.9,
                    help="winning probability below this is 'background / low confidence'")
    ap.add_argument("--seed", type=int, default=0,
                    help="seeds which digits are drawn and where they go")
    ap.add_argument("--compare", action="store_true", help="also run patch by patch")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per method (median)")
    args = ap.parse_args()

    model = model_from_args(args)
    images, labels = test_images(1000, args.data_dir)
    canvas, truth = digit_scene(images, labels, args.size, args.digits, seed=args.seed)
    background = float(images.min())

    def timed(method):
        out = patch_outputs(model, canvas, pad_value=background, method=method)  # warm-up
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            patch_outputs(model, canvas, pad_value=background, method=method)
            times.append(time.perf_counter() - start)
        return out, statistics.median(times), times

    out, fast_s, fast_all = timed("fast")
    h, w = args.size
    print(f"{args.model}: {h}x{w} scene, {args.digits} digits "
          f"({sorted(int(v) for v in set(truth.ravel()) - {-1})}); {h * w} patches in "
          f"{fast_s:.3f} s (fast, median of {' '.join(f'{t:.3f}' for t in fast_all)})")
    if args.compare:
        slow, slow_s, slow_all = timed("patches")
        print(f"patch by patch: {slow_s:.3f} s (median of {' '.join(f'{t:.3f}' for t in slow_all)}"
              f"), {slow_s / fast_s:.1f}x the fast map; largest difference "
              f"{float(np.abs(out - slow).max()):.2e}")
    labels_map, conf = class_map(out, args.threshold)
    for threshold in (0.5, 0.9, 0.99):
        scores = map_scores(class_map(out, threshold)[0][0], truth)
        print(f"threshold {threshold}: ink pixels labelled with their digit "
              f"{100 * scores['ink']:.1f}%, non-ink pixels labelled background "
              f"{100 * scores['background']:.1f}%")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"segmentation_{args.model}.png")
    draw_class_map(canvas, labels_map[0], conf[0], path,
                   title=f"class of the 28x28 patch around each pixel (p < {args.threshold}: bg)")
    print("wrote", path)


if __name__ == "__main__":
    main()
