"""The last dense layer of tiny_cnn as a library of 16 features, for one test digit.

    python examples/study_dense_features.py [--index 0] [--epochs 1] [--rule deconvnet]

Prints the 16 signals, each class's logit (= sum of contributions + bias) and
probability, the signals that push toward and against the predicted class,
and where the strongest signal's strongest inputs look; writes
out/dense_features_<index>.png.
"""
import argparse
import os

from common import add_model_arguments, model_from_args, test_images

from minicnn.studies.features import analyze_dense_features, draw_dense_features
from minicnn.studies.transfer import accuracy


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "tiny_cnn")
    ap.add_argument("--index", type=int, nargs="+", default=[0], help="test image(s)")
    ap.add_argument("--rule", default="gradient", choices=["gradient", "deconvnet", "guided"],
                    help="backward rule of the signal's input map (default gradient)")
    args = ap.parse_args()

    model = model_from_args(args)
    images, labels = test_images(data_dir=args.data_dir)
    print(f"{args.model}: test accuracy {100 * accuracy(model, images, labels):.2f}%")
    os.makedirs(args.out, exist_ok=True)
    for index in args.index:
        r = analyze_dense_features(model, images[index], rule=args.rule)
        k = r.predicted
        print(f"\ntest image {index}: label {labels[index]}, predicted {k} "
              f"(p = {r.probabilities[k]:.3f})")
        print("signals s:", " ".join(f"{v + 0.0:.2f}" for v in r.signals))  # +0.0: no "-0.00"
        for c in range(len(r.logits)):
            print(f"  class {c}: logit {r.logits[c]:+7.2f} = sum_j s_j W[{c},j] "
                  f"{r.contributions[c].sum():+7.2f} + bias {r.bias[c]:+.2f}   "
                  f"p = {r.probabilities[c]:.3f}")
        toward, against = r.pushes(k)
        print(f"toward {k}: " + ", ".join(f"s{j} {c:+.2f}" for j, c in toward))
        print(f"against {k}: " + ", ".join(f"s{j} {c:+.2f}" for j, c in against))
        print(f"strongest signal s{r.signal} = {r.signals[r.signal]:.2f}; its push s_j W[c,j] "
              f"on each class c: " + " ".join(f"{c}:{v:+.2f}" for c, v in
                                              enumerate(r.contributions[:, r.signal])))
        print("its strongest inputs:")
        for t in r.inputs:
            b = t.box
            print(f"  pooled channel {t.pooled[0]} at {t.pooled[1:]} (+{t.contribution:.2f}) <- "
                  f"max-pool switch: conv unit at {t.conv}, sees input rows {b.top}:{b.bottom}, "
                  f"cols {b.left}:{b.right}")
        path = os.path.join(args.out, f"dense_features_{index}.png")
        draw_dense_features(r, path=path)
        print("wrote", path)


if __name__ == "__main__":
    main()
