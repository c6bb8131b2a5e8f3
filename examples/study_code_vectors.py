"""Code vectors: the penultimate activations of a trained network, seen in 2-D and
read by other classifiers ("interpreters").

    python examples/study_code_vectors.py [--model lenet] [--epochs 1] [--n-train 10000]

Prints a table of test accuracies (the network itself, minicnn's softmax on the
codes, and scikit-learn's SVM / random forest / gradient boosting / decision
tree when installed) and writes out/code_vectors_pca_<model>.png.
"""
import argparse
import os
import time

from common import add_model_arguments, model_from_args, test_images, train_images

from minicnn.studies.codes import (INTERPRETERS, code_vectors, draw_code_pca, format_scores,
                                   interpreter_scores, pca)
from minicnn.studies.transfer import accuracy


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(ap, "lenet", "; lenet gives 1024-d codes, keras_cnn 256-d")
    ap.add_argument("--n-train", type=int, default=10000,
                    help="training codes for the interpreters (first N training images)")
    ap.add_argument("--n-test", type=int, default=None, help="test codes (default: all 10,000)")
    ap.add_argument("--softmax-epochs", type=int, default=10,
                    help="epochs of the softmax interpreter (default 10)")
    ap.add_argument("--only", nargs="+", default=list(INTERPRETERS), choices=INTERPRETERS,
                    help="interpreters to run (default all)")
    ap.add_argument("--threads", type=int, default=1, help="scikit-learn threads (0: its default)")
    args = ap.parse_args()

    model = model_from_args(args)
    x_train, y_train = train_images(args.n_train, args.data_dir)
    x_test, y_test = test_images(args.n_test, args.data_dir)
    net_acc = accuracy(model, x_test, y_test)
    start = time.perf_counter()
    c_train, c_test = code_vectors(model, x_train), code_vectors(model, x_test)
    print(f"{args.model}: codes of {len(c_train)} training and {len(c_test)} test images, "
          f"{c_train.shape[1]} numbers each ({time.perf_counter() - start:.0f} s); "
          f"{100 * (c_test > 0).mean():.0f}% of code entries are non-zero")

    p = pca(c_test, k=2)
    print(f"PCA: the 2 axes hold {100 * p.ratio.sum():.1f}% of the variance "
          f"({100 * p.ratio[0]:.1f}% + {100 * p.ratio[1]:.1f}%)")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"code_vectors_pca_{args.model}.png")
    draw_code_pca(p.transform(c_test), y_test, path=path,
                  title=f"{args.model}: {c_test.shape[1]}-d test codes on 2 principal axes "
                        f"({100 * p.ratio.sum():.0f}% of variance)")
    print("wrote", path)

    scores = []
    for name in args.only:          # one at a time, to show progress (SVM and boosting are slow)
        scores += interpreter_scores(c_train, y_train, c_test, y_test, names=[name],
                                     softmax_epochs=args.softmax_epochs,
                                     threads=args.threads or None)
        s = scores[-1]
        print(f"  {name}: " + (s.note if s.accuracy is None else
                               f"{100 * s.accuracy:.2f}% ({s.seconds:.0f} s)"), flush=True)
    print()
    print(format_scores(scores, network_accuracy=net_acc))


if __name__ == "__main__":
    main()
