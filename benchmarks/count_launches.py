"""Count what one training step of a model would launch on the GPU, by running it on the CPU.

On the GPU path every array operation of the layers, the loss and Adam is one CuPy
launch, every matrix product one cuBLAS call, every kernel of the facade one
``numba.cuda`` launch, and every ``float()``/``int()``/``bool()`` of an array a host
round trip. This script runs one step (after one untimed step, so Adam's buffers
exist) with NumPy arrays of a subclass that counts each such operation, and with the
array module the code asks for (``get_array_module``) replaced by one that counts
allocations, fills and host-to-device copies. The facade's kernels (``im2col`` ...)
are counted as one numba.cuda launch each; each CuPy array argument of such a launch
is also a stream synchronisation, since numba synchronises the stream named in the
array's ``__cuda_array_interface__`` (``NUMBA_CUDA_ARRAY_INTERFACE_SYNC``, on by default).

    python benchmarks/count_launches.py --model lenet --batch 64 [--markdown]

What it cannot see: launches inside CuPy itself (a reduction may take two kernels)
and CUDA-side work of cuBLAS; it counts calls, as the code makes them.
"""
import argparse
import collections
import sys

import numpy as np

from minicnn import kernels, models
from minicnn.layers.loss import SoftmaxCrossEntropy
from minicnn.optim import Adam

COUNTS = collections.Counter()
KINDS = ("elementwise", "fill", "copy", "gather/scatter", "cuBLAS", "numba.cuda", "host sync")
# What each facade function of kernels/cuda.py does around its one numba.cuda launch:
# (array arguments of the launch, each one a CAI sync; zero fills; host-to-device copies).
# Average pooling uploads its (H_out, W_out) divisors (textbook.avgpool_divisors, NumPy)
# and passes them as a third array; both backward passes zero-fill grad_x first.
LAUNCHES = {"im2col": (2, 0, 0), "col2im": (2, 0, 0), "maxpool_forward": (3, 0, 0),
            "maxpool_backward": (3, 1, 0), "avgpool_forward": (3, 0, 1),
            "avgpool_backward": (3, 1, 1)}


def _plain(a):
    return a.view(np.ndarray) if isinstance(a, Tracked) else a


def _wrap(a):
    if isinstance(a, np.generic):              # CuPy reductions give 0-d arrays, not scalars
        a = np.asarray(a)
    return a.view(Tracked) if type(a) is np.ndarray else a


def _advanced(key):
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, (np.ndarray, list)) for k in keys)


class Tracked(np.ndarray):
    """A NumPy array that counts the GPU operations CuPy would make for it."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        COUNTS["cuBLAS" if ufunc is np.matmul else "elementwise"] += 1
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*map(_plain, inputs), **kwargs)
        return tuple(map(_wrap, result)) if isinstance(result, tuple) else _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ in ("concatenate", "copy", "pad"):
            COUNTS["copy"] += 1
        plain_args = [[_plain(a) for a in x] if isinstance(x, (list, tuple)) else _plain(x)
                      for x in args]
        return _wrap(func(*plain_args, **{k: _plain(v) for k, v in kwargs.items()}))

    def __getitem__(self, key):
        if _advanced(key):
            COUNTS["gather/scatter"] += 1
        return _wrap(np.ndarray.__getitem__(self.view(np.ndarray), key))

    def __setitem__(self, key, value):
        fill = np.isscalar(value) or getattr(value, "ndim", 1) == 0
        COUNTS["gather/scatter" if _advanced(key) else "fill" if fill else "copy"] += 1
        np.ndarray.__setitem__(self.view(np.ndarray), key, _plain(value))

    def reshape(self, *shape, **kwargs):
        result = np.ndarray.reshape(self.view(np.ndarray), *shape, **kwargs)
        if not np.shares_memory(result, self):
            COUNTS["copy"] += 1               # a non-contiguous reshape copies
        return _wrap(result)

    def mean(self, *args, **kwargs):           # NumPy: a sum and a division; CuPy: one kernel
        COUNTS["elementwise"] += 1
        return _wrap(np.ndarray.mean(self.view(np.ndarray), *args, **kwargs))

    def copy(self, *args, **kwargs):
        COUNTS["copy"] += 1
        return _wrap(np.ndarray.copy(self.view(np.ndarray), *args, **kwargs))

    def astype(self, dtype, *args, **kwargs):
        COUNTS["copy"] += 1
        return _wrap(np.ndarray.astype(self.view(np.ndarray), dtype, *args, **kwargs))

    def _host(self, convert):
        COUNTS["host sync"] += 1
        return convert(self.view(np.ndarray))

    def __float__(self):
        return self._host(float)

    def __int__(self):
        return self._host(int)

    def __bool__(self):
        return self._host(bool)

    def item(self, *args):
        return self._host(lambda a: a.item(*args))


class CountingModule:
    """What ``get_array_module`` hands the code: NumPy, with CuPy's costs counted."""

    def __getattr__(self, name):
        return getattr(np, name)

    def empty(self, *args, **kwargs):          # from CuPy's pool: no launch
        return _wrap(np.empty(*args, **kwargs))

    def zeros(self, *args, **kwargs):
        COUNTS["fill"] += 1
        return _wrap(np.zeros(*args, **kwargs))

    def zeros_like(self, a, *args, **kwargs):
        COUNTS["fill"] += 1
        return _wrap(np.zeros_like(_plain(a), *args, **kwargs))

    def arange(self, *args, **kwargs):
        COUNTS["elementwise"] += 1
        return _wrap(np.arange(*args, **kwargs))

    def asarray(self, a, *args, **kwargs):
        if type(a) is np.ndarray:              # a host array: one host-to-device copy
            COUNTS["host sync"] += 1
        return _wrap(np.asarray(_plain(a), *args, **kwargs))

    def ascontiguousarray(self, a, *args, **kwargs):
        if not _plain(a).flags.c_contiguous:
            COUNTS["copy"] += 1
        return _wrap(np.ascontiguousarray(_plain(a), *args, **kwargs))


def _counting_kernel(name, real):
    def kernel(*args):
        arrays, fills, uploads = LAUNCHES[name]
        COUNTS["numba.cuda"] += 1
        COUNTS["host sync"] += arrays + uploads
        COUNTS["fill"] += fills
        result = real(*map(_plain, args))
        return tuple(map(_wrap, result)) if isinstance(result, tuple) else _wrap(result)
    return kernel


class CountingLoops:
    """The fast engine's loops (``kernels.fast.loops``) as the GPU would launch them."""

    def __init__(self, real):
        for name in LAUNCHES:
            setattr(self, name, _counting_kernel(name, getattr(real, name)))


def install_counters():
    chunks = kernels.chunks
    chunks.MAX_COLS_BYTES["cpu"] = chunks.MAX_COLS_BYTES["gpu"]     # chunk as on the GPU,
    chunks.MAX_KEPT_BYTES["cpu"] = chunks.MAX_KEPT_BYTES["gpu"]     # keep columns as there,
    kernels.threads.set_num_threads(1)                              # one chunk stream
    kernels.use_impl("fast", winograd=False, direct=False)          # im2col, as on the GPU
    kernels.fast._compiled = lambda x: False      # ReLU, Adam, BatchNorm, Dense as on the GPU
    loops = CountingLoops(kernels.fast.loops(np.zeros(1)))
    kernels.fast.loops = lambda x: loops
    shim = CountingModule()
    for module in list(sys.modules.values()):
        # minicnn.backend keeps the real one: device_of must still see NumPy arrays, so
        # the loops run on the CPU
        if getattr(module, "__name__", "").startswith("minicnn") and \
                module.__name__ != "minicnn.backend" and hasattr(module, "get_array_module"):
            module.get_array_module = lambda *arrays: shim


def count_step(model_name, batch):
    """``[(phase, Counter)]`` for one steady-state training step, phase by phase."""
    install_counters()
    model = getattr(models, model_name)()
    for p in model.parameters():
        p.value, p.grad = _wrap(p.value), _wrap(p.grad)
    rng = np.random.default_rng(0)
    x = _wrap(rng.random((batch, 1, 28, 28), dtype=np.float32))
    y = _wrap(rng.integers(0, 10, batch))
    opt, loss = Adam(model.parameters(), lr=1e-3), SoftmaxCrossEntropy()
    phases = []

    def phase(name, fn):
        COUNTS.clear()
        result = fn()
        phases.append((name, collections.Counter(COUNTS)))
        return result

    for counted in (False, True):
        phases.clear()
        phase("zero_grad", opt.zero_grad)
        h = x
        for i, layer in enumerate(model.layers):
            h = phase(f"{i} {type(layer).__name__} forward", lambda: layer.forward(h))
        phase("loss forward", lambda: loss.forward(h, y))
        g = phase("loss backward", loss.backward)
        for i in reversed(range(len(model.layers))):
            layer = model.layers[i]
            g = phase(f"{i} {type(layer).__name__} backward", lambda: layer.backward(g))
        phase("Adam step", opt.step)
    return phases


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="lenet")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    phases = count_step(args.model, args.batch)
    total = sum((c for _, c in phases), collections.Counter())
    header = ["phase"] + list(KINDS)
    rows = [[name] + [str(c[k] or "") for k in KINDS] for name, c in phases if c]
    rows.append(["total"] + [str(total[k]) for k in KINDS])
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        for row in [header] + rows:
            print(f"{row[0]:<24}" + "".join(f"{cell:>15}" for cell in row[1:]))
    launches = sum(total[k] for k in KINDS if k != "host sync")
    print(f"\n{args.model}, batch {args.batch}: {launches} launches "
          f"(kernels, fills, copies, cuBLAS calls) and {total['host sync']} host syncs per step")


if __name__ == "__main__":
    sys.exit(main())
