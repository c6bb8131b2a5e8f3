"""One checkpoint format: a model file plus the training state, read once on resume.

``RUN/checkpoint.npz`` is a minicnn model file (``load_model`` reads it) whose
header also holds the run's settings, counters, metrics and RNG states, and whose
``optimizer/...`` arrays hold the optimizer's buffers; ``RUN/model.npz`` is the
same model part alone, written by the same writer.
"""
import json
import zipfile

import numpy as np
import pytest

from minicnn import Conv2D, Dense, ReLU, load_model, models
from minicnn.cli.command import main
from minicnn.files.model_files import FORMAT
from minicnn.training.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from minicnn.training.config import TrainConfig
from minicnn.training.run_folder import CHECKPOINT, MODEL
from minicnn.training.trainer import Trainer


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def small(**overrides):
    settings = dict(model="tiny_cnn", epochs=1, batch_size=32, train_subset=64, test_subset=50,
                    eval_batch_size=50)
    return TrainConfig(**{**settings, **overrides})


def tiny_data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    return x, rng.integers(0, 10, 64)


def read_header(path):
    with zipfile.ZipFile(path) as archive, archive.open("__architecture__.npy") as f:
        return json.loads(str(np.lib.format.read_array(f)))


def test_the_checkpoint_is_a_model_file_with_the_training_state(tmp_path):
    data = tiny_data()
    trainer = Trainer(small(optimizer="sgd", lr=0.01), data, data, tmp_path, progress=False)
    trainer.fit()
    checkpoint, model_file = tmp_path / CHECKPOINT, tmp_path / MODEL
    assert_same_state(load_model(checkpoint).state_dict(), trainer.model.state_dict())
    assert_same_state(load_model(model_file).state_dict(), trainer.model.state_dict())

    # one header format: the same format name and architecture, plus the training section
    ckpt_header, model_header = read_header(checkpoint), read_header(model_file)
    assert ckpt_header["format"] == model_header["format"] == FORMAT
    assert ckpt_header["architecture"] == model_header["architecture"]
    assert "checkpoint" not in model_header
    assert ckpt_header["checkpoint"]["epoch"] == 1
    assert ckpt_header["checkpoint"]["config"]["optimizer"] == "sgd"
    with zipfile.ZipFile(checkpoint) as a, zipfile.ZipFile(model_file) as b:
        extra = sorted(set(a.namelist()) - set(b.namelist()))
    assert extra and all(name.startswith("optimizer/") for name in extra)   # momentum buffers

    meta, model_state, optimizer_state = read_checkpoint(tmp_path)
    assert meta["epoch"] == 1 and meta["architecture"] == model_header["architecture"]
    assert_same_state(model_state, trainer.model.state_dict())
    assert optimizer_state["steps"] == trainer.optimizer.steps == 2
    assert_same_state(optimizer_state["buffers"], trainer.optimizer.state_dict()["buffers"])


def test_resume_reads_the_checkpoint_once(data_root, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    quick = ["--model", "tiny_cnn", "--train-subset", "64", "--test-subset", "50",
             "--batch-size", "32", "--no-progress", "--data-dir", data_root, "--out", str(run)]
    assert main(["train", *quick, "--epochs", "1"]) == 0
    opened = []
    real = zipfile.ZipFile.__init__

    def counting(self, file, *args, **kwargs):
        if str(getattr(file, "name", file)).endswith(CHECKPOINT):
            opened.append(file)
        real(self, file, *args, **kwargs)
    monkeypatch.setattr(zipfile.ZipFile, "__init__", counting)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress",
                 "--data-dir", data_root]) == 0
    assert len(opened) == 1
    assert read_checkpoint(run).meta["epoch"] == 2


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_builder_takes_seed_and_init(monkeypatch, name):
    """The same keywords for every builder, and ``init`` reaches each weight layer.
    Conv2D and Dense are replaced by recorders, so VGG-19 costs nothing here."""
    seen = []

    def recorder(*args, init="he", seed=None, **kwargs):
        seen.append(init)
        return ReLU()
    for cls in (Conv2D, Dense):
        monkeypatch.setattr(models, cls.__name__, recorder)
    models.get_model(name, seed=3, init="glorot")
    assert seen and set(seen) == {"glorot"}


def test_a_checkpoint_that_does_not_fit_its_model_is_named(tmp_path):
    """E.g. a run folder from before a change of the model's builder."""
    data = tiny_data()
    trainer = Trainer(small(), data, data, tmp_path, progress=False)
    write_checkpoint(trainer)
    meta, state, optimizer_state = read_checkpoint(tmp_path)
    state.pop("3.weight")
    with pytest.raises(ValueError, match=r"checkpoint.npz does not match the model 'tiny_cnn' "
                                         r"its settings build: .*'3.weight'"):
        Trainer.resume(tmp_path, data, data, progress=False,
                       checkpoint=Checkpoint(meta, state, optimizer_state))
