"""Saving and loading: exact round trip, atomic writes, clear errors on mismatch."""
import os
import stat

import numpy as np
import pytest

from minicnn import load_model, load_weights, models, save_model
from minicnn.backend import as_numpy
from minicnn.files.model_files import atomic_savez


def outputs(model, backend, x):
    return as_numpy(model.eval().forward(backend.asarray(x)))


@pytest.mark.parametrize("name", ["tiny_cnn", "lenet5"])
def test_round_trip_reproduces_outputs_exactly(backend, device, rng, tmp_path, name):
    model = models.get_model(name, seed=5)
    path = tmp_path / "model.npz"
    save_model(model.to(device), path)
    loaded = load_model(path)
    assert [type(a) for a in loaded.layers] == [type(a) for a in model.layers]
    assert [a.config() for a in loaded.layers] == [a.config() for a in model.layers]
    assert loaded.input_shape == model.input_shape
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(outputs(loaded.to(device), backend, x),
                                  outputs(model, backend, x))


def test_float64_model_round_trips_in_float64(rng, tmp_path):
    model = models.tiny_cnn(seed=1).astype("float64")
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert all(p.value.dtype == np.float64 for p in loaded.parameters())
    x = rng.standard_normal((2, 1, 28, 28))
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


def test_load_weights_into_an_existing_model(rng, tmp_path):
    save_model(models.tiny_cnn(seed=1), tmp_path / "m.npz")
    target = load_weights(models.tiny_cnn(seed=2), tmp_path / "m.npz")
    for key, value in models.tiny_cnn(seed=1).state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key], value)


def test_failed_write_keeps_the_previous_file(monkeypatch, rng, tmp_path):
    path = tmp_path / "model.npz"
    good = models.tiny_cnn(seed=1)
    save_model(good, path)
    before = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"half a file")               # something reaches the temporary file...
        raise OSError("disk full")               # ...then the write fails

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_model(models.tiny_cnn(seed=2), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]        # no temporary file left behind
    monkeypatch.undo()
    x = rng.standard_normal((1, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(load_model(path).forward(x), good.forward(x))


def test_atomic_savez_creates_folders(tmp_path):
    atomic_savez(tmp_path / "a" / "b" / "x.npz", {"x": np.arange(3)})
    with np.load(tmp_path / "a" / "b" / "x.npz") as data:
        np.testing.assert_array_equal(data["x"], np.arange(3))


def test_mismatching_model_names_first_key_and_shapes(tmp_path):
    save_model(models.tiny_cnn(), tmp_path / "tiny.npz")
    # lenet5's first conv has 6 filters with 5x5 kernels; tiny_cnn's has 4
    with pytest.raises(ValueError, match=r"tiny.npz does not match the model: .*'0.weight'.*"
                                         r"\(4, 1, 5, 5\).*\(6, 1, 5, 5\)"):
        load_weights(models.lenet5(), tmp_path / "tiny.npz")


def test_missing_key_is_named(tmp_path):
    small = models.tiny_cnn()
    save_model(small[:3], tmp_path / "head.npz")          # only "0.weight", "0.bias"
    with pytest.raises(ValueError, match=r"does not match the model: .*'3.weight' "
                                         r"\(shape \(8, 4, 5, 5\)\) is missing"):
        load_weights(small, tmp_path / "head.npz")


def test_foreign_files_are_rejected(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="is not a minicnn model file"):
        load_model(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="is not a minicnn model file"):
        load_weights(models.tiny_cnn(), tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="no model file at"):
        load_model(tmp_path / "missing.npz")


def test_save_rejects_non_models(tmp_path):
    with pytest.raises(TypeError, match="save_model expects a minicnn Layer"):
        save_model({"0.weight": np.zeros(2)}, tmp_path / "x.npz")


def test_saved_files_get_the_usual_permissions(tmp_path):
    """mkstemp creates 0600 files; a saved model should be readable like any file."""
    mask = os.umask(0o022)
    try:
        atomic_savez(tmp_path / "x.npz", {"x": np.arange(3)})
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "x.npz").st_mode) == 0o644
    assert os.listdir(tmp_path) == ["x.npz"]           # no temporary file left behind
