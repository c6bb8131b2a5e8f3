"""What one launch of each numba.cuda kernel costs on CuPy arrays, against a CuPy RawKernel.

lenet's training step launches about twenty kernels (benchmarks/README.md, "launches per
step"). On tiny arrays the GPU work is negligible, so the time per launch is the
dispatch cost on the host. For each kernel of ``kernels/cuda.py`` (called as that
module calls it: ``kernel[blocks, 128](...)`` on CuPy arrays) this prints the median
microseconds per launch, and beside it:

* ``numba, no CAI sync``: the same kernel on ``numba.cuda.as_cuda_array(a, sync=False)``
  views made for every call. Numba synchronises the stream that every CuPy array
  argument names in its ``__cuda_array_interface__`` (CuPy names the default stream),
  so each array argument of each launch otherwise waits for the GPU.
* ``numba, device arrays``: the kernel on Numba device arrays made once: numba's own
  dispatch cost, without the foreign-array handling.
* ``CuPy RawKernel``: the same body in CUDA C (im2col and max-pool forward), checked
  equal to the numba kernel's output first.
* ``CuPy elementwise``: ``cupy.multiply(a, 2, out=b)``, the floor of one CuPy launch.

Timing: ``sync; clock; --launches launches; sync; clock`` divided by the launches;
median of ``--repeats``.

    python benchmarks/launch_overhead.py --json launch.json     # needs a GPU
    python benchmarks/launch_overhead.py --dry-run              # CPU: CUDA simulator, no timing
"""
import argparse
import json
import os
import statistics
import sys
import time

ARGS_PARSER = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS_PARSER.add_argument("--launches", type=int, default=200, help="launches per sample")
ARGS_PARSER.add_argument("--repeats", type=int, default=7, help="samples (median reported)")
ARGS_PARSER.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
ARGS_PARSER.add_argument("--dry-run", action="store_true",
                         help="no GPU: run every numba kernel once under NUMBA_ENABLE_CUDASIM=1 "
                              "on tiny NumPy arrays and check it; no timing, no RawKernel")
ARGS = ARGS_PARSER.parse_args()
if ARGS.dry_run:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"     # read when Numba loads: set it first

import numpy as np  # noqa: E402
from minicnn.kernels import textbook  # noqa: E402
from minicnn.kernels.textbook import avgpool_divisors  # noqa: E402

from minicnn.backend import gpu_unavailable_reason  # noqa: E402

if not ARGS.dry_run and gpu_unavailable_reason() is not None:
    sys.exit(f"launch_overhead.py: no usable GPU: {gpu_unavailable_reason()} "
             f"(--dry-run checks the script on the CPU)")

from minicnn.kernels import cuda as cuda_kernels  # noqa: E402
from numba import cuda  # noqa: E402

if ARGS.dry_run:
    xp = np
else:
    import cupy as xp

TPB = cuda_kernels.THREADS_PER_BLOCK
# Tiny shapes: x (N, C, H, W); im2col 3x3, stride 1, padding 1 (output H x W); pooling
# 2x2, stride 2; no dilation (D1), as lenet's layers.
N, C, H, W = (1, 2, 4, 4) if ARGS.dry_run else (2, 4, 8, 8)
K3, S1, P1, K2, S2, P0, D1 = (3, 3), (1, 1), (1, 1), (2, 2), (2, 2), (0, 0), (1, 1)
HO, WO = H // 2, W // 2


def launch_cases():
    """``{name: (kernel, n_threads, args, outputs)}`` for every kernel of kernels/cuda.py,
    with the arguments in the order its wrapper there passes them."""
    f32, rng = np.float32, np.random.default_rng(0)
    x = xp.asarray(rng.standard_normal((N, C, H, W)).astype(f32))
    cols = xp.empty((C * 9, N * H * W), dtype=f32)

    def gx():                                   # each case writes its own output
        return xp.zeros((N, C, H, W), dtype=f32)

    def pooled():
        return xp.empty((N, C, HO, WO), dtype=f32)
    max_out, avg_out, switches = pooled(), pooled(), xp.empty((N, C, HO, WO), "int64")
    col2im_out, avg_gx = gx(), gx()
    g_pooled = xp.asarray(rng.standard_normal((N, C, HO, WO)).astype(f32))
    valid_switches = xp.asarray(rng.integers(0, H * W, (N, C, HO, WO)))
    gx_flat = xp.zeros((N, C, H * W), dtype=f32)
    divisor = xp.asarray(avgpool_divisors((H, W), K2, S2, P0), dtype=f32)   # (HO, WO) of 4s
    k = cuda_kernels
    return {
        "im2col": (k._im2col_kernel, cols.size,
                   (x, *K3, *S1, *P1, *D1, H, W, cols), cols),
        "col2im": (k._col2im_kernel, col2im_out.size,
                   (cols, *K3, *S1, *P1, *D1, H, W, f32(0), col2im_out), col2im_out),
        "maxpool_forward": (k._maxpool_forward_kernel, max_out.size,
                            (x, *K2, *S2, *P0, *D1, f32(-np.inf), max_out, switches),
                            max_out),
        "maxpool_backward": (k._maxpool_backward_kernel, g_pooled.size,
                             (g_pooled, valid_switches, gx_flat), gx_flat),
        "avgpool_forward": (k._avgpool_forward_kernel, avg_out.size,
                            (x, *K2, *S2, *P0, divisor, f32(0), avg_out), avg_out),
        "avgpool_backward": (k._avgpool_backward_kernel, g_pooled.size,
                             (g_pooled, *K2, *S2, *P0, divisor, avg_gx), avg_gx),
    }


def launcher(kernel, n_threads, args, wrap=None):
    blocks = (n_threads + TPB - 1) // TPB
    if wrap is None:
        return lambda: kernel[blocks, TPB](*args)
    return lambda: kernel[blocks, TPB](*(wrap(a) if hasattr(a, "shape") and a.ndim else a
                                         for a in args))


def per_launch_us(fn):
    sync = cuda.synchronize
    fn()                                     # compile and warm
    sync()
    samples = []
    for _ in range(ARGS.repeats):
        sync()
        start = time.perf_counter()
        for _ in range(ARGS.launches):
            fn()
        sync()
        samples.append((time.perf_counter() - start) / ARGS.launches * 1e6)
    return statistics.median(samples)


def dry_run(cases):
    """Each kernel once under the simulator; all but maxpool_backward (random switches)
    checked against textbook."""
    x = cases["im2col"][2][0]
    for name, (kernel, n_threads, args, out) in cases.items():
        launcher(kernel, n_threads, args)()
        print(f"{name}: launched under the CUDA simulator, output {tuple(out.shape)}")
    np.testing.assert_array_equal(cases["im2col"][3], textbook.im2col(x, K3, S1, P1))
    np.testing.assert_array_equal(cases["maxpool_forward"][3],
                                  textbook.maxpool_forward(x, K2, S2, P0)[0])
    np.testing.assert_allclose(cases["col2im"][3], textbook.col2im(
        cases["im2col"][3], x.shape, K3, S1, P1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cases["avgpool_forward"][3],
                               textbook.avgpool_forward(x, K2, S2, P0), rtol=1e-6)
    g_pooled = cases["avgpool_backward"][2][0]
    np.testing.assert_allclose(cases["avgpool_backward"][3], textbook.avgpool_backward(
        g_pooled, x.shape, K2, S2, P0), rtol=1e-6)
    print("dry run: im2col, col2im, maxpool_forward and average pooling equal the textbook formulas; "
          "timing and RawKernels skipped (they need CuPy and a GPU)")
    return [dict(kernel=name, variant="dry run", us_per_launch=None) for name in cases]


def measure(cases):
    rows = []
    raw_cols = xp.empty_like(cases["im2col"][3])
    raw_out, raw_switches = xp.empty_like(cases["maxpool_forward"][3]), \
        xp.empty(cases["maxpool_forward"][3].shape, "int64")

    def add(name, variant, make):
        try:
            rows.append(dict(kernel=name, variant=variant, us_per_launch=per_launch_us(make())))
        except Exception as err:  # noqa: BLE001 - one failing variant must not hide the others
            rows.append(dict(kernel=name, variant=variant, us_per_launch=None,
                             error=f"{type(err).__name__}: {err}"))
        print(rows[-1], flush=True)

    a, b = xp.ones(1024, dtype=np.float32), xp.empty(1024, dtype=np.float32)
    add("(none)", "CuPy elementwise", lambda: lambda: xp.multiply(a, 2, out=b))
    for name, (kernel, n_threads, args, _) in cases.items():
        add(name, "numba, CuPy arrays", lambda: launcher(kernel, n_threads, args))
        add(name, "numba, no CAI sync", lambda: launcher(
            kernel, n_threads, args, lambda arr: cuda.as_cuda_array(arr, sync=False)))
        device_args = tuple(cuda.as_cuda_array(arr, sync=False)
                            if hasattr(arr, "shape") and arr.ndim else arr for arr in args)
        add(name, "numba, device arrays", lambda: launcher(kernel, n_threads, device_args))
    import raw_kernels
    x = cases["im2col"][2][0]
    for name, launch_raw, check in (
            ("im2col", lambda: raw_kernels.im2col_launcher(x, raw_cols, K3, S1, P1),
             lambda: raw_cols),
            ("maxpool_forward", lambda: raw_kernels.maxpool_forward_launcher(
                x, raw_out, raw_switches, K2, S2, P0), lambda: raw_out)):
        kernel, n_threads, args, out = cases[name]
        try:
            launcher(kernel, n_threads, args)()
            launch_raw()()
            same = bool(xp.array_equal(check(), out))
        except Exception as err:  # noqa: BLE001 - reported in the row below
            same = f"not compared: {type(err).__name__}: {err}"
        label = {True: "equal to", False: "DIFFERS from"}.get(same, same)
        add(name, f"CuPy RawKernel ({label} numba's output)", launch_raw)
        add(name, "CuPy RawKernel, allocating its output",
            lambda: (lambda: raw_kernels.raw_im2col(x, K3, S1, P1)) if name == "im2col"
            else (lambda: raw_kernels.raw_maxpool_forward(x, K2, S2, P0)))
    return rows


def main():
    cases = launch_cases()
    rows = dry_run(cases) if ARGS.dry_run else measure(cases)
    if not ARGS.dry_run:
        print(f"\n## per-launch cost, median of {ARGS.repeats} x {ARGS.launches} launches, "
              f"x ({N}, {C}, {H}, {W}) float32")
        for r in rows:
            value = f"{r['us_per_launch']:.1f} us" if r["us_per_launch"] is not None \
                else r.get("error", "-")
            print(f"{r['kernel']:<18} {r['variant']:<48} {value}")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(dict(dry_run=ARGS.dry_run, shape=[N, C, H, W], rows=rows), f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
