"""``minicnn doctor``: what this machine runs, and whether every engine computes the same numbers.

The first thing to run on a new machine. It prints

1. the versions: Python, NumPy, Numba, CuPy, numba-cuda, NVVM, the CUDA version the
   NVIDIA driver supports, and the GPU (or why it cannot be used);
2. which loops each device runs: the fast engine's Numba loops on the CPU, and on the
   GPU the numba.cuda kernels or, after a failed first launch or with
   ``MINICNN_GPU_KERNELS=cupy``, CuPy's array operations (``kernels.fast.gpu_choice``);
3. a parity and timing table: every layer type of the model zoo, forward and backward
   with the same weights and input on each engine available here (CPU fast, textbook and
   reference; GPU fast and textbook), the worst relative difference against the CPU
   reference engine in float64 (over the output, the input gradient and the parameter
   gradients: ``max |a - ref| / max |ref|``) and the median time of one forward and
   backward in float32 (synchronized on the GPU).

Exit status 0 when every difference is below ``TOLERANCE``, else 1.
"""
import importlib.metadata
import platform
import statistics
import time

import numpy as np

from .. import kernels
from ..backend import (as_numpy, cuda_driver_version, get_array_module, gpu_unavailable_reason,
                       synchronize, to_device)
from ..layers import (AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU,
                      SoftmaxCrossEntropy)
from ..layers.activations import LeakyReLU
from ..layers.global_pool import GlobalAvgPool2D
from ..layers.norm import BatchNorm1D, BatchNorm2D

TOLERANCE = 1e-9       # float64: the engines differ by rounding only (Winograd: about 1e-13)


class _Loss:
    """``SoftmaxCrossEntropy`` seen as a layer: ``forward(logits)`` with fixed labels."""
    def __init__(self):
        self.loss, self.labels = SoftmaxCrossEntropy(), None

    def forward(self, logits):
        xp = get_array_module(logits)
        self.labels = xp.arange(logits.shape[0]) % logits.shape[1]
        return self.loss.forward(logits, self.labels)

    def backward(self, grad_out):
        return self.loss.backward() * grad_out

    def parameters(self):
        return []

    def to(self, device):
        return self

    def astype(self, dtype):
        return self


# (row name, a function building the layer with fixed weights, the input's shape)
CASES = [
    ("Conv2D 3x3", lambda: Conv2D(4, 8, 3, padding=1, seed=0), (4, 4, 10, 10)),
    ("Conv2D depthwise", lambda: Conv2D(8, 8, 3, padding=1, groups=8, seed=0), (4, 8, 10, 10)),
    ("Conv2D Winograd-eligible", lambda: Conv2D(16, 16, 3, padding=1, seed=0), (2, 16, 8, 8)),
    ("MaxPool2D", lambda: MaxPool2D(2), (4, 8, 10, 10)),
    ("AvgPool2D", lambda: AvgPool2D(3, stride=2, padding=1), (4, 8, 10, 10)),
    ("Dense", lambda: Dense(64, 32, seed=0), (8, 64)),
    ("ReLU", ReLU, (8, 64)),
    ("LeakyReLU", lambda: LeakyReLU(0.1), (8, 64)),
    ("BatchNorm1D", lambda: BatchNorm1D(32), (8, 32)),
    ("BatchNorm2D", lambda: BatchNorm2D(8), (4, 8, 10, 10)),
    ("Dropout (eval)", lambda: Dropout(0.5, seed=0).eval(), (8, 64)),
    ("GlobalAvgPool2D", GlobalAvgPool2D, (4, 8, 10, 10)),
    ("Flatten", Flatten, (4, 8, 5, 5)),
    ("SoftmaxCrossEntropy", _Loss, (8, 10)),
]


def engines():
    """``[(device, impl)]`` available here: the CPU's three, the GPU's fast and textbook."""
    found = [("cpu", "fast"), ("cpu", "textbook"), ("cpu", "reference")]
    if gpu_unavailable_reason() is None:
        found += [("gpu", "fast"), ("gpu", "textbook")]
    return found


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _nvvm():
    try:
        from numba.cuda.cudadrv import nvvm
        major, minor = nvvm.NVVM().get_version()
        return f"NVVM IR {major}.{minor}"
    except Exception as err:                 # not found, or numba.cuda not importable
        return "not found (" + " ".join(str(err).split())[:100] + ")"


def versions():
    """``[(name, version or why not)]``."""
    import numba

    from .. import backend
    driver = cuda_driver_version()
    reason = gpu_unavailable_reason()
    cupy = getattr(backend._cupy, "__version__", None) or "not importable"
    return [("Python", platform.python_version()), ("NumPy", np.__version__),
            ("Numba", numba.__version__), ("CuPy", cupy), ("numba-cuda", _version("numba-cuda")),
            ("NVVM", _nvvm()),
            ("NVIDIA driver", "none found" if driver is None else f"CUDA {driver[0]}.{driver[1]}"),
            ("GPU", reason or _gpu_name())]


def _gpu_name():
    import cupy
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def loops():
    """``[(device, what its convolutions and pooling run)]``."""
    fast = kernels.fast
    cpu = "Numba loops (kernels/cpu.py)" if fast.cpu is not None else \
        "the textbook formulas (Numba unavailable)"
    cpu += f", {kernels.threads.num_threads()} threads, Winograd " + \
        ("on" if fast.WINOGRAD else "off")
    rows = [("cpu", cpu)]
    reason = gpu_unavailable_reason()
    if reason is not None:
        rows.append(("gpu", f"none: {reason}"))
    else:
        import cupy
        fast.gpu_loops(cupy.zeros(1, dtype=np.float32))
        rows.append(("gpu", fast.gpu_choice))
    return rows


def _relative(a, ref):
    a, ref = as_numpy(a).astype(np.float64), as_numpy(ref).astype(np.float64)
    return float(np.abs(a - ref).max() / max(float(np.abs(ref).max()), 1e-300))


def run_case(make, shape, device, impl, dtype):
    """``(outputs, seconds)``: output, input gradient and parameter gradients (NumPy),
    and the seconds of one synchronized forward and backward, on one engine."""
    rng = np.random.default_rng(0)
    x = to_device(rng.standard_normal(shape).astype(dtype), device)
    layer = make().astype(dtype).to(device)
    with kernels.use_impl(impl):
        synchronize(x)
        start = time.perf_counter()
        y = layer.forward(x)
        g = to_device(np.random.default_rng(1).standard_normal(y.shape).astype(dtype), device) \
            if y.ndim else get_array_module(y).asarray(1.0, dtype=dtype)
        gx = layer.backward(g)
        synchronize(x)
        seconds = time.perf_counter() - start
    return [y, gx] + [p.grad for p in layer.parameters()], seconds


def parity_table(repeats=5):
    """``[(layer, engine, worst relative difference, median ms)]``; see the module docstring."""
    rows = []
    for name, make, shape in CASES:
        reference, _ = run_case(make, shape, "cpu", "reference", np.float64)
        for device, impl in engines():
            outputs, _ = run_case(make, shape, device, impl, np.float64)
            worst = max(_relative(a, r) for a, r in zip(outputs, reference))
            times = [run_case(make, shape, device, impl, np.float32)[1]
                     for _ in range(1 if impl == "reference" else repeats + 1)]
            times = times[1:] or times           # the first run compiles and warms up
            rows.append((name, f"{device} {impl}", worst, 1e3 * statistics.median(times)))
    return rows


def run(repeats=5, print_=print):
    """Print the report; returns the exit status (1 when an engine disagrees)."""
    print_("minicnn doctor")
    print_("\nversions:")
    for name, value in versions():
        print_(f"  {name:<14} {value}")
    print_("\nkernels (the fast engine's loops):")
    for device, what in loops():
        print_(f"  {device:<14} {what}")
    print_(f"\nparity: worst relative difference against the CPU reference engine (float64; "
           f"ok below {TOLERANCE:g}), median ms of forward + backward (float32)")
    print_(f"  {'layer':<26}{'engine':<16}{'worst diff':>12}{'ms':>10}")
    failed = 0
    for name, engine, worst, ms in parity_table(repeats):
        verdict = "ok" if worst < TOLERANCE else "MISMATCH"
        failed += verdict != "ok"
        print_(f"  {name:<26}{engine:<16}{worst:>12.1e}{ms:>10.3f}  {verdict}")
    print_(f"\n{'every engine agrees' if not failed else f'{failed} rows disagree'}")
    return 1 if failed else 0
