"""The misclassification gallery: every test error of a trained model in one figure.

    python examples/study_gallery.py [--model lenet5] [--epochs 1] [--checkpoint model.npz]

Writes out/gallery_<model>.png (each tile titled true->predicted, the count in
the title) and prints the error count and the most confused pairs.
"""
import argparse
import os

from common import add_model_arguments, model_from_args, test_images

from minicnn.studies.gallery import (confused_pairs, draw_gallery, format_pairs, misclassified,
                                     predict_proba)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "lenet5")
    ap.add_argument("--top", type=int, default=10, help="confused pairs to list")
    ap.add_argument("--n", type=int, default=None,
                    help="only the first N test images (default all 10,000)")
    args = ap.parse_args()

    model = model_from_args(args)
    images, labels = test_images(args.n, args.data_dir)
    errors = misclassified(predict_proba(model, images), labels)
    print(f"{args.model}: {errors.count} errors of {errors.total} test images "
          f"({100 * errors.error_rate:.2f}%; the seed's LeNet5: 82)")
    print(format_pairs(confused_pairs(errors, args.top)))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"gallery_{args.model}.png")
    draw_gallery(images, errors, path, title=f"the {errors.count} test errors of {args.model} "
                 f"({100 * errors.error_rate:.2f}%), true->predicted")
    print("wrote", path)


if __name__ == "__main__":
    main()
