"""How far a debugger steps from a layer's forward or backward to the arithmetic.

Traces (``sys.setprofile``) every Python function of minicnn that runs from the
start of ``Conv2D.forward``/``backward`` or ``MaxPool2D.forward``/``backward``
until the first call of the function that does the layer's arithmetic (im2col,
col2im, the pooling loops or formula, Winograd's tiles), and prints how many
distinct functions and files it passed, and which. Numba's compiled loops are
invisible to a profiler, so run it with ``NUMBA_DISABLE_JIT=1`` (set here before
minicnn is imported), as a learner stepping in with ``pdb`` would.

    python benchmarks/trace_route.py            # every route, default engine
    python benchmarks/trace_route.py --impl textbook
"""
import argparse
import os
import sys

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

import numpy as np  # noqa: E402

import minicnn  # noqa: E402

# The functions that do the arithmetic, by name (the end of a route).
# The functions that do the arithmetic (the end of a route), by file and name: the
# compiled loops of the fast engine and the array formulas of the textbook one.
ARITHMETIC = {("cpu.py", n) for n in ("_im2col_kernel", "_col2im_kernel",
                                      "_maxpool_forward_kernel", "_maxpool2x2_kernel",
                                      "_maxpool_backward_kernel")}
ARITHMETIC |= {("winograd_cpu.py", n) for n in ("input_tiles", "grad_tiles")}
ARITHMETIC |= {("direct_cpu.py", "forward")}
ARITHMETIC |= {("direct_grad_cpu.py", n) for n in ("input_grad", "weight_grad")}
ARITHMETIC |= {(f, n) for f in ("vectorized.py", "textbook.py")  # (vectorized.py: the old name)
               for n in ("im2col", "col2im", "maxpool_forward", "maxpool_backward",
                         "window_columns", "scatter_add")}
PROJECT = (os.path.dirname(os.path.dirname(minicnn.__file__)),)


def _is_project(code):
    path = os.path.abspath(code.co_filename)
    return path.startswith(PROJECT) and "site-packages" not in path


def trace(call, start_name):
    """``(functions, files)`` entered between the start of ``start_name`` and the
    first arithmetic function (neither end counted; the start's own file counted)."""
    seen, files, state = [], set(), {"on": False, "done": False}

    def profile(frame, event, arg):
        if event != "call" or state["done"]:
            return
        code = frame.f_code
        if not _is_project(code):
            return
        if not state["on"]:
            if code.co_name == start_name:
                state["on"] = True
                files.add(os.path.relpath(code.co_filename, PROJECT[0]))
            return
        if (os.path.basename(code.co_filename), code.co_name) in ARITHMETIC:
            state["done"] = True
            seen.append(f"-> {code.co_name} ({os.path.relpath(code.co_filename, PROJECT[0])})")
            return
        name = f"{code.co_name} ({os.path.relpath(code.co_filename, PROJECT[0])})"
        if name not in seen:
            seen.append(name)
            files.add(os.path.relpath(code.co_filename, PROJECT[0]))
    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return seen, files


def routes(impl_kwargs):
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    x2 = rng.standard_normal((4, 32, 14, 14)).astype(np.float32)
    conv1 = minicnn.Conv2D(1, 32, 5, padding=2, **impl_kwargs)       # lenet's conv1: im2col
    conv2 = minicnn.Conv2D(32, 64, 5, padding=2, **impl_kwargs)      # lenet's conv2: Winograd
    pool = minicnn.MaxPool2D(2, **impl_kwargs)
    out = {}
    for name, layer, x in (("Conv2D 1->32 (lenet conv1)", conv1, x1),
                           ("Conv2D 32->64 (lenet conv2)", conv2, x2),
                           ("MaxPool2D 2x2", pool, x2)):
        y = layer.forward(x)                                         # warm: imports, caches
        out[name + " forward"] = trace(lambda: layer.forward(x), "forward")
        g = np.ones_like(y)
        out[name + " backward"] = trace(lambda: layer.backward(g), "backward")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default=None, help="the layers' impl (default: the default)")
    parser.add_argument("--quiet", action="store_true", help="counts only")
    args = parser.parse_args(argv)
    kwargs = {} if args.impl is None else {"impl": args.impl}
    for name, (functions, files) in routes(kwargs).items():
        count = sum(1 for f in functions if not f.startswith("->"))
        print(f"{name}: {count} functions in {len(files)} files before the arithmetic")
        if not args.quiet:
            for f in functions:
                print(f"    {f}")


if __name__ == "__main__":
    main()
