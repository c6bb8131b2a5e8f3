"""Shared fixtures: every test that takes ``backend`` runs once per array module.

``backend`` is the array module (``numpy`` or ``cupy``); the CuPy case skips
with the reason when CuPy or a GPU is missing. ``device`` is the matching
minicnn device name ("cpu" or "gpu").
"""
import os

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
