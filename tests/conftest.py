"""Shared fixtures: every test that takes ``backend`` runs once per array module.

``backend`` is the array module (``numpy`` or ``cupy``); the CuPy case skips
with the reason when CuPy or a GPU is missing. ``device`` is the matching
minicnn device name ("cpu" or "gpu").
"""
import os
from pathlib import Path

import numpy as np
import pytest

from minicnn.backend import gpu_unavailable_reason

BACKENDS = ["numpy", "cupy"]


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
def _chunk_threads_restored():
    """A test may change minicnn's chunk threads (kernels.threads); the next one gets them back."""
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
