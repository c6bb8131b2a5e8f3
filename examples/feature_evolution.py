"""How lenet's first-layer filters (and what its units like) develop during training.

    python examples/feature_evolution.py [--epochs 1 2 5 10] [--train-subset 6000]

Trains a fresh model, snapshots layer ``--layer`` at epoch 0 and at each chosen
epoch with a ``FeatureEvolution`` callback, and writes ``feature_evolution.png``.
A full 60,000-image lenet epoch takes many minutes on a CPU: ``--train-subset``
keeps the demonstration short. The training run goes to a temporary folder that is
removed at the end, unless ``--run-dir`` names a folder to keep it in (its
``model.npz`` then serves as ``--checkpoint`` for the other examples).
"""
import argparse
import os
import tempfile

from minicnn.data import MNIST_MEAN, MNIST_STD, load_dataset
from minicnn.training import TrainConfig, Trainer
from minicnn.viz.evolution import FeatureEvolution
from minicnn.viz.figures import plot_evolution


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="folder holding mnist/ (default: MINICNN_DATA)")
    parser.add_argument("--out", default="figures", help="folder for the PNG files")
    parser.add_argument("--model", default="lenet", help="model to train (default lenet)")
    parser.add_argument("--layer", type=int, default=0, help="layer to follow (lenet: 0 conv1)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 2, 5, 10],
                        help="epochs to snapshot (training runs to the last)")
    parser.add_argument("--train-subset", type=int, default=6000,
                        help="train on the first N training images (default 6000)")
    parser.add_argument("--test-subset", type=int, default=2000,
                        help="evaluate on the first N test images (default 2000)")
    parser.add_argument("--units", type=int, default=8, help="units to render by maximization")
    parser.add_argument("--steps", type=int, default=100,
                        help="gradient ascent steps of each unit's maximization (default 100)")
    parser.add_argument("--device", default="cpu", help="cpu or gpu (default cpu)")
    parser.add_argument("--run-dir", help="keep the training run here (default: a temporary "
                                          "folder, removed at the end)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    value_range = ((0 - MNIST_MEAN) / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD)
    callback = FeatureEvolution(args.layer, epochs=(0, *args.epochs),
                                maximize_channels=tuple(range(args.units)),
                                maximize_kwargs=dict(steps=args.steps, value_range=value_range))
    config = TrainConfig(model=args.model, epochs=max(args.epochs),
                         train_subset=args.train_subset, test_subset=args.test_subset)
    train, test = load_dataset("mnist", args.data_dir)
    with tempfile.TemporaryDirectory(prefix="evolution-") as scratch:
        run_dir = args.run_dir or scratch
        trainer = Trainer(config, train, test, run_dir, device=args.device, callbacks=[callback])
        callback(0, trainer.model)      # the initial weights; fit() calls it after each epoch
        trainer.fit()
    path = os.path.join(args.out, "feature_evolution.png")
    plot_evolution(callback, path)
    print("wrote", path)
    if args.run_dir:
        print(f"the trained model is in {run_dir} (--checkpoint for the other examples)")


if __name__ == "__main__":
    main()
