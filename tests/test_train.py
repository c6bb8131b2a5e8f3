"""The trainer: learning on real MNIST, exact reproducibility and resume,
checkpoints, the metrics log, NaN stops, and the reporting helpers."""
import io
import json
import os
import sys
import warnings

import numpy as np
import pytest

from minicnn.files.model_files import load_model
from minicnn.layers import SoftmaxCrossEntropy
from minicnn.training.checkpoint import (CHECKPOINT, MODEL, dropout_layers, load_checkpoint_model,
                                         read_checkpoint)
from minicnn.training.config import TrainConfig
from minicnn.training.divergence import TrainingDiverged
from minicnn.training.reporting import (confusion_matrix, format_confusion, per_class_accuracy,
                                        plot_confusion, read_metrics)
from minicnn.training.run_folder import CURVES, METRICS
from minicnn.training.trainer import Trainer


@pytest.fixture(scope="module")
def mnist():
    root = os.environ.get("MINICNN_DATA")
    if not root:
        pytest.skip("MINICNN_DATA is not set: real-data training tests skipped "
                    "(set it to a folder holding mnist/)")
    if not os.path.isdir(os.path.join(root, "mnist")):
        pytest.skip(f"MINICNN_DATA={root} has no mnist/ folder: real-data training tests skipped")
    from minicnn.data import load_mnist
    return load_mnist(root=root)


def small(**overrides):
    """A few hundred images: enough to exercise every code path quickly."""
    settings = dict(model="tiny_cnn", epochs=2, batch_size=32, train_subset=256,
                    test_subset=200, eval_batch_size=100, log_every=3)
    settings.update(overrides)
    return TrainConfig(**settings)


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_tiny_cnn_learns_mnist_well_above_chance(mnist, tmp_path):
    """CI's end-to-end check: 3000 training images, 2 epochs, 2000 test images."""
    config = TrainConfig(model="tiny_cnn", epochs=2, batch_size=32, lr=3e-3,
                         train_subset=3000, test_subset=2000)
    records = Trainer(config, *mnist, tmp_path, progress=False).fit()
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["test_acc"] > 0.6          # chance is 0.1
    assert records[-1]["loss"] < records[0]["loss"]


def test_seeded_runs_are_bit_for_bit_identical(mnist, tmp_path):
    a = Trainer(small(), *mnist, tmp_path / "a", progress=False)
    b = Trainer(small(), *mnist, tmp_path / "b", progress=False)
    ra, rb = a.fit(), b.fit()
    assert_same_state(a.model.state_dict(), b.model.state_dict())
    assert [(r["loss"], r["test_acc"]) for r in ra] == [(r["loss"], r["test_acc"]) for r in rb]
    # and the seed matters
    c = Trainer(small(seed=1), *mnist, tmp_path / "c", progress=False)
    c.fit()
    assert not np.array_equal(c.model.state_dict()["0.weight"], a.model.state_dict()["0.weight"])


@pytest.mark.parametrize("model, optimizer", [("tiny_cnn", "adam"), ("lenet5", "sgd")])
def test_resume_gives_the_uninterrupted_weights(mnist, tmp_path, model, optimizer):
    """2 epochs straight == 1 epoch, then resume, then 1 more epoch."""
    config = small(model=model, optimizer=optimizer, lr=0.01 if optimizer == "sgd" else 1e-3)
    straight = Trainer(config, *mnist, tmp_path / "straight", progress=False)
    straight.fit()

    first = Trainer(small(**{**vars(config), "epochs": 1}), *mnist, tmp_path / "split",
                    progress=False)
    first.fit()
    resumed = Trainer.resume(tmp_path / "split", *mnist, epochs=2, progress=False)
    assert resumed.epoch == 1 and resumed.optimizer.steps == first.optimizer.steps
    resumed.fit()

    assert_same_state(straight.model.state_dict(), resumed.model.state_dict())
    s_opt, r_opt = straight.optimizer.state_dict(), resumed.optimizer.state_dict()
    assert s_opt["steps"] == r_opt["steps"]
    assert_same_state(s_opt["buffers"], r_opt["buffers"])
    epochs = lambda t: [(r["epoch"], r["step"], r["loss"], r["test_acc"])  # noqa: E731
                        for r in t.records if r["kind"] == "epoch"]
    assert epochs(straight) == epochs(resumed)


def test_callbacks_see_each_finished_epoch_and_its_weights(mnist, tmp_path):
    seen = []
    snapshot = lambda epoch, model: seen.append((epoch, model.state_dict()["0.weight"].copy()))
    trainer = Trainer(small(epochs=1), *mnist, tmp_path, progress=False, callbacks=[snapshot])
    trainer.fit()
    resumed = Trainer.resume(tmp_path, *mnist, epochs=2, progress=False, callbacks=[snapshot])
    resumed.fit()
    assert [epoch for epoch, _ in seen] == [1, 2]
    assert not np.array_equal(seen[0][1], seen[1][1])     # a copy per epoch, weights moved
    np.testing.assert_array_equal(seen[1][1], resumed.model.state_dict()["0.weight"])
    # epochs is the run's total: fewer than it has trained is refused, config.json untouched
    with pytest.raises(ValueError, match="fewer than the 2 epochs"):
        Trainer.resume(tmp_path, *mnist, epochs=1, progress=False).fit()
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 2


def test_resume_restores_dropout_generators(mnist, tmp_path):
    """lenet has Dropout: its mask stream must continue, not restart, after resume."""
    config = small(model="lenet", epochs=1, train_subset=64, test_subset=50, batch_size=32)
    trainer = Trainer(config, *mnist, tmp_path, progress=False)
    trainer.fit()
    expected = dropout_layers(trainer.model)[0].generator.random(5)
    resumed = Trainer.resume(tmp_path, *mnist, progress=False)
    np.testing.assert_array_equal(dropout_layers(resumed.model)[0].generator.random(5), expected)
    fresh = Trainer(config, *mnist, tmp_path / "fresh", progress=False)
    assert not np.array_equal(dropout_layers(fresh.model)[0].generator.random(5), expected)


def test_run_folder_contents(mnist, tmp_path):
    trainer = Trainer(small(), *mnist, tmp_path, progress=False)
    trainer.fit()
    for name in (CHECKPOINT, MODEL, METRICS, CURVES, "config.json"):
        assert (tmp_path / name).is_file(), name
    with open(tmp_path / CURVES, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]

    records = read_metrics(tmp_path / METRICS)
    assert records == trainer.records
    epochs = [r for r in records if r["kind"] == "epoch"]
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert epochs[-1]["step"] == 2 * 8                     # 256 images / 32 per batch
    assert [r["step"] for r in steps] == list(range(3, 17, 3))
    for r in records:
        assert {"epoch", "step", "loss", "train_acc", "test_acc", "seconds"} <= r.keys()
    assert all(0 <= r["test_acc"] <= 1 for r in epochs)

    meta, model_state, optim_state = read_checkpoint(tmp_path)
    assert meta["epoch"] == 2 and meta["config"]["model"] == "tiny_cnn"
    assert meta["records"] == records
    assert optim_state["steps"] == 16
    assert_same_state(model_state, trainer.model.state_dict())
    assert_same_state(load_model(tmp_path / MODEL).state_dict(), trainer.model.state_dict())
    model, _ = load_checkpoint_model(tmp_path)
    assert_same_state(model.state_dict(), trainer.model.state_dict())
    assert json.loads((tmp_path / "config.json").read_text())["train_subset"] == 256


def test_resume_drops_log_lines_of_an_unfinished_epoch(mnist, tmp_path):
    Trainer(small(epochs=1), *mnist, tmp_path, progress=False).fit()
    with open(tmp_path / METRICS, "a") as f:   # as if epoch 2 had started, then crashed
        f.write(json.dumps({"kind": "step", "epoch": 2, "step": 99}) + "\n")
    resumed = Trainer.resume(tmp_path, *mnist, epochs=2, progress=False)
    resumed.fit()
    assert 99 not in [r["step"] for r in read_metrics(tmp_path / METRICS)]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # overflow on the way to NaN is the point
def test_nan_loss_stops_with_a_clear_error(mnist, tmp_path):
    trainer = Trainer(small(), *mnist, tmp_path, progress=False)
    trainer.model.parameters()[0].value[0, 0, 0, 0] = np.nan       # inject
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        trainer.fit()
    assert not (tmp_path / CHECKPOINT).exists()                    # nothing NaN saved


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_absurd_learning_rate_diverges(mnist, tmp_path):
    trainer = Trainer(small(optimizer="sgd", lr=1e6), *mnist, tmp_path, progress=False)
    with pytest.raises(TrainingDiverged, match=r"lr=1e\+06"):
        trainer.fit()


def test_training_steps_match_a_plain_loop(mnist, tmp_path):
    """The trainer's bookkeeping (losses kept on the device, read back every few
    steps) changes no bit: the weights and the epoch's loss and accuracy equal a
    plain loop that reads each step's loss and correct count back at once."""
    config = small(epochs=1, log_every=5)
    trainer = Trainer(config, *mnist, tmp_path / "t", progress=False)
    [record] = trainer.fit()
    ref = Trainer(config, *mnist, tmp_path / "ref", progress=False)
    ref.train_batches.set_epoch(0)
    loss_fn, total, correct, seen, window = SoftmaxCrossEntropy(), 0.0, 0, 0, []
    for x, y in ref.train_batches:
        ref.optimizer.zero_grad()
        logits = ref.model.forward(x)
        loss = float(loss_fn(logits, y))
        ref.model.backward(loss_fn.backward())
        ref.optimizer.step()
        total, correct, seen = total + loss * len(y), correct + int(
            (logits.argmax(axis=1) == y).sum()), seen + len(y)
        window.append(loss * len(y))
        if len(window) == 5:
            first_step = [r for r in trainer.records if r["kind"] == "step"][0]
            assert first_step["loss"] == sum(window, 0.0) / (5 * 32)
    assert_same_state(trainer.model.state_dict(), ref.model.state_dict())
    assert record["loss"] == total / seen and record["train_acc"] == correct / seen


class _NoHostRead(np.ndarray):
    """A loss value that fails if the training loop reads it back to the host."""

    def __float__(self):
        raise AssertionError("the training step read the loss back to the host")

    __int__ = __bool__ = item = __float__


def test_the_training_step_does_not_read_the_loss_back(mnist, tmp_path):
    trainer = Trainer(small(epochs=1), *mnist, tmp_path, progress=False)
    loss_fn = trainer.loss_fn

    class Watched:
        def __call__(self, logits, y):
            return np.asarray(loss_fn(logits, y)).view(_NoHostRead)

        def backward(self):
            return loss_fn.backward()
    trainer.loss_fn = Watched()
    [record] = trainer.fit()
    assert np.isfinite(record["loss"])


def test_labels_are_checked_once_when_the_trainer_is_built(tmp_path):
    x, y = np.zeros((8, 28, 28), np.uint8), np.arange(8)
    bad = y.copy()
    bad[5] = 10
    with pytest.raises(ValueError, match=r"training labels must be in \[0, 10\).* 10"):
        Trainer(small(train_subset=None, test_subset=None), (x, bad), (x, y), tmp_path)
    with pytest.raises(ValueError, match=r"test labels must be in \[0, 10\)"):
        Trainer(small(train_subset=None, test_subset=None), (x, y), (x, bad), tmp_path)


def test_exploding_loss_stops_like_nan_and_keeps_the_last_good_checkpoint(mnist, tmp_path):
    """Adam at lr=1e3 from epoch 2 on: the loss grows huge but stays finite. The run
    stops within a few steps (no raw numpy overflow warning), the checkpoint of epoch
    1 stays, and the message names the step range."""
    def blow_up(epoch, model):
        trainer.optimizer.lr = 1e3
    trainer = Trainer(small(epochs=3), *mnist, tmp_path, progress=False, callbacks=[blow_up])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # an overflow warning fails the test
        with pytest.raises(TrainingDiverged, match=r"at step 1[0-6] exploded .*steps 1?[0-9]-1[0-6] were checked") as err:
            trainer.fit()
    assert "lower the learning rate" in str(err.value)
    assert f"last good checkpoint is {tmp_path / CHECKPOINT} (epoch 1)" in str(err.value)
    assert read_checkpoint(tmp_path)[0]["epoch"] == 1
    assert trainer.step < 16                           # stopped inside epoch 2


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_shows_the_running_mean_loss(mnist, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    [record] = Trainer(small(epochs=1), *mnist, tmp_path, progress=True).fit()
    assert f"loss={record['loss']:.4f}" in sys.stderr.getvalue()


def test_progress_in_a_log_file_is_a_few_lines_per_epoch(mnist, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())     # not a terminal
    config = small(epochs=2, train_subset=640, batch_size=4)  # 160 steps an epoch
    records = Trainer(config, *mnist, tmp_path, progress=True).fit()
    text = sys.stderr.getvalue()
    assert "\r" not in text                                  # plain lines, no bar redraws
    lines = text.splitlines()
    assert 4 <= len(lines) <= 2 * 11, text
    assert f"loss {records[-1]['loss']:.4f}" in lines[-1]


@pytest.mark.parametrize("bad, message", [
    (dict(model="resnet"), "model must be one of"), (dict(optimizer="rmsprop"), "optimizer must"),
    (dict(lr=0.0), "lr must be"), (dict(epochs=0), "epochs must be"),
    (dict(dataset="cifar"), "dataset must"), (dict(init="zeros"), "init must be one of"),
    (dict(train_subset=0), "train_subset")])
def test_bad_settings_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        small(**bad).validate()


def test_imagenet_models_are_refused(tmp_path):
    x, y = np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="takes"):
        Trainer(small(model="alexnet"), (x, y), (x, y), tmp_path, progress=False)


def test_gpu_training_matches_the_cpu_closely(mnist, tmp_path, device):
    """On the GPU the weights agree with the CPU
    run to float32 rounding, not bit for bit."""
    if device == "cpu":
        pytest.skip("compares a GPU run with a CPU run; the CPU case is the seeded-runs test")
    cpu = Trainer(small(epochs=1), *mnist, tmp_path / "cpu", progress=False)
    cpu.fit()
    other = Trainer(small(epochs=1), *mnist, tmp_path / device, device=device, progress=False)
    other.fit()
    assert other.train_batches.device == device
    for k, v in cpu.model.state_dict().items():
        np.testing.assert_allclose(other.model.state_dict()[k], v, rtol=1e-3, atol=1e-4)


# -- reporting helpers --------------------------------------------------------------
def test_confusion_matrix_counts_and_per_class_accuracy():
    labels = np.array([0, 0, 1, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 2, 2])
    m = confusion_matrix(labels, preds, 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    np.testing.assert_allclose(per_class_accuracy(m), [0.5, 2 / 3, 1.0])
    text = format_confusion(m, ["a", "b", "c"])
    assert "50.00%" in text and "66.67%" in text and text.splitlines()[0].startswith("true")


def test_confusion_png(tmp_path):
    m = confusion_matrix(np.arange(10), np.arange(10), 10)
    plot_confusion(m, [str(i) for i in range(10)], tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_long_class_names_label_rows_and_number_columns():
    m = confusion_matrix(np.array([0, 1]), np.array([0, 0]), 2)
    lines = format_confusion(m, ["T-shirt/top", "Trouser"]).splitlines()
    assert lines[0].split()[:3] == ["true\\pred", "0", "1"]
    assert lines[3].startswith("1 Trouser") and lines[3].endswith("0.00%")
