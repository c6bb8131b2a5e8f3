"""An experiment: a training step's batch split over two threads, a model copy each.

The fast engine spreads one kernel at a time over the threads, and only kernels above
``kernels.threads.MIN_PARALLEL_SIZE``; the small models' layers stay below it, so their
steps run on one core. The other way to use two cores: each thread runs the whole
forward and backward of half the batch on its own copy of the layers (a layer keeps what
its backward needs from its own last forward, so two threads cannot share one layer);
the copies share the weights, the second copy's weight gradients are added to the
first's, and one optimizer step follows. Each half's loss gradient is scaled by its share
of the batch, so the step is the whole batch's (``--check`` compares the gradients with
the plain step's in float64). Models with BatchNorm (statistics over the whole batch) or
Dropout (one random stream) would need more than this and are refused.

Timed in the blocks protocol (``report.time_blocks``, as ``bench.py``): the plain step on
``--threads`` threads, the split step (two halves, each on one thread, BLAS on one
thread), and PyTorch on ``--threads`` threads.

    python benchmarks/split_batch.py --models tiny_cnn lenet5 mobilenet_mnist
    python benchmarks/split_batch.py --models tiny_cnn --check
"""
import argparse
import copy
import os
import queue
import sys
import threading

PARSER = argparse.ArgumentParser(description=__doc__.split("\n")[0])
PARSER.add_argument("--models", nargs="+", default=["tiny_cnn", "lenet5", "mobilenet_mnist"])
PARSER.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
PARSER.add_argument("--threads", type=int, default=2,
                    help="the plain step's and PyTorch's threads (the split step uses two)")
PARSER.add_argument("--blocks", type=int, default=5)
PARSER.add_argument("--block-steps", type=int, default=3)
PARSER.add_argument("--pause", type=float, default=0.25)
PARSER.add_argument("--check", action="store_true",
                    help="only compare the split step's gradients with the plain step's (float64)")
ARGS = PARSER.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from minicnn.kernels import threads  # noqa: E402
from minicnn.layers import BatchNorm1D, BatchNorm2D, Dropout  # noqa: E402
from minicnn.layers.loss import SoftmaxCrossEntropy  # noqa: E402

from engines import MinicnnStep, TorchStep, torch_unavailable_reason  # noqa: E402
from report import print_table, time_blocks  # noqa: E402


class PlainStep(MinicnnStep):
    """bench.py's minicnn step, on ``--threads`` threads (the split step sets one)."""

    def step(self):
        threads.set_num_threads(ARGS.threads)
        super().step()


class SplitStep(MinicnnStep):
    """The same step, the batch's halves on two threads, a copy of the layers each."""

    def __init__(self, name, batch):
        super().__init__(name, batch, "cpu")
        kinds = {type(m).__name__ for m in self.model.modules()
                 if isinstance(m, (BatchNorm1D, BatchNorm2D, Dropout))}
        if kinds:
            sys.exit(f"split_batch.py: {name} has {sorted(kinds)}: not split here")
        self.copy = copy.deepcopy(self.model)
        self.copy_loss = SoftmaxCrossEntropy(check=False)
        self.todo, self.done = queue.SimpleQueue(), queue.SimpleQueue()
        # a chunk-thread name: the fast engine runs everything inline on this thread
        threading.Thread(target=self._serve, name=f"{threads._NAME}-split", daemon=True).start()

    def _serve(self):
        while True:
            task = self.todo.get()
            try:
                task()
                self.done.put(None)
            except BaseException as error:
                self.done.put(error)

    def _half(self, model, loss, part):
        loss.forward(model.forward(self.x[part]), self.y[part])
        share = (part.stop - part.start) / len(self.y)   # the batch's mean, not the half's
        model.backward(loss.backward() * share, input_grad=False, release=True)

    def step(self):
        threads.set_num_threads(1)          # this thread's kernels inline, as the helper's
        first, second = threads.split(len(self.y), 2)
        with threads.one_blas_thread():
            self.opt.zero_grad()
            for mine, theirs in zip(self.copy.parameters(), self.model.parameters()):
                mine.value = theirs.value             # the weights shared, the gradients not
                if mine.grad.dtype == theirs.value.dtype:
                    mine.zero_grad()
                else:                                 # after model.astype(...)
                    mine.grad = np.zeros_like(theirs.value)
            self.todo.put(lambda: self._half(self.copy, self.copy_loss, second))
            self._half(self.model, self.loss, first)
            error = self.done.get()
            if error is not None:
                raise error
            for mine, theirs in zip(self.copy.parameters(), self.model.parameters()):
                theirs.grad += mine.grad
            self.opt.step()


def largest_gradient_difference(name, batch=16):
    """The largest difference between the plain and the split step's weight gradients,
    in float64, and the largest gradient (for scale)."""
    plain, split = PlainStep(name, batch, "cpu"), SplitStep(name, batch)
    for engine in (plain, split):
        engine.model.astype("float64")
        engine.x = engine.x.astype(np.float64)
        engine.opt.step = lambda: None        # gradients only: no update
        engine.step()
    diffs = [float(np.abs(a.grad - b.grad).max())
             for a, b in zip(plain.model.parameters(), split.model.parameters())]
    return max(diffs), max(float(np.abs(p.grad).max()) for p in plain.model.parameters())


def main():
    if ARGS.check:
        for name in ARGS.models:
            diff, scale = largest_gradient_difference(name)
            print(f"{name}: largest gradient difference {diff:.2e} (largest gradient "
                  f"{scale:.2e})")
            if diff > 1e-12 * max(scale, 1.0):
                sys.exit(f"split_batch.py: {name}'s split step differs from the plain step")
        return
    if torch_unavailable_reason("cpu") is not None:
        sys.exit(f"split_batch.py: {torch_unavailable_reason('cpu')}: the timings compare "
                 f"with PyTorch (--check runs without it)")
    rows = []
    for name in ARGS.models:
        for batch in ARGS.batch_sizes:
            engines = [PlainStep(name, batch, "cpu"), SplitStep(name, batch),
                       TorchStep(name, batch, "cpu")]
            for engine in engines:
                engine.step()
                engine.step()
            (plain, _), (split, _), (torch_wall, _) = time_blocks(
                engines, ARGS.blocks, ARGS.block_steps, ARGS.pause, 1)
            rows.append([name, str(batch), f"{batch / plain:.0f}", f"{batch / split:.0f}",
                         f"{batch / torch_wall:.0f}", f"{torch_wall / plain:.2f}",
                         f"{torch_wall / split:.2f}"])
            print(*rows[-1], flush=True)      # as it goes
    print_table(["model", "batch", "plain images/s", "split images/s", "torch images/s",
                 "plain/torch", "split/torch"], rows, markdown=True)


if __name__ == "__main__":
    main()
