"""One lenet training step on the GPU against the same step on the CPU: gpu_check.sh's stage 1.

The same weights (seed 0), the same random batch of ``--batch`` MNIST-shaped images,
forward + softmax cross-entropy + backward + Adam, on each device; Dropout is off (eval)
for the comparison, since the GPU draws its masks with cuRAND. The gradients are compared
in float64: in float32 the engines round differently (the CPU's Winograd, the GPU's
im2col), and a pre-activation within a rounding of 0, or two values of a pooling window
within a rounding of each other, then route one gradient entry elsewhere (a kink, not a
fault: lenet at batch 64 moves two entries of its second pooling layer so, 0.4 of the
largest entry). Prints and writes (``--json``) the loss on each device, the worst relative
difference of the parameters' float64 gradients (``max |gpu - cpu| / max |cpu|`` per
parameter; not of the updated weights: Adam's ``m / sqrt(v)`` turns a gradient of 1e-12
and one of 1e-10 into the same step), and each device's float32 step time: the first step
(numba.cuda and CuPy compile their kernels there) and the median of the next ``--repeats``.

    python benchmarks/gpu_step.py --json step.json
    python benchmarks/gpu_step.py --fake-gpu      # no GPU: the tests' CuPy stand-in
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--fake-gpu", action="store_true",
                   help="run 'gpu' on tests/fake_cupy.py (gpu_check.sh --dry-run)")
    return p.parse_args(argv)


def one_device(device, batch, repeats, dtype=np.float32):
    """``(loss, the gradients as NumPy, first step s, median step s)`` in ``dtype``."""
    from minicnn import models
    from minicnn.backend import as_numpy, synchronize, to_device
    from minicnn.layers import Dropout, SoftmaxCrossEntropy
    from minicnn.optim import Adam
    model = models.lenet(seed=0).astype(dtype).to(device)
    for layer in model.modules():
        if isinstance(layer, Dropout):
            layer.eval()
    rng = np.random.default_rng(0)
    x = to_device(rng.random((batch, 1, 28, 28), dtype=np.float32).astype(dtype), device)
    y = to_device(rng.integers(0, 10, batch), device)
    optimizer, loss_fn = Adam(model.parameters(), lr=1e-3), SoftmaxCrossEntropy(check=False)

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model.forward(x), y)
        model.backward(loss_fn.backward(), input_grad=False, release=True)
        optimizer.step()
        return loss
    times = []
    for i in range(1 + repeats):
        synchronize(x)
        start = time.perf_counter()
        loss = step()
        synchronize(x)
        times.append(time.perf_counter() - start)
        if i == 0:
            first_loss = float(loss)       # copies: the next step zeroes the gradients
            grads = [as_numpy(p.grad).copy() for p in model.parameters()]
    return first_loss, grads, times[0], statistics.median(times[1:] or times)


def main(argv=None):
    args = parse_args(argv)
    if args.fake_gpu:
        tests = Path(__file__).resolve().parents[1] / "tests"
        sys.path.insert(0, str(tests))
        import pytest
        from conftest import install_fake_gpu
        install_fake_gpu(pytest.MonkeyPatch())
    from minicnn.kernels import fast

    from minicnn.backend import gpu_unavailable_reason
    if gpu_unavailable_reason() is not None:
        sys.exit(f"gpu_step.py: no usable GPU: {gpu_unavailable_reason()}")
    cpu, gpu = (one_device(d, args.batch, args.repeats) for d in ("cpu", "gpu"))
    cpu64, gpu64 = (one_device(d, args.batch, 0, np.float64) for d in ("cpu", "gpu"))
    worst = max(float(np.abs(g - c).max() / max(np.abs(c).max(), 1e-300))
                for c, g in zip(cpu64[1], gpu64[1]))
    row = dict(batch=args.batch, loss_cpu=cpu[0], loss_gpu=gpu[0], worst_grad_diff=worst,
               first_step_s_cpu=cpu[2], first_step_s_gpu=gpu[2], step_s_cpu=cpu[3],
               step_s_gpu=gpu[3], gpu_loops=fast.gpu_choice)
    print(f"lenet, batch {args.batch}, one step (Dropout off): loss cpu {cpu[0]:.6f}, "
          f"gpu {gpu[0]:.6f}; gradients (float64) differ by {worst:.1e} (relative, worst)")
    print(f"step time: cpu first {cpu[2]:.3f} s, then {1e3 * cpu[3]:.2f} ms; gpu first "
          f"{gpu[2]:.3f} s, then {1e3 * gpu[3]:.2f} ms (median of {args.repeats})")
    print(f"gpu loops: {fast.gpu_choice}")
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=1))
    return 0 if worst < 1e-9 and abs(cpu[0] - gpu[0]) < 1e-4 * max(1.0, abs(cpu[0])) else 1


if __name__ == "__main__":
    sys.exit(main())
