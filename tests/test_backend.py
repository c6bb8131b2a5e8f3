"""Backends: array-module choice, moving models, clear errors, dtypes."""
import numpy as np
import pytest

import minicnn.backend as backend_module
from minicnn import models
from minicnn.backend import as_numpy, device_of, get_array_module, gpu_available, to_device


def test_array_module_follows_the_arrays(backend):
    x = backend.zeros(3)
    assert get_array_module(x) is backend
    assert get_array_module(np.zeros(1), x) is backend
    assert device_of(x) == ("cpu" if backend is np else "gpu")
    assert isinstance(as_numpy(x), np.ndarray)


def test_gpu_without_cupy_says_cupy_is_missing(monkeypatch):
    monkeypatch.setattr(backend_module, "_cupy", None)
    with pytest.raises(RuntimeError, match=r"device 'gpu' requested but CuPy is not installed"):
        models.tiny_cnn().to("gpu")
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        to_device(np.zeros(2), "gpu")


def test_gpu_without_device_says_no_device(monkeypatch):
    class NoDevice:                      # stands in for CuPy on a machine without a GPU
        class cuda:
            class runtime:
                @staticmethod
                def getDeviceCount():
                    raise RuntimeError("cudaErrorNoDevice")
        ndarray = type(None)

    monkeypatch.setattr(backend_module, "_cupy", NoDevice)
    with pytest.raises(RuntimeError, match=r"CuPy is installed but no CUDA device is usable "
                                           r"\(cudaErrorNoDevice\)"):
        models.tiny_cnn().to("gpu")


def test_gpu_error_on_this_machine_or_move_works():
    model = models.tiny_cnn()
    if gpu_available():
        assert device_of(model.to("gpu").parameters()[0].value) == "gpu"
        assert device_of(model.to("cpu").parameters()[0].value) == "cpu"
    else:
        with pytest.raises(RuntimeError, match="device 'gpu' requested but CuPy is"):
            model.to("gpu")


def test_unknown_device_name():
    with pytest.raises(ValueError, match=r"device must be one of \('cpu', 'gpu'\), got 'cuda'"):
        models.tiny_cnn().to("cuda")


def test_model_and_input_on_different_devices(backend):
    if backend is np:
        pytest.skip("needs a GPU: the mismatch is between a CPU model and a GPU input")
    model = models.tiny_cnn()
    with pytest.raises(ValueError, match=r"^Sequential has its parameters on 'cpu' but got a "
                                         r"CuPy \('gpu'\) input: move the input with "
                                         r"minicnn.backend.to_device\(x, 'cpu'\) or the model "
                                         r"with .to\('gpu'\)$"):
        model.forward(backend.zeros((1, 1, 28, 28), dtype=np.float32))
    model.to("gpu")
    with pytest.raises(ValueError, match=r"has its parameters on 'gpu' but got a NumPy "
                                         r"\('cpu'\) input"):
        model.forward(np.zeros((1, 1, 28, 28), dtype=np.float32))
    conv = model[0]          # a single layer says the same, with its name
    with pytest.raises(ValueError, match=r"^Conv2D\(in_channels=1.*\) has its parameters on "
                                         r"'gpu' but got a NumPy \('cpu'\) input"):
        conv.forward(np.zeros((1, 1, 28, 28), dtype=np.float32))
    y = conv.forward(backend.zeros((1, 1, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match=r"has its parameters on 'gpu' but got a NumPy "
                                         r"\('cpu'\) gradient"):
        conv.backward(np.zeros(y.shape, dtype=np.float32))


def test_float32_by_default_and_float64_on_request(backend, device, rng):
    model = models.tiny_cnn().to(device)
    assert all(p.value.dtype == np.float32 for p in model.parameters())
    x = rng.standard_normal((2, 1, 28, 28))
    y32 = model.forward(backend.asarray(x.astype(np.float32)))
    assert y32.dtype == np.float32
    assert model.backward(backend.ones_like(y32)).dtype == np.float32
    model.astype("float64")
    assert all(p.value.dtype == p.grad.dtype == np.float64 for p in model.parameters())
    y64 = model.forward(backend.asarray(x))
    assert y64.dtype == np.float64
    assert model.backward(backend.ones_like(y64)).dtype == np.float64
    np.testing.assert_allclose(as_numpy(y64), as_numpy(y32), rtol=1e-4, atol=1e-5)


def _pyproject_extras():
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "pyproject.toml"
    return tomllib.loads(path.read_text())["project"]["optional-dependencies"]


@pytest.mark.parametrize("driver, extra, wheel", [((12, 4), "gpu", "cupy-cuda12x"),
                                                  ((13, 0), "gpu-cuda13", "cupy-cuda13x")])
def test_missing_cupy_names_the_wheel_for_the_driver(monkeypatch, driver, extra, wheel):
    monkeypatch.setattr(backend_module, "_cupy", None)
    monkeypatch.setattr(backend_module, "cuda_driver_version", lambda: driver)
    reason = backend_module.gpu_unavailable_reason()
    assert reason.startswith("CuPy is not installed")
    assert f"pip install -e .[{extra}]" in reason and wheel in reason
    # the extra it names exists and installs that wheel, with numba-cuda for the kernels
    requirements = _pyproject_extras()[extra]
    assert any(r.startswith(wheel) for r in requirements), requirements
    assert any(r.startswith("numba-cuda") for r in requirements), requirements


def test_missing_cupy_without_a_driver_says_so(monkeypatch):
    monkeypatch.setattr(backend_module, "_cupy", None)
    monkeypatch.setattr(backend_module, "cuda_driver_version", lambda: None)
    reason = backend_module.gpu_unavailable_reason()
    assert "no NVIDIA driver" in reason
    assert ".[gpu]" in reason and ".[gpu-cuda13]" in reason


def test_driver_too_old_for_any_wheel(monkeypatch):
    monkeypatch.setattr(backend_module, "_cupy", None)
    monkeypatch.setattr(backend_module, "cuda_driver_version", lambda: (11, 8))
    assert "update the NVIDIA driver" in backend_module.gpu_unavailable_reason()


def test_cuda_driver_version_is_none_or_a_pair():
    version = backend_module.cuda_driver_version()
    assert version is None or (len(version) == 2 and version[0] >= 1)
