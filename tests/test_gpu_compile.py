"""Every numba.cuda kernel of kernels/cuda.py compiled ahead of time for the H100's
architecture (sm_90) in float32 and float64, and the CuPy RawKernel sources
(benchmarks/raw_kernels.py) through NVRTC: typing and compile errors surface without a GPU.

The kernels are typed as a launch types them: each wrapper of cuda.py (``im2col``,
``maxpool_forward``, ...) runs on NumPy arrays with ``_launch`` recording the kernel and
its arguments instead of launching it (a C-contiguous CuPy array is typed as the NumPy
array of the same dtype and layout). The compilers come with ``numba-cuda[cu12]`` (NVVM,
NVRTC): CI installs it in an environment of its own (.ci/run); elsewhere these tests skip
and say so.
"""
import ast
import re
from pathlib import Path

import numpy as np
import pytest

ARCH = (9, 0)                                    # H100
ROOT = Path(__file__).resolve().parents[1]


def compile_ptx_or_skip():
    try:
        from numba import cuda
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()                               # finds libNVVM, or raises
    except Exception as err:
        pytest.skip(f"NVVM unavailable ({' '.join(str(err).split())[:160]}): "
                    f"pip install 'numba-cuda[cu12]' (CI does, in .venv-nvvm)")
    return cuda.compile_ptx


def launches(dtype, monkeypatch):
    """``{kernel name: (python function, argument types)}`` of every kernel cuda.py launches."""
    from minicnn.kernels import cuda
    from numba import typeof
    seen = {}

    def record(kernel, n_threads, *args):
        seen[kernel.py_func.__name__] = (kernel.py_func, tuple(typeof(a) for a in args))
    monkeypatch.setattr(cuda, "_launch", record)
    x = np.ones((2, 3, 6, 6), dtype)
    cols = cuda.im2col(x, (3, 3), (1, 1), (1, 1))
    cuda.col2im(cols, x.shape, (3, 3), (1, 1), (1, 1))
    out, switches = cuda.maxpool_forward(x, (2, 2), (2, 2), (0, 0))
    cuda.maxpool_backward(out, switches, x.shape)
    out = cuda.avgpool_forward(x, (2, 2), (2, 2), (0, 0))
    cuda.avgpool_backward(out, x.shape, (2, 2), (2, 2), (0, 0))
    return seen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_cuda_kernel_compiles_for_sm_90(dtype, monkeypatch):
    compile_ptx = compile_ptx_or_skip()
    kernels = launches(dtype, monkeypatch)
    assert len(kernels) == 6, sorted(kernels)
    for name, (function, signature) in kernels.items():
        ptx, _ = compile_ptx(function, signature, cc=ARCH)
        assert ".target sm_90" in ptx, name
        if dtype == np.float32:       # float32 kernels compute in float32 (kernels/cuda.py)
            wide = sorted(set(re.findall(r"\b[a-z]+(?:\.[a-z]+)*\.f64\b", ptx)))
            assert not wide, f"{name}: float64 instructions in the float32 kernel: {wide}"


def raw_kernel_sources():
    """``(file, source)`` of every CUDA C source the project hands to CuPy's RawKernel or
    RawModule: the module-level string constants of files that use them."""
    for folder in ("minicnn", "kernels", "benchmarks", "examples"):   # the project's own code
        yield from _raw_sources_in(ROOT / folder)


def _raw_sources_in(folder):
    for path in sorted(folder.glob("**/*.py")):
        text = path.read_text(encoding="utf-8")
        if "RawKernel(" not in text and "RawModule(" not in text:
            continue
        for node in ast.parse(text).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                    isinstance(node.value.value, str) and "__global__" in node.value.value:
                yield path.relative_to(ROOT), node.value.value


def test_raw_kernel_sources_compile_with_nvrtc_for_sm_90():
    try:
        from cuda.bindings import nvrtc
        nvrtc.nvrtcVersion()
    except Exception as err:
        pytest.skip(f"NVRTC unavailable ({' '.join(str(err).split())[:160]}): "
                    f"pip install 'numba-cuda[cu12]' (it brings cuda-bindings and NVRTC)")
    sources = list(raw_kernel_sources())
    assert sources, "no RawKernel source found (benchmarks/raw_kernels.py has some)"
    for path, source in sources:
        _, program = nvrtc.nvrtcCreateProgram(source.encode(), str(path).encode(), 0, [], [])
        options = [b"--gpu-architecture=compute_90"]
        (result,) = nvrtc.nvrtcCompileProgram(program, len(options), options)
        _, size = nvrtc.nvrtcGetProgramLogSize(program)
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(program, log)
        assert result == nvrtc.nvrtcResult.NVRTC_SUCCESS, f"{path}: {log.decode(errors='replace')}"
