"""One MNIST training epoch in PyTorch with ``minicnn train``'s recipe, for ``epoch.py``.

The same network and initial weights as ``minicnn train --model M --init glorot --seed S``
(``minicnn.models.get_model(M, seed=S, init="glorot")`` copied by ``engines.torch_model``),
the same arrays in memory (``minicnn.data.load_data``, the first N images of each split)
and the same normalization (``minicnn.data.prepare_images``: /255, then MNIST's mean and
std), done once for the whole split, as a PyTorch script would. Then:

- train: ``torch.optim.Adam(lr)``, batch ``--batch-size``, a fresh permutation every epoch
  (``torch.randperm``, seeded), dropout in train mode, softmax cross-entropy; the mean loss
  and the correct count are summed as tensors, as minicnn's trainer does;
- evaluate: the whole test subset in eval mode (no dropout, ``torch.inference_mode``), in
  batches of ``--eval-batch-size`` (minicnn's ``TrainConfig.eval_batch_size``).

Prints one line of wall seconds (imports, minicnn's among them / load / train / evaluate)
and the test accuracy, then ``RESULT {json}`` for ``epoch.py``. "load" is reading and
normalizing the data and building the network and the optimizer (PyTorch's first
optimizer loads more of torch: seconds on a loaded machine). Thread counts come from the
environment (epoch.py sets them) and ``--threads`` (``torch.set_num_threads``).

    python benchmarks/torch_epoch.py --threads 2
    python benchmarks/torch_epoch.py --train-subset 6400 --test-subset 2000 --threads 1
"""
import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

try:
    import torch
except ImportError:
    sys.exit("torch_epoch.py: PyTorch not installed (pip install torch)")

TORCH_IMPORTED = time.perf_counter()
# minicnn (NumPy, Numba) only for the same data, normalization and initial weights: a plain
# PyTorch script would not pay for this import, so its seconds are reported apart.
from engines import torch_model  # noqa: E402

from minicnn.data import load_data, prepare_images  # noqa: E402
from minicnn.models import get_model  # noqa: E402
from minicnn.training.config import TrainConfig  # noqa: E402

MINICNN_IMPORT_S = time.perf_counter() - TORCH_IMPORTED


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="lenet")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default=None, help="(default: $MINICNN_DATA, then the cache)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--eval-batch-size", type=int, default=TrainConfig.eval_batch_size)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-subset", type=int, default=None, metavar="N")
    p.add_argument("--test-subset", type=int, default=None, metavar="N")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    return p.parse_args(argv)


def as_tensors(x, y):
    """uint8 ``(N, 28, 28)`` and int labels -> float32 ``(N, 1, 28, 28)`` normalized
    as minicnn's batches are, and int64 ``(N,)``."""
    return torch.from_numpy(prepare_images(x)), torch.from_numpy(y.astype("int64"))


def train_epoch(net, opt, x, y, batch_size, gen):
    """One shuffled epoch; returns the mean training loss and accuracy."""
    net.train()
    loss_fn = torch.nn.CrossEntropyLoss()
    total, correct = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.int64)
    order = torch.randperm(len(y), generator=gen)
    for i in range(0, len(y), batch_size):
        idx = order[i:i + batch_size]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        logits = net(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        opt.step()
        total += loss.detach() * len(yb)
        correct += (logits.detach().argmax(dim=1) == yb).sum()
    return float(total) / len(y), int(correct) / len(y)


def evaluate(net, x, y, batch_size):
    """Test accuracy of ``net`` in eval mode."""
    net.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(y), batch_size):
            correct += int((net(x[i:i + batch_size]).argmax(dim=1) == y[i:i + batch_size]).sum())
    return correct / len(y)


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    imports_s = time.perf_counter() - START
    start = time.perf_counter()
    (x, y), (xt, yt) = load_data(args.dataset, args.data_dir)
    n, nt = args.train_subset, args.test_subset
    x, y = as_tensors(x[:n], y[:n])
    xt, yt = as_tensors(xt[:nt], yt[:nt])
    net = torch_model(get_model(args.model, seed=args.seed, init="glorot"))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    load_s = time.perf_counter() - start
    train_s = evaluate_s = 0.0
    for epoch in range(args.epochs):
        start = time.perf_counter()
        loss, train_acc = train_epoch(net, opt, x, y, args.batch_size, gen)
        train_s += time.perf_counter() - start
        start = time.perf_counter()
        test_acc = evaluate(net, xt, yt, args.eval_batch_size)
        evaluate_s += time.perf_counter() - start
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss:.4f}  train acc "
              f"{100 * train_acc:.2f}%  test acc {100 * test_acc:.2f}% ({len(yt)} images)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: imports "
          f"{imports_s:.2f} s (minicnn's {MINICNN_IMPORT_S:.2f}), load {load_s:.2f} s, "
          f"train {train_s:.2f} s "
          f"({args.epochs * len(y) / train_s:.0f} images/s), evaluate {evaluate_s:.2f} s; "
          f"test accuracy {100 * test_acc:.2f}%")
    print("RESULT " + json.dumps(dict(
        torch=torch.__version__, threads=torch.get_num_threads(), train_images=len(y),
        test_images=len(yt), imports_s=imports_s, minicnn_import_s=MINICNN_IMPORT_S,
        load_s=load_s, train_s=train_s, evaluate_s=evaluate_s,
        images_per_s=args.epochs * len(y) / train_s, loss=loss, train_acc=train_acc,
        test_acc=test_acc)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
