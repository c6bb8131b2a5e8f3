"""Checkpoints that lie are refused before any of them is used.

A real tiny run's checkpoint (tiny_cnn, Adam, 3 steps on a fake Fashion-MNIST) is copied
and one entry rewritten: the training state's fields, the settings, the optimizer's
buffers, the weights. ``minicnn train --resume`` (and ``minicnn evaluate``, for what it
reads) must answer one line naming the entry: never a traceback, never a signal (a
buffer of the wrong length used to reach the Numba Adam kernel). Also: a batch-norm
model whose last training batch would hold one image trains (that image is dropped).
"""
import json
import math
import shutil
import zipfile

import numpy as np
import pytest
from data_helpers import make_files

from minicnn.cli.command import main
from minicnn.data import datasets, load_dataset
from minicnn.training.config import TrainConfig
from minicnn.training.run_folder import CHECKPOINT, MODEL
from minicnn.training.trainer import Trainer

SIZES = {"train": 48, "test": 16}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """``(data folder, run folder)``: one finished epoch, to copy and falsify."""
    root = tmp_path_factory.mktemp("trust")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "SIZES", SIZES)
        make_files(root / "data", sizes=SIZES)
        train, test = load_dataset("fashion-mnist", root / "data")
        config = TrainConfig(model="tiny_cnn", dataset="fashion-mnist", epochs=1,
                             batch_size=16, data_dir=str(root / "data"))
        Trainer(config, train, test, root / "run", progress=False).fit()
    return str(root / "data"), root / "run"


@pytest.fixture
def run(made, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "SIZES", SIZES)
    shutil.copytree(made[1], tmp_path / "run")
    return tmp_path / "run"


def rewrite(path, section=None, arrays=None, drop=(), header=None):
    """Rewrite the model file at ``path``: ``section(checkpoint_section)`` or
    ``header(whole_header)`` edit the JSON in place; ``arrays`` replace or add entries."""
    with zipfile.ZipFile(path) as z:
        entries = {n[:-4]: np.lib.format.read_array(z.open(n)) for n in z.namelist()}
    head = json.loads(str(entries["__architecture__"]))
    if section is not None:
        section(head["checkpoint"])
    if header is not None:
        header(head)
    entries["__architecture__"] = np.array(json.dumps(head))
    for name in drop:
        del entries[name]
    entries.update(arrays or {})
    np.savez(path, **entries)


def put(key, value):
    return lambda s: s.__setitem__(key, value)


def setting(key, value):
    return lambda s: s["config"].__setitem__(key, value)


SECTION_LIES = {
    "epoch negative": (put("epoch", -1), "'epoch'"),
    "epoch text": (put("epoch", "1"), "'epoch'"),
    "epoch bool": (put("epoch", True), "'epoch'"),
    "epoch past the run": (put("epoch", 5), "'epoch'"),
    "step negative": (put("step", -3), "'step'"),
    "seconds nan": (put("seconds", math.nan), "'seconds'"),
    "records text": (put("records", "abc"), "'records'"),
    "records not dicts": (put("records", [1, 2]), "'records'"),
    "record without fields": (put("records", [{"kind": "epoch"}]), "'records'"),
    "record of another epoch": (lambda s: s["records"][-1].__setitem__("epoch", 7),
                                "'records'"),
    "optimizer steps negative": (put("optimizer_steps", -1), "'optimizer_steps'"),
    "optimizer steps differ": (put("optimizer_steps", 999), "'optimizer_steps'"),
    "dropout states for no dropout": (put("dropout_states", [{}]), "'dropout_states'"),
    "schedule without one": (put("schedule", {"t": -1, "base_lr": 0.001}), "'schedule'"),
    "best without validation": (put("best", {"epoch": 9, "val_acc": 2.0, "val_loss": 1}),
                                "'best'"),
    "config unknown key": (setting("colour", "red"), "'colour'"),
    "config lr text": (setting("lr", "fast"), "'lr'"),
    "config epochs fraction": (setting("epochs", 2.5), "'epochs'"),
    "config augment text": (setting("augment", "yes"), "'augment'"),
    "config batch size 0": (setting("batch_size", 0), "batch_size"),
    "config unknown model": (setting("model", "nope"), "'nope'"),
    "config not an object": (put("config", []), "'config'"),
}


def one_line(capsys):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def resume(run, capsys):
    code = main(["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"])
    return code, one_line(capsys)


@pytest.mark.parametrize("lie", list(SECTION_LIES))
def test_a_lying_training_state_or_setting_is_named(run, capsys, lie):
    edit, named = SECTION_LIES[lie]
    rewrite(run / CHECKPOINT, section=edit)
    for command in (["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"],
                    ["evaluate", str(run)]):
        assert main(command) == 1
        err = one_line(capsys)
        assert str(run / CHECKPOINT) in err and named in err, err


def buffers(run):
    with zipfile.ZipFile(run / CHECKPOINT) as z:
        return {n[:-4]: np.lib.format.read_array(z.open(n)) for n in z.namelist()
                if n.startswith("optimizer/")}


def buffer_lies(b):
    m0, v0 = b["optimizer/m.0"], b["optimizer/v.0"]
    return {
        "short": ({"optimizer/m.0": m0.ravel()[:5].copy()}, (), "optimizer/m.0"),
        "long": ({"optimizer/v.2": np.zeros(10 ** 5, np.float32)}, (), "optimizer/v.2"),
        "float64": ({"optimizer/m.0": m0.astype(np.float64)}, (), "optimizer/m.0"),
        "negative v": ({"optimizer/v.0": -1 - v0}, (), "optimizer/v.0"),
        "nan": ({"optimizer/m.0": np.full_like(m0, np.nan)}, (), "optimizer/m.0"),
        "index past the model": ({"optimizer/m.99": m0}, (), "optimizer/m.99"),
        "another optimizer's": ({"optimizer/velocity.0": m0}, (), "optimizer/velocity.0"),
        "missing": ({}, ("optimizer/v.1",), "optimizer/v.1"),
    }


@pytest.mark.parametrize("lie", ["short", "long", "float64", "negative v", "nan",
                                 "index past the model", "another optimizer's", "missing"])
def test_a_lying_optimizer_buffer_is_named_before_a_step(run, capsys, lie):
    arrays, drop, named = buffer_lies(buffers(run))[lie]
    rewrite(run / CHECKPOINT, arrays=arrays, drop=drop)
    code, err = resume(run, capsys)
    assert code == 1 and str(run / CHECKPOINT) in err and named in err, err


@pytest.mark.parametrize("lie", ["nan", "float64"])
def test_lying_weights_are_named(run, capsys, lie):
    with zipfile.ZipFile(run / CHECKPOINT) as z:
        w = np.lib.format.read_array(z.open("3.weight.npy"))
    bad = np.full_like(w, np.inf) if lie == "nan" else w.astype(np.float64)
    rewrite(run / CHECKPOINT, arrays={"3.weight": bad})
    code, err = resume(run, capsys)
    assert code == 1 and "'3.weight'" in err, err


def test_a_model_file_renamed_to_checkpoint_is_refused(run, capsys):
    shutil.copy(run / MODEL, run / CHECKPOINT)
    code, err = resume(run, capsys)
    assert code == 1 and "not a checkpoint" in err


def test_a_batch_norm_model_trains_when_one_image_is_left_over(tmp_path):
    """65 images in batches of 64: the last batch of one image is dropped in training
    (batch norm cannot estimate a variance from one value per channel); evaluation
    keeps every image."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (65, 28, 28), dtype=np.uint8)
    y = np.arange(65) % 10
    config = TrainConfig(model="bn_cnn", epochs=1, batch_size=64, eval_batch_size=65)
    trainer = Trainer(config, (x, y), (x, y), tmp_path, progress=False)
    [record] = trainer.fit()
    assert record["step"] == 1 and len(trainer.train_batches) == 1
    assert len(trainer.test_batches) == 1 and trainer.test_batches.num_samples == 65
    assert (tmp_path / CHECKPOINT).exists()


def test_a_batch_norm_model_with_batches_of_one_is_refused_in_one_line(tmp_path):
    x = np.zeros((8, 28, 28), dtype=np.uint8)
    y = np.arange(8) % 10
    with pytest.raises(ValueError, match="BatchNorm1D.*at least 2 images"):
        Trainer(TrainConfig(model="bn_cnn", batch_size=1), (x, y), (x, y), tmp_path)


def test_a_dropout_state_that_is_not_one_is_named(tmp_path):
    from minicnn.training.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
    x = np.zeros((16, 28, 28), dtype=np.uint8)
    y = np.arange(16) % 10
    trainer = Trainer(TrainConfig(model="lenet", batch_size=16), (x, y), (x, y), tmp_path)
    write_checkpoint(trainer)                    # lenet has one Dropout
    meta, weights, optimizer = read_checkpoint(tmp_path)
    meta["dropout_states"] = [{"bit_generator": "PCG64", "state": {"state": "x", "inc": 1},
                               "has_uint32": 0, "uinteger": 0}]
    with pytest.raises(ValueError, match=r"'dropout_states' entry 0 is not a PCG64 state"):
        Trainer.resume(tmp_path, (x, y), (x, y), checkpoint=Checkpoint(meta, weights, optimizer))
