"""The GPU code path without a GPU: the strict CuPy stand-in (fake_cupy.py) itself, the
host round trips of a training step, the numba.cuda kernels on the stand-in's memory,
and the fallback when the kernels fail at their first launch."""
import math
import sys
import types

import numpy as np
import pytest
from minicnn.kernels import fast, textbook

from minicnn import kernels, models
from minicnn.backend import as_numpy, device_of, to_device
from minicnn.training.config import TrainConfig
from minicnn.training.reporting import MetricsLog
from minicnn.training.trainer import Trainer


def test_the_stand_in_refuses_what_cupy_refuses(fake_gpu):
    a = fake_gpu.asarray(np.arange(6.0).reshape(2, 3))
    assert device_of(a) == "gpu" and not isinstance(a, np.ndarray)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.testing.assert_allclose(a, np.zeros((2, 3)))
    for mixed in (lambda: a + np.ones(3), lambda: np.ones(3) * a, lambda: np.maximum(a, [1.0])):
        with pytest.raises(TypeError, match="Unsupported type"):
            mixed()
    with pytest.raises(AttributeError):
        fake_gpu.errstate                            # NumPy has it, CuPy has not
    with pytest.raises(AttributeError):
        a.tobytes
    assert isinstance(np.exp(a) + 1.0, fake_gpu.ndarray)     # scalars and NumPy's ufuncs: fine


def test_the_stand_in_counts_round_trips_by_call_site(fake_gpu):
    with fake_gpu.counting() as counts:
        a = to_device(np.ones(3, dtype=np.float32), "gpu")       # one host-to-device copy
        total = a.sum()                                           # stays on the device
        assert isinstance(total, fake_gpu.ndarray) and total.ndim == 0
        float(total), as_numpy(a), a.tolist()                     # three round trips
    here = f"tests/test_fake_gpu.py:{sys._getframe().f_lineno - 1}"
    assert counts.host == {here: 3}
    assert sum(counts.to_device.values()) == 1


def test_cuda_array_interface_shares_the_memory(fake_gpu):
    a = fake_gpu.arange(12, dtype=np.float32).reshape(3, 4).T          # not C-contiguous
    view = fake_gpu.shared_numpy(a)
    np.testing.assert_array_equal(view, np.arange(12, dtype=np.float32).reshape(3, 4).T)
    view[0, 2] = -1.0
    assert float(a[0, 2]) == -1.0


def small_trainer(tmp_path, model="lenet", steps=20, batch=8):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (steps * batch, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, steps * batch)
    config = TrainConfig(model=model, epochs=1, batch_size=batch, train_subset=steps * batch,
                         test_subset=batch)
    return Trainer(config, (images, labels), (images, labels), tmp_path, device="gpu",
                   progress=False)


@pytest.mark.parametrize("model", ["lenet", "fast_cnn"])      # Dropout; BatchNorm
def test_a_training_epoch_reads_back_only_every_ten_steps(fake_gpu, tmp_path, model):
    """The plan (minicnn/training/trainer.py ``_train_epoch``): each step's loss and correct count stay
    on the device; every CHECK_EVERY steps both are read back at once. The only copy to
    the device is the epoch's shuffled order (the images went there once, before)."""
    from minicnn.training.divergence import CHECK_EVERY
    trainer, steps = small_trainer(tmp_path, model), 20
    with fake_gpu.counting() as counts:
        trainer._train_epoch(MetricsLog(str(tmp_path / "m.jsonl"), []), 0.0)
    reads = math.ceil(steps / CHECK_EVERY)
    assert all(site.startswith("minicnn/training/trainer.py:") for site in counts.host), counts.host
    assert sum(counts.host.values()) == 2 * reads, counts.host        # losses, corrects
    assert list(counts.to_device) == [s for s in counts.to_device
                                      if s.startswith("minicnn/data/batches.py:")]
    assert sum(counts.to_device.values()) == 1, counts.to_device


def test_dropout_draws_its_mask_on_the_device_from_the_seed(fake_gpu):
    from minicnn import Dropout
    x = fake_gpu.ones((64, 32), dtype=np.float32)
    with fake_gpu.counting() as counts:
        a, b = Dropout(0.5, seed=3).forward(x), Dropout(0.5, seed=3).forward(x)
    assert not counts.to_device and not counts.host
    np.testing.assert_array_equal(as_numpy(a), as_numpy(b))        # the seed decides
    kept = as_numpy(a) != 0
    assert abs(kept.mean() - 0.5) < 0.05 and np.all(as_numpy(a)[kept] == 2.0)
    cpu = Dropout(0.5, seed=3).forward(np.ones((64, 32), dtype=np.float32))
    np.testing.assert_array_equal(cpu, Dropout(0.5, seed=3).forward(np.ones((64, 32),
                                                                             np.float32)))


@pytest.mark.gpu
def test_the_cuda_kernels_run_on_the_stand_ins_memory(simulated_gpu):
    """numba.cuda's simulator runs kernels/cuda.py on the memory the stand-in shares through
    ``__cuda_array_interface__``: a small conv and pool stack agrees with the CPU."""
    assert fast.gpu_loops(simulated_gpu.zeros(1)).cuda.__name__ == "minicnn.kernels.cuda"
    from minicnn import AvgPool2D, Conv2D, MaxPool2D, Sequential
    model = Sequential([Conv2D(1, 2, 3, padding=1, seed=0), MaxPool2D(2),
                        AvgPool2D(2, stride=1, padding=1)]).astype("float64")
    x = np.random.default_rng(0).standard_normal((1, 1, 6, 6))
    y_cpu = model.forward(x)
    g = np.random.default_rng(1).standard_normal(y_cpu.shape)
    gx_cpu = model.backward(g)
    model.to("gpu")
    y = model.forward(to_device(x, "gpu"))
    np.testing.assert_allclose(as_numpy(y), y_cpu, rtol=1e-12)
    np.testing.assert_allclose(as_numpy(model.backward(to_device(g, "gpu"))), gx_cpu,
                               rtol=1e-12)


def failing_cuda(monkeypatch, error):
    """kernels/cuda.py replaced by a module whose first launch raises ``error``."""
    def first_launch(x):
        raise error
    module = types.SimpleNamespace(first_launch=first_launch, __name__="minicnn.kernels.cuda")
    monkeypatch.setitem(sys.modules, "minicnn.kernels.cuda", module)
    monkeypatch.setattr(kernels, "cuda", module, raising=False)
    monkeypatch.setattr(fast, "_gpu", None)


def test_a_failed_first_launch_falls_back_to_cupys_array_operations(fake_gpu, monkeypatch):
    monkeypatch.delenv("MINICNN_GPU_KERNELS", raising=False)
    failing_cuda(monkeypatch, RuntimeError("libNVVM cannot be found.\nDo `conda install`"))
    model = models.tiny_cnn(seed=0).to("gpu")
    x = fake_gpu.asarray(np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32))
    with pytest.warns(UserWarning) as warned:
        y = model.forward(x)
    message = str(warned[0].message)
    assert len(warned) == 1 and "\n" not in message
    assert "first launch (RuntimeError: libNVVM cannot be found. Do `conda install`)" in message
    assert "MINICNN_GPU_KERNELS=cupy" in message and "pip install -e .[gpu" in message
    assert fast.gpu_loops(x) is textbook
    np.testing.assert_allclose(as_numpy(y), models.tiny_cnn(seed=0).forward(as_numpy(x)),
                               rtol=1e-5, atol=1e-6)


def test_minicnn_gpu_kernels_cupy_chooses_the_array_operations_for_the_gpu_only(
        fake_gpu, monkeypatch, recwarn):
    monkeypatch.setenv("MINICNN_GPU_KERNELS", "cupy")
    failing_cuda(monkeypatch, AssertionError("never launched"))
    assert fast.loops(fake_gpu.zeros((1, 1, 2, 2))) is textbook
    assert "MINICNN_GPU_KERNELS=cupy" in fast.gpu_choice and not recwarn.list
    assert fast.loops(np.zeros((1, 1, 2, 2))) is (fast.cpu or textbook)   # the CPU keeps Numba


@pytest.mark.gpu
def test_minicnn_train_on_the_gpu_path(fake_gpu, data_root, tmp_path, capsys):
    """``minicnn train --device gpu`` end to end on a few hundred MNIST images."""
    import json

    from minicnn.cli.command import main
    run = tmp_path / "run"
    assert main(["train", "--model", "lenet", "--epochs", "1", "--device", "gpu", "--seed", "0",
                 "--train-subset", "320", "--test-subset", "200", "--data-dir", data_root,
                 "--out", str(run), "--no-progress"]) == 0
    record = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert record["kind"] == "epoch" and record["test_acc"] > 0.3, record   # chance: 0.1
    assert "test acc" in capsys.readouterr().out
    assert (run / "checkpoint.npz").exists()
