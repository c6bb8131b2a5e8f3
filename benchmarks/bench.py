"""Training-step throughput of minicnn models, per-layer times, peak memory, and PyTorch.

One training step = forward + SoftmaxCrossEntropy + backward + Adam update, on
random float32 MNIST-shaped data. Each configuration is warmed up, then timed
``--repeats`` times; the median is reported. When PyTorch is installed, the
same network (same layers, same weights, Adam) is timed in the same run with
the same number of threads, its steps interleaved with minicnn's, and the ratio
minicnn / PyTorch (of images/s) is printed.

    python benchmarks/bench.py --models lenet tiny_cnn keras_cnn --batch-sizes 64 256 \\
        --device cpu --repeats 5
    python benchmarks/bench.py --models lenet --batch-sizes 256 --kernels vectorized
    python benchmarks/bench.py --device gpu            # CuPy + numba.cuda, synchronized

Peak memory: for minicnn on the CPU, the tracemalloc peak of one step (NumPy
reports its buffers to tracemalloc; the model's weights and Adam state,
allocated before, are not counted); on the GPU, CuPy's memory pool size.
"""
import argparse
import os
import platform
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["lenet", "tiny_cnn", "keras_cnn"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--repeats", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for BLAS, Numba and PyTorch (default: all cores)")
    p.add_argument("--kernels", choices=["auto", "vectorized"], default="auto",
                   help="'vectorized': NumPy/CuPy slicing instead of Numba / numba.cuda")
    p.add_argument("--max-cols-mib", type=float, default=None,
                   help="bound on one im2col buffer (default: kernels.MAX_COLS_BYTES[device])")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="'cpu': process CPU time (all threads summed) instead of wall time; "
                        "with --threads 1 it measures the work done, unaffected by other "
                        "processes competing for the cores")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-layers", action="store_true", help="skip the per-layer table")
    p.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    return p.parse_args()


ARGS = parse_args()
# Thread counts and the kernel choice are read when the libraries load: set them first.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
if ARGS.kernels == "vectorized":
    os.environ["MINICNN_KERNELS"] = "vectorized"

import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

import minicnn  # noqa: E402
from minicnn import kernels, models  # noqa: E402
from minicnn.backend import synchronize, to_device  # noqa: E402
from minicnn.layers.loss import SoftmaxCrossEntropy  # noqa: E402
from minicnn.optim import Adam  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def median_times(fns, repeats, warmup):
    """Median seconds of each ``(step, sync)`` in ``fns``. The timed calls are
    interleaved (a, b, a, b, ...) so that load from other processes on a
    shared machine hits both sides alike."""
    for step, sync in fns:
        for _ in range(warmup):
            step()
        sync()
    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    times = [[] for _ in fns]
    for _ in range(repeats):
        for (step, sync), record in zip(fns, times):
            start = clock()
            step()
            sync()
            record.append(clock() - start)
    return [statistics.median(t) for t in times]


# -- minicnn ---------------------------------------------------------------------

def minicnn_setup(name, batch, device):
    model = getattr(models, name)().to(device)
    rng = np.random.default_rng(0)
    x = to_device(rng.random((batch, 1, 28, 28), dtype=np.float32), device)
    y = to_device(rng.integers(0, 10, batch), device)
    return model, Adam(model.parameters(), lr=1e-3), SoftmaxCrossEntropy(), x, y


def minicnn_step(model, opt, loss, x, y):
    opt.zero_grad()
    loss.forward(model.forward(x), y)
    model.backward(loss.backward())
    opt.step()


def minicnn_layer_times(model, opt, loss, x, y, repeats, sync):
    """Median forward and backward seconds of each layer over ``repeats`` steps."""
    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    fwd = [[] for _ in model.layers]
    bwd = [[] for _ in model.layers]
    for _ in range(repeats):
        opt.zero_grad()
        h = x
        for i, layer in enumerate(model.layers):
            start = clock()
            h = layer.forward(h)
            sync()
            fwd[i].append(clock() - start)
        loss.forward(h, y)
        g = loss.backward()
        for i in reversed(range(len(model.layers))):
            start = clock()
            g = model.layers[i].backward(g)
            sync()
            bwd[i].append(clock() - start)
        opt.step()
    return [(f"{i} {layer_name(layer)}", statistics.median(f), statistics.median(b))
            for i, (layer, f, b) in enumerate(zip(model.layers, fwd, bwd))]


def layer_name(layer):
    """``Conv2D 1->32 5x5 s1 p2``, ``MaxPool2D 2x2 s2``, ``Dense 3136->1024``, ``ReLU``."""
    cfg, kind = layer.config(), type(layer).__name__
    if "kernel_size" in cfg:
        (kh, kw), (sh, _), (ph, _) = cfg["kernel_size"], cfg["stride"], cfg["padding"]
        channels = f" {cfg['in_channels']}->{cfg['out_channels']}" if "in_channels" in cfg else ""
        return f"{kind}{channels} {kh}x{kw} s{sh} p{ph}"
    if "in_features" in cfg:
        return f"{kind} {cfg['in_features']}->{cfg['out_features']}"
    return kind


def minicnn_peak_bytes(step, device):
    if device == "gpu":
        import cupy
        return cupy.get_default_memory_pool().total_bytes()
    tracemalloc.start()
    step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


# -- PyTorch: the same network --------------------------------------------------------

def torch_model(model):
    """``torch.nn.Sequential`` with the same layers and weights as a minicnn model."""
    nn, layers = torch.nn, []
    for layer in model.layers:
        kind, cfg = type(layer).__name__, layer.config()
        if kind == "Conv2D":
            layers.append(nn.Conv2d(cfg["in_channels"], cfg["out_channels"],
                                    tuple(cfg["kernel_size"]), tuple(cfg["stride"]),
                                    tuple(cfg["padding"]), bias=cfg["bias"]))
        elif kind == "Dense":
            layers.append(nn.Linear(cfg["in_features"], cfg["out_features"], bias=cfg["bias"]))
        elif kind == "MaxPool2D":
            layers.append(nn.MaxPool2d(tuple(cfg["kernel_size"]), tuple(cfg["stride"]),
                                       tuple(cfg["padding"])))
        elif kind == "AvgPool2D":
            layers.append(nn.AvgPool2d(tuple(cfg["kernel_size"]), tuple(cfg["stride"]),
                                       tuple(cfg["padding"])))
        elif kind == "ReLU":
            layers.append(nn.ReLU())
        elif kind == "Flatten":
            layers.append(nn.Flatten())
        elif kind == "Dropout":
            layers.append(nn.Dropout(cfg["p"]))
        else:
            raise ValueError(f"no PyTorch counterpart for {kind}")
    net = nn.Sequential(*layers)
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in
                         model.state_dict().items()})
    return net


def torch_step_fn(name, batch, device):
    net = torch_model(getattr(models, name)())
    dev = "cuda" if device == "gpu" else "cpu"
    net = net.to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((batch, 1, 28, 28), generator=gen).to(dev)
    y = torch.randint(0, 10, (batch,), generator=gen).to(dev)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    return step, sync


# -- report ------------------------------------------------------------------------------

def machine_info():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    import numba
    versions = (f"python {platform.python_version()}, numpy {np.__version__}, "
                f"numba {numba.__version__}, torch {torch.__version__ if torch else 'absent'}, "
                f"minicnn {getattr(minicnn, '__version__', '?')}")
    return (f"{cpu}, {os.cpu_count()} logical cores, {ARGS.threads} threads; {versions}; "
            f"kernels: {ARGS.kernels}; clock: {ARGS.clock}; load average before: {os.getloadavg()[0]:.2f}")


def print_table(header, rows):
    if ARGS.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))


def main():
    device = ARGS.device
    sync = (lambda: synchronize()) if device == "gpu" else (lambda: None)
    use_torch = torch is not None and not ARGS.no_torch
    if use_torch:
        torch.set_num_threads(ARGS.threads)
    if ARGS.max_cols_mib is not None:
        kernels.MAX_COLS_BYTES[ARGS.device] = int(ARGS.max_cols_mib * 2 ** 20)
    print(f"# machine: {machine_info()}")
    print(f"# im2col buffer bound: {kernels.MAX_COLS_BYTES[ARGS.device] / 2**20:.0f} MiB")
    if ARGS.device == "cpu":
        print(f"# CPU kernels: {kernels.backend_for(np.zeros(1)).__name__}")
    rows, layer_tables = [], []
    for name in ARGS.models:
        for batch in ARGS.batch_sizes:
            setup = minicnn_setup(name, batch, device)
            fns = [(lambda: minicnn_step(*setup), sync)]
            if use_torch:
                fns.append(torch_step_fn(name, batch, device))
            t, *tt = median_times(fns, ARGS.repeats, ARGS.warmup)
            peak = minicnn_peak_bytes(fns[0][0], device)
            row = [name, str(batch), f"{1 / t:.2f}", f"{batch / t:.0f}", f"{peak / 2**20:.0f}"]
            if use_torch:
                row += [f"{batch / tt[0]:.0f}", f"{tt[0] / t:.2f}"]
            rows.append(row)
            print("  ".join(row), flush=True)
            if not ARGS.no_layers:
                layer_tables.append((name, batch, minicnn_layer_times(
                    *setup, max(3, ARGS.repeats), sync)))
    header = ["model", "batch", "steps/s", "images/s", "peak MiB"]
    if use_torch:
        header += ["torch images/s", "minicnn/torch"]
    print()
    print_table(header, rows)
    for name, batch, times in layer_tables:
        print(f"\n## per-layer times, {name}, batch {batch} (ms of {ARGS.clock} time, median)")
        print_table(["layer", "forward", "backward"],
                    [[desc, f"{f * 1e3:.1f}", f"{b * 1e3:.1f}"] for desc, f, b in times])
    try:
        import resource
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\n# process peak resident memory (minicnn and torch together): {maxrss:.0f} MiB")
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
