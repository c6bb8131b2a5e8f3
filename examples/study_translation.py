"""Translation test: shift test digits by -5..+5 pixels in x and y and watch the
probability of the true class and of the winner, for a CNN and for classifiers on raw pixels.

    python examples/study_translation.py [--model lenet] [--n 2000] [--sklearn]

Prints markdown tables per shift: accuracy, mean probability of the true class
(p_true) and of the winning class (p_win), averaged over the digits, and p_true
and p_win for one digit (--digit); writes out/translation_<model>.png.
"""
import argparse
import os
import time

from common import add_model_arguments, model_from_args, test_images, train_images

from minicnn.studies.translation import (SHIFTS, draw_translation, format_table, pixel_softmax,
                                         sklearn_classifier, translation_curves)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "lenet")
    ap.add_argument("--n", type=int, default=2000, help="test digits to average over")
    ap.add_argument("--n-train", type=int, default=60000, help="training images, pixel classifiers")
    ap.add_argument("--softmax-epochs", type=int, default=5,
                    help="epochs of the softmax on pixels (default 5)")
    ap.add_argument("--sklearn", action="store_true", help="add a random forest on raw pixels")
    ap.add_argument("--digit", type=int, default=0, help="index of the single digit followed")
    args = ap.parse_args()

    cnn = model_from_args(args)
    x_test, y_test = test_images(args.n, args.data_dir)
    x_train, y_train = train_images(args.n_train, args.data_dir)
    start = time.perf_counter()
    classifiers = {args.model: cnn,
                   "softmax on pixels": pixel_softmax(x_train, y_train, 10, args.softmax_epochs)}
    print(f"softmax on pixels: trained on {len(x_train)} images, {args.softmax_epochs} epochs "
          f"({time.perf_counter() - start:.0f} s)")
    if args.sklearn:
        start = time.perf_counter()
        forest = sklearn_classifier("random_forest", x_train, y_train)
        if forest is None:
            print("scikit-learn is not installed: random forest skipped")
        else:
            classifiers["random forest on pixels"] = forest
            print(f"random forest on pixels (100 trees): trained on {len(x_train)} images "
                  f"({time.perf_counter() - start:.0f} s)")
    curves, single = {}, {}
    one = slice(args.digit, args.digit + 1)
    for name, clf in classifiers.items():
        curves[name] = tuple(translation_curves(clf, x_test, y_test, axis) for axis in "xy")
        single[name] = tuple(translation_curves(clf, x_test[one], y_test[one], axis)
                             for axis in "xy")
    print(f"\naccuracy (%) on {len(x_test)} test digits shifted by s pixels along x or y")
    print(format_table(curves, "accuracy"))
    unshifted = list(SHIFTS).index(0)
    for name in classifiers:
        print(f"{name}: unshifted test accuracy {100 * curves[name][0].accuracy[unshifted]:.1f}% "
              f"on these {len(x_test)} digits")
    print("\nmean probability of the true class, p_true (%)")
    print(format_table(curves, "p_true"))
    print("\nmean probability of the winning class, p_win (%)")
    print(format_table(curves, "p_win"))
    digit = f"test index {args.digit}, a {int(y_test[args.digit])}"
    print(f"\none digit ({digit}): p_true (%)")
    print(format_table(single, "p_true"))
    print(f"\none digit ({digit}): p_win (%)")
    print(format_table(single, "p_win"))
    for name, (x_curve, y_curve) in single.items():
        print(f"{name}, winning class for shifts {SHIFTS[0]}..{SHIFTS[-1]}: "
              f"x {x_curve.winners[:, 0].tolist()}, y {y_curve.winners[:, 0].tolist()}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"translation_{args.model}.png")
    draw_translation(curves, single, path)
    print("wrote", path)


if __name__ == "__main__":
    main()
