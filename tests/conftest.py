"""Shared fixtures: every test that takes ``backend`` runs once per array module.

``backend`` is the array module (``numpy`` or ``cupy``); the CuPy case skips
with the reason when CuPy or a GPU is missing. ``device`` is the matching
minicnn device name ("cpu" or "gpu"). Every CuPy case is marked ``gpu``.

``MINICNN_FAKE_GPU=1 pytest -m gpu`` runs the CuPy cases on the strict stand-in
for CuPy (``fake_cupy.py``) instead of skipping them: the GPU code path on the
CPU, its host round trips counted. There the GPU's loops are the textbook
formulas (CuPy's array operations: the simulator is too slow for every case);
``simulated_gpu`` runs the numba.cuda kernels on Numba's CUDA simulator for small
calls. ``fake_gpu`` installs the stand-in for one test in any run.
"""
import os
from pathlib import Path

FAKE_GPU = os.environ.get("MINICNN_FAKE_GPU") == "1"
if FAKE_GPU:                      # before Numba loads: kernels/cuda.py on the simulator
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import fake_cupy  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from minicnn.backend import gpu_unavailable_reason  # noqa: E402

BACKENDS = ["numpy", "cupy"]
SIMULATED_SIZE = 256        # the simulator runs a Python thread per element: small calls only


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: a CuPy case of the backend/device fixtures")
    if FAKE_GPU:
        config._fake_gpu = pytest.MonkeyPatch()
        install_fake_gpu(config._fake_gpu)


def pytest_unconfigure(config):
    if getattr(config, "_fake_gpu", None) is not None:
        config._fake_gpu.undo()


def pytest_collection_modifyitems(items):
    for item in items:
        if getattr(item, "callspec", None) and item.callspec.params.get("backend") == "cupy":
            item.add_marker(pytest.mark.gpu)


class SimulatedOrTextbook:
    """The GPU's loops of ``simulated_gpu``: ``cuda.py`` on the simulator for calls of at
    most ``SIMULATED_SIZE`` elements, ``textbook`` above (the simulator is slow)."""

    __name__ = "cuda (simulated, small calls) + textbook"

    def __init__(self, cuda):
        self.cuda = cuda

    def __getattr__(self, name):
        from minicnn.kernels import textbook

        def call(first, *args, **kwargs):
            module = self.cuda if first.size <= SIMULATED_SIZE else textbook
            return getattr(module, name)(first, *args, **kwargs)
        return call


def install_fake_gpu(monkeypatch, simulate=False):
    """The stand-in as CuPy, the GPU's loops the textbook formulas (CuPy's array operations)
    or, with ``simulate``, the numba.cuda kernels on the simulator (they read the stand-in's
    memory through ``__cuda_array_interface__``) for small calls."""
    from minicnn.kernels import fast, textbook
    fake_cupy.install(monkeypatch)
    loops = textbook
    if simulate:
        from minicnn.kernels import cuda
        launch = cuda._launch

        def shared_launch(kernel, n_threads, *args):
            launch(kernel, n_threads, *[fake_cupy.shared_numpy(a)
                                        if isinstance(a, fake_cupy.ndarray) else a
                                        for a in args])
        monkeypatch.setattr(cuda, "_launch", shared_launch)
        monkeypatch.setattr(fast, "_gpu", None)
        monkeypatch.setenv("MINICNN_GPU_KERNELS", "numba")
        loops = SimulatedOrTextbook(fast.gpu_loops(fake_cupy.zeros(1, dtype=np.float32)))
    monkeypatch.setattr(fast, "_gpu", loops)
    monkeypatch.setattr(fast, "gpu_choice", f"the stand-in's loops: {loops.__name__}")
    return fake_cupy


@pytest.fixture
def fake_gpu(monkeypatch):
    """The strict CuPy stand-in for this test (``fake_cupy``), its counts zeroed."""
    install_fake_gpu(monkeypatch)
    fake_cupy.COUNTS.reset()
    return fake_cupy


@pytest.fixture
def simulated_gpu(monkeypatch):
    """The stand-in with the numba.cuda kernels on Numba's CUDA simulator (small calls),
    where it runs (``NUMBA_ENABLE_CUDASIM=1`` before Numba loaded: the stand-in's run)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 from the start (MINICNN_FAKE_GPU=1 sets it)")
    install_fake_gpu(monkeypatch, simulate=True)
    fake_cupy.COUNTS.reset()
    return fake_cupy


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "numpy":
        return np
    reason = gpu_unavailable_reason()
    if reason is not None:
        pytest.skip(f"GPU backend: {reason}")
    import cupy
    return cupy


@pytest.fixture
def device(backend):
    return "cpu" if backend is np else "gpu"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def data_root():
    """The folder named by MINICNN_DATA (holding mnist/ and fashion-mnist/), or skip."""
    root = os.environ.get("MINICNN_DATA")
    if not root:
        pytest.skip("MINICNN_DATA is not set: real-data test skipped (CI sets it to ../shared/data)")
    if not os.path.isdir(os.path.join(root, "mnist")):
        pytest.skip(f"MINICNN_DATA={root} has no mnist/ folder: real-data test skipped")
    return root


@pytest.fixture(autouse=True)
def _threads_restored():
    """A test may change minicnn's thread count (kernels.threads); the next one gets it back."""
    from minicnn.kernels import threads
    before = threads.num_threads()
    yield
    threads.set_num_threads(before)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip raised in a fixture (``backend`` without a GPU, ``data_root`` without
    MINICNN_DATA) is reported where the fixture raised it, not at each test that used it, so
    the short summary (``-ra``) folds it into one line with a count ("SKIPPED [157]
    tests/conftest.py:N: GPU backend: ..."). Skips in a test body or by a mark, which pytest
    already reports where they are, are left alone."""
    report = yield
    if report.skipped and call.excinfo is not None and isinstance(report.longrepr, tuple):
        raised = call.excinfo.traceback.filter(call.excinfo)[-1]   # pytest.skip's frame hidden
        if item.config.rootpath in Path(raised.path).parents:
            report.longrepr = (str(raised.path), raised.lineno + 1, report.longrepr[2])
    return report


# -- Hypothesis (property-based tests, e.g. test_parity_sweep.py) ---------------------------
# "ci", the default: a fixed budget and seed (derandomize), so a run takes the same time and
# finds the same thing every time; no deadline (a first call compiles Numba kernels).
# HYPOTHESIS_PROFILE=local searches ten times longer, with a new seed each run.
try:
    from hypothesis import settings as _hypothesis
except ImportError:              # hypothesis comes with the test extra
    pass
else:
    _hypothesis.register_profile("ci", max_examples=40, derandomize=True, deadline=None,
                                 database=None, print_blob=True)
    _hypothesis.register_profile("local", max_examples=400, deadline=None, print_blob=True)
    _hypothesis.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
