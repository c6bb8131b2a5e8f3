"""The validation split: held out of the training set (seeded, disjoint), evaluated each
epoch, the best-by-validation model kept in ``best.npz``, resume, the command line."""
import json
import os
from dataclasses import asdict

import numpy as np
import pytest
from test_cli import train  # noqa: F401
from test_train import assert_same_state, mnist, small  # noqa: F401 (fixture)
from test_train_modern import straight_split_resumed

from minicnn.cli.command import main
from minicnn.files.model_files import load_model, read_model_file, save_model
from minicnn.models import get_model
from minicnn.training.config import TrainConfig
from minicnn.training.reporting import plot_learning_curves, read_metrics
from minicnn.training.run_folder import BEST, METRICS
from minicnn.training.trainer import Trainer
from minicnn.training.validation import validation_split


def test_split_is_seeded_disjoint_and_of_the_asked_size():
    train_idx, val_idx = validation_split(1000, 100, seed=0)
    assert len(val_idx) == 100 and len(train_idx) == 900
    assert set(train_idx).isdisjoint(val_idx)
    assert sorted(set(train_idx) | set(val_idx)) == list(range(1000))
    assert list(train_idx) == sorted(train_idx) and list(val_idx) == sorted(val_idx)
    again = validation_split(1000, 100, seed=0)
    np.testing.assert_array_equal(again[0], train_idx)
    np.testing.assert_array_equal(again[1], val_idx)
    other = validation_split(1000, 100, seed=1)[1]
    assert not np.array_equal(other, val_idx)                 # the seed chooses them
    assert val_idx.max() > 500                                # a random subset, not the head
    # a larger split holds the smaller one (the same permutation, cut later)
    assert set(val_idx) <= set(validation_split(1000, 200, seed=0)[1])
    none_held = validation_split(1000, 0, seed=0)
    assert list(none_held[0]) == list(range(1000)) and len(none_held[1]) == 0


def test_the_trainer_trains_on_none_of_the_held_out_images(mnist):
    x, y = mnist[0]
    trainer = Trainer(small(validation=300, train_subset=256), *mnist, "unused", progress=False)
    train_idx, val_idx = validation_split(len(y), 300, seed=0)
    np.testing.assert_array_equal(trainer.val_indices, val_idx)
    # train_subset is taken after the split: the first 256 of the remaining images
    np.testing.assert_array_equal(trainer.train_indices, train_idx[:256])
    assert set(trainer.train_indices).isdisjoint(trainer.val_indices)
    assert trainer.train_batches.num_samples == 256 and trainer.val_batches.num_samples == 300
    np.testing.assert_array_equal(trainer.val_batches.labels, y[val_idx])
    np.testing.assert_array_equal(trainer.train_batches.labels, y[train_idx[:256]])
    plain = Trainer(small(), *mnist, "unused", progress=False)
    assert plain.val_batches is None and plain.train_batches.num_samples == 256


def zero_weights_after(epoch_number):
    """A callback that wrecks the model after that epoch: every later epoch is bad."""
    def callback(epoch, model):
        if epoch == epoch_number:
            for p in model.parameters():
                p.value[...] = 0
    return callback


def test_the_best_model_is_chosen_by_validation_accuracy(mnist, tmp_path):
    snapshots = {}
    keep = lambda epoch, model: snapshots.update({epoch: model.state_dict()})  # noqa: E731
    trainer = Trainer(small(validation=200, epochs=4, lr=3e-3), *mnist, tmp_path,
                      progress=False, callbacks=[keep, zero_weights_after(2)])
    records = trainer.fit()
    val = [r["val_acc"] for r in records]
    assert all(0 <= v <= 1 for v in val) and all("val_loss" in r for r in records)
    assert max(val[2:]) < max(val[:2])           # the wrecked epochs are worse
    best = int(np.argmax(val)) + 1               # the first of the best
    assert best in (1, 2)
    assert trainer.best["epoch"] == best and trainer.best["val_acc"] == val[best - 1]
    assert [r["best_epoch"] for r in records][-1] == best
    header, weights, _ = read_model_file(tmp_path / BEST)
    assert header["best"]["epoch"] == best and header["best"]["val_acc"] == val[best - 1]
    assert_same_state(weights, snapshots[best])
    assert_same_state(load_model(tmp_path / BEST).state_dict(), snapshots[best])
    logged = [r for r in read_metrics(tmp_path / METRICS) if r["kind"] == "epoch"]
    assert [r["val_acc"] for r in logged] == val
    acc_panel = plot_learning_curves(trainer.records).axes[1]
    lines = {line.get_label(): line for line in acc_panel.get_lines()}
    np.testing.assert_allclose(lines["validation"].get_ydata(), [100 * v for v in val])


def test_without_validation_no_best_model_is_written(mnist, tmp_path):
    records = Trainer(small(epochs=1), *mnist, tmp_path, progress=False).fit()
    assert not (tmp_path / BEST).exists() and "val_acc" not in records[0]


def test_resume_with_validation_is_bit_exact(mnist, tmp_path):
    settings = dict(model="fast_cnn", validation=200, epochs=3, schedule="cosine", lr=3e-3)
    straight, split, resumed = straight_split_resumed(settings, mnist, tmp_path)
    assert resumed.best == split.best and resumed.best["epoch"] == 1   # restored, not reset
    np.testing.assert_array_equal(resumed.val_indices, straight.val_indices)
    resumed.fit()
    assert_same_state(resumed.model.state_dict(), straight.model.state_dict())
    assert resumed.best == straight.best
    assert_same_state(read_model_file(tmp_path / "split" / BEST)[1],
                      read_model_file(tmp_path / "straight" / BEST)[1])
    keys = ("epoch", "loss", "val_acc", "val_loss", "test_acc", "best_epoch")
    rows = lambda t: [tuple(r[k] for k in keys) for r in t.records  # noqa: E731
                      if r["kind"] == "epoch"]
    assert rows(resumed) == rows(straight)


@pytest.mark.parametrize("validation, message", [
    (60000, "validation=60000 leaves 0 of the 60000 training images"),
    (59990, "fewer than one batch"),
])
def test_bad_validation_sizes_are_one_clear_line(mnist, validation, message):
    with pytest.raises(ValueError, match=message) as info:
        Trainer(small(validation=validation), *mnist, "unused", progress=False)
    assert "\n" not in str(info.value) and "--validation" in str(info.value)


def test_config_round_trip_and_the_command_line(mnist, tmp_path, capsys):
    config = small(validation=123)
    assert TrainConfig.from_dict(json.loads(json.dumps(asdict(config)))) == config
    assert TrainConfig.from_dict({"model": "lenet"}).validation == 0   # runs made before it
    data = os.environ["MINICNN_DATA"]
    run = tmp_path / "run"
    assert train(data, run, "--epochs", "1", "--validation", "100") == 0
    out = capsys.readouterr().out
    assert "validation 100" in out and "val acc" in out
    assert json.loads((run / "config.json").read_text())["validation"] == 100
    assert (run / BEST).exists()
    # resume keeps it; a different size is refused
    assert main(["train", "--out", str(run), "--resume", "--validation", "50"]) == 1
    assert "--validation (run: 100, given: 50)" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--test-subset", "100"]) == 0     # the last checkpoint
    assert "after epoch 2 (" in capsys.readouterr().out
    # evaluate --best: the best-by-validation model, plain and with TTA
    assert main(["evaluate", str(run), "--best", "--test-subset", "100"]) == 0
    out = capsys.readouterr().out
    best = read_model_file(run / BEST)[0]["best"]
    assert f"best by validation, epoch {best['epoch']}" in out and BEST in out
    assert main(["evaluate", str(run), "--best", "--tta", "--test-subset", "100"]) == 0
    assert f"epoch {best['epoch']}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--validation", "-5"])
    assert exit_info.value.code == 2
    assert "--validation" in capsys.readouterr().err


def test_evaluate_best_without_a_validation_split_is_explained(mnist, tmp_path, capsys):
    data = os.environ["MINICNN_DATA"]
    assert train(data, tmp_path / "run", "--epochs", "1") == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), "--best"]) == 1
    err = capsys.readouterr().err
    assert "best.npz" in err and "--validation" in err and len(err.strip().splitlines()) == 1
    save_model(get_model("tiny_cnn"), tmp_path / "run" / BEST)     # a model file, no section
    assert main(["evaluate", str(tmp_path / "run"), "--best"]) == 1
    err = capsys.readouterr().err
    assert "without the 'best' section" in err and len(err.strip().splitlines()) == 1
