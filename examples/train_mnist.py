"""Train a model on MNIST from Python instead of the ``minicnn`` command.

    python examples/train_mnist.py --data-dir ../shared/data --epochs 2

The same run as ``minicnn train --model lenet --epochs 2 --out runs/example``;
this shows the three objects involved: a config, the data, the Trainer. To step
through the kernels in a debugger (``NUMBA_DISABLE_JIT=1``, see docs/how-to/debugger.md), train
on a few images: ``--train-subset 64 --test-subset 64``.
"""
import argparse

from minicnn.data import load_mnist
from minicnn.training import TrainConfig, Trainer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="folder holding mnist/ (default: $MINICNN_DATA)")
    parser.add_argument("--model", default="lenet", help="model to train (default lenet)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs (default 2)")
    parser.add_argument("--train-subset", type=int, metavar="N",
                        help="train on the first N training images (default all 60,000)")
    parser.add_argument("--test-subset", type=int, metavar="N",
                        help="test on the first N test images (default all 10,000)")
    parser.add_argument("--device", default="cpu", help="cpu or gpu (default cpu)")
    parser.add_argument("--out", default="runs/example",
                        help="run folder for checkpoints and metrics (default runs/example)")
    args = parser.parse_args()

    config = TrainConfig(model=args.model, epochs=args.epochs, batch_size=64, lr=1e-3, seed=0,
                         train_subset=args.train_subset, test_subset=args.test_subset)
    train_data, test_data = load_mnist(root=args.data_dir)   # uint8 (N, 28, 28), int64 (N,)
    trainer = Trainer(config, train_data, test_data, args.out, device=args.device)
    for record in trainer.fit():                              # one record per epoch
        print(f"epoch {record['epoch']}: test accuracy {100 * record['test_acc']:.2f}%")


if __name__ == "__main__":
    main()
