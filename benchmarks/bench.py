"""Training-step throughput of minicnn against PyTorch, with a fair protocol.

One training step = forward + softmax cross-entropy + backward + Adam, on a
fixed random float32 MNIST-shaped batch (``engines.py``). PyTorch runs the same
network with the same weights, in the same process, with the same threads.

Protocols (``--protocol``; every table says which one it used):

* ``blocks`` (default, fair): minicnn and PyTorch take turns in blocks of
  ``--block-steps`` steps, each block after a ``--pause`` (0.25 s) so that
  neither engine's thread pool (OpenBLAS's idle workers spin for a while after
  each call) still holds a core when the other starts; who goes first
  alternates. ``--block-warmup`` (1) untimed step opens each block: the first
  step after a rest pays for waking the pool's threads and refilling the
  caches, which a training run does not. Reported: the median over
  ``--blocks`` (>= 5) blocks.
* ``interleaved`` (the old one): one step of each in turn, no pause; the
  median of ``--repeats`` steps. It flatters minicnn on the CPU (issue 14).

Each row gives images/s (wall clock), CPU milliseconds per image (process
time, all threads, spinning included; on the GPU it is host time, waiting in
``synchronize`` included) and the ratio minicnn / PyTorch of images/s. Timings
are ``sync(); clock(); steps; sync(); clock()``, so on the GPU they wait for
the device.

    python benchmarks/bench.py --models lenet --batch-sizes 64 256 --threads 2
    python benchmarks/bench.py --protocol interleaved --repeats 5
    python benchmarks/bench.py --device gpu --models lenet tiny_cnn keras_cnn --json gpu.json
    python benchmarks/bench.py --device gpu --jsonl rows.jsonl   # a line per row, as it ends

Peak memory: on the CPU the tracemalloc peak of one minicnn step (weights and
Adam state, allocated before, are not counted), and for PyTorch the peak of its
tensors' bytes allocated during one step (its profiler's memory events, in
order; also above what was allocated before); on the GPU CuPy's pool size and
``torch.cuda.max_memory_allocated`` above what was allocated before the step.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=None,
                   help="zoo models (default: every trainable one, minicnn.training.config.MNIST_MODELS)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--protocol", choices=["blocks", "interleaved"], default="blocks")
    p.add_argument("--blocks", type=int, default=5, help="timed blocks per engine (>= 5)")
    p.add_argument("--block-steps", type=int, default=None,
                   help="steps per block (default 3 on the CPU, 20 on the GPU)")
    p.add_argument("--pause", type=float, default=0.25, help="seconds of rest before each block")
    p.add_argument("--block-warmup", type=int, default=1,
                   help="untimed steps opening each block, after the pause (wake-up, caches)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved: timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for BLAS, Numba and PyTorch (default: all cores)")
    p.add_argument("--impl", choices=["fast", "textbook"], default="fast",
                   help="minicnn's engine (minicnn.use_impl): 'textbook' is im2col + one "
                        "product, no chunks, threads or compiled loops (default fast)")
    p.add_argument("--max-cols-mib", type=float, default=None,
                   help="bound on one im2col chunk (default: kernels.chunks.MAX_COLS_BYTES)")
    p.add_argument("--no-winograd", action="store_true",
                   help="CPU: every convolution as im2col + matrix products "
                        "(minicnn.use_impl(winograd=False))")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="raise the C allocator's thresholds as the minicnn command does "
                        "(minicnn.allocator; both engines share the process)")
    p.add_argument("--no-tf32", action="store_true",
                   help="GPU: forbid TF32 in PyTorch's cuDNN convolutions (its default allows it)")
    p.add_argument("--no-layers", action="store_true", help="skip the per-layer table")
    p.add_argument("--layer-clock", choices=["wall", "cpu"], default="wall",
                   help="the per-layer table's clock: wall time, or CPU time of every "
                        "thread (steadier on a busy machine)")
    p.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    p.add_argument("--json", metavar="PATH", help="also write the rows and settings as JSON")
    p.add_argument("--jsonl", metavar="PATH",
                   help="append each row to PATH as one JSON line as soon as it is measured "
                        "(a run cut short keeps the rows it finished)")
    args = p.parse_args(argv)
    if args.protocol == "blocks" and args.blocks < 5:
        p.error(f"--blocks must be >= 5 (medians over at least 5 blocks), got {args.blocks}")
    if args.block_steps is None:
        args.block_steps = 20 if args.device == "gpu" else 3
    return args


ARGS = parse_args()
# Thread counts and the kernel choice are read when the libraries load: set them first.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from minicnn import kernels  # noqa: E402
from minicnn.backend import gpu_unavailable_reason  # noqa: E402
from minicnn.training.config import MNIST_MODELS  # noqa: E402

ARGS.models = ARGS.models or list(MNIST_MODELS)
if set(ARGS.models) - set(MNIST_MODELS):
    sys.exit(f"bench.py --models: {sorted(set(ARGS.models) - set(MNIST_MODELS))} not among "
             f"the trainable zoo models {list(MNIST_MODELS)}")

if ARGS.device == "gpu" and gpu_unavailable_reason() is not None:
    sys.exit(f"bench.py --device gpu: no usable GPU: {gpu_unavailable_reason()}")

from engines import MinicnnStep, TorchStep, torch, torch_unavailable_reason  # noqa: E402
import report  # noqa: E402
from report import (layer_times, machine_info, print_table, threads_in_use,  # noqa: E402
                    torch_layer_times)


def time_blocks(engines):
    """``report.time_blocks`` with this run's settings."""
    return report.time_blocks(engines, ARGS.blocks, ARGS.block_steps, ARGS.pause,
                              ARGS.block_warmup)


def time_interleaved(engines):
    """The old protocol: one step of each engine in turn, ``ARGS.repeats`` times, no pause."""
    records = [([], []) for _ in engines]
    for _ in range(ARGS.repeats):
        for engine, (walls, cpus) in zip(engines, records):
            engine.sync()
            wall, cpu = time.perf_counter(), time.process_time()
            engine.step()
            engine.sync()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return [(statistics.median(w), statistics.median(c)) for w, c in records]


def peak_bytes(engine):
    if ARGS.device == "gpu":
        import cupy
        return cupy.get_default_memory_pool().total_bytes()
    tracemalloc.start()
    engine.step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def torch_peak_bytes(engine):
    """The peak of PyTorch's tensor bytes during one step of ``engine`` (a TorchStep),
    above those allocated before it: its profiler's allocations and frees, in order."""
    if ARGS.device == "gpu":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        engine.step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        engine.step()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def measure(name, batch, use_torch):
    """One table row (a dict) for model ``name`` at ``batch``, and the minicnn engine."""
    engines = [MinicnnStep(name, batch, ARGS.device)]
    if use_torch:
        engines.append(TorchStep(name, batch, ARGS.device))
    for engine in engines:
        for _ in range(ARGS.warmup):
            engine.step()
        engine.sync()
    timer = time_blocks if ARGS.protocol == "blocks" else time_interleaved
    (wall, cpu), *others = timer(engines)
    row = dict(model=name, batch=batch, images_per_s=batch / wall,
               cpu_ms_per_image=1e3 * cpu / batch, peak_mib=peak_bytes(engines[0]) / 2 ** 20)
    if others:
        (t_wall, t_cpu), = others
        row.update(torch_images_per_s=batch / t_wall, torch_cpu_ms_per_image=1e3 * t_cpu / batch,
                   ratio=t_wall / wall, torch_peak_mib=torch_peak_bytes(engines[1]) / 2 ** 20)
    return row, engines


def protocol_line():
    if ARGS.protocol == "blocks":
        return (f"blocks: {ARGS.blocks} blocks of {ARGS.block_steps} timed steps per engine, "
                f"each after a {ARGS.pause:g} s pause and {ARGS.block_warmup} untimed step, "
                f"engines alternating; median over blocks")
    return f"interleaved: {ARGS.repeats} steps, one of each engine in turn, no pause; median"


def main():
    device = ARGS.device
    why_not = "--no-torch" if ARGS.no_torch else torch_unavailable_reason(device)
    use_torch = why_not is None
    if use_torch:
        torch.set_num_threads(ARGS.threads)
        if device == "gpu" and ARGS.no_tf32:
            torch.backends.cudnn.allow_tf32 = False
    if ARGS.keep_freed_memory:
        from minicnn.cli.allocator import keep_freed_memory
        print(f"# C allocator keeps freed memory: {keep_freed_memory()}")
    if ARGS.max_cols_mib is not None:
        kernels.chunks.MAX_COLS_BYTES[device] = int(ARGS.max_cols_mib * 2 ** 20)
    kernels.use_impl(ARGS.impl, winograd=False if ARGS.no_winograd else None)
    machine = machine_info(ARGS, torch)                 # load average taken before the run
    print(f"# machine: {machine}")
    print(f"# protocol: {protocol_line()}")
    print(f"# im2col chunk bound: {kernels.chunks.MAX_COLS_BYTES[device] / 2**20:.0f} MiB; "
          f"engine: {ARGS.impl}, loops: {kernels.fast.loops(np.zeros(1)).__name__}"
          + (f"; Winograd convolutions: {'on' if kernels.fast.WINOGRAD else 'off'}"
             if device == "cpu" else ""))
    if not use_torch:
        print(f"# PyTorch comparison skipped: {why_not}")
    rows, tables = [], []
    for name in ARGS.models:
        for batch in ARGS.batch_sizes:
            row, engines = measure(name, batch, use_torch)
            rows.append(row)
            if ARGS.jsonl:
                with open(ARGS.jsonl, "a") as f:
                    f.write(json.dumps(dict(row, device=device, impl=ARGS.impl,
                                            torch_skipped=why_not)) + "\n")
            print(f"# {name} {batch}: {row['images_per_s']:.0f} images/s"
                  + (f", torch {row['torch_images_per_s']:.0f}, ratio {row['ratio']:.2f}"
                     if use_torch else ""), flush=True)
            if not ARGS.no_layers:
                repeats = max(3, ARGS.repeats)
                clock = time.process_time if ARGS.layer_clock == "cpu" else time.perf_counter
                theirs = torch_layer_times(engines[1], repeats, clock) if use_torch else None
                tables.append((name, batch, layer_times(engines[0], repeats, clock), theirs))
    print(f"# threads in use after the run: {threads_in_use(torch if use_torch else None)}")
    header = ["model", "batch", "images/s", "CPU ms/image", "peak MiB"]
    if use_torch:
        header += ["torch images/s", "torch CPU ms/image", "torch peak MiB", "minicnn/torch"]
    cells = []
    for r in rows:
        cell = [r["model"], str(r["batch"]), f"{r['images_per_s']:.0f}",
                f"{r['cpu_ms_per_image']:.2f}", f"{r['peak_mib']:.0f}"]
        if use_torch:
            cell += [f"{r['torch_images_per_s']:.0f}", f"{r['torch_cpu_ms_per_image']:.2f}",
                     f"{r['torch_peak_mib']:.0f}", f"{r['ratio']:.2f}"]
        cells.append(cell)
    print(f"\n## training steps, {device}, protocol {ARGS.protocol}")
    print_table(header, cells, ARGS.markdown)
    for name, batch, times, theirs in tables:
        print(f"\n## per-layer times, {name}, batch {batch} (ms of {ARGS.layer_clock} time, "
              f"median)")
        print_table(["layer", "forward", "backward"]
                    + (["torch forward", "torch backward"] if theirs else []),
                    [[desc, f"{f * 1e3:.2f}", f"{b * 1e3:.2f}"]
                     + ([f"{t * 1e3:.2f}" for t in theirs[i]] if theirs else [])
                     for i, (desc, f, b) in enumerate(times)], ARGS.markdown)
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(dict(device=device, protocol=protocol_line(), threads=ARGS.threads,
                           machine=machine, torch_skipped=why_not,
                           winograd=bool(kernels.fast.WINOGRAD) if device == "cpu" else None,
                           impl=ARGS.impl,
                           python=platform.python_version(), rows=rows), f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
