"""``minicnn evaluate`` on model files (``RUN/model.npz``, ``RUN/best.npz``, a file of its own),
alone, with ``--tta`` and beside run folders; ``--best`` and ``--dataset`` with files."""
import os
import re
import shutil

import pytest

from minicnn import save_model
from minicnn.cli.command import main
from minicnn.layers import Dense, Flatten, Sequential


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny_cnn run with a validation split (so it has best.npz), one epoch on 256 images."""
    data = os.environ.get("MINICNN_DATA")
    if not data or not os.path.isdir(os.path.join(data, "mnist")):
        pytest.skip("MINICNN_DATA is not set (or has no mnist/): real-data test skipped")
    folder = tmp_path_factory.mktemp("evaluate") / "run"
    assert main(["train", "--model", "tiny_cnn", "--epochs", "1", "--train-subset", "256",
                 "--validation", "64", "--test-subset", "100", "--batch-size", "32",
                 "--data-dir", data, "--no-progress", "--out", str(folder)]) == 0
    return folder


def accuracy_line(out):
    return re.search(r"test accuracy: [0-9.]+%  \(\d+ errors in \d+ images\)", out).group(0)


def no_data_but_the_recorded_folder(monkeypatch, tmp_path):
    """Nothing to read the data from but what a run recorded: no $MINICNN_DATA, an empty
    cache and a mirror that does not exist (no download)."""
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("MINICNN_MIRRORS", str(tmp_path / "no-mirror"))


def test_a_runs_model_file_is_evaluated_like_the_run(run, tmp_path, capsys, monkeypatch):
    no_data_but_the_recorded_folder(monkeypatch, tmp_path)   # config.json beside it says where
    capsys.readouterr()
    assert main(["evaluate", str(run), "--test-subset", "100"]) == 0
    whole_run = capsys.readouterr().out
    assert main(["evaluate", str(run / "model.npz"), "--test-subset", "100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"tiny_cnn on mnist, model file ({run / 'model.npz'})\n"), out
    assert accuracy_line(out) == accuracy_line(whole_run)
    assert (run / "model-confusion.png").exists()
    assert f"wrote {run / 'model-confusion.png'}" in out


def test_a_model_file_alone_reads_the_data_named_by_options_or_environment(
        run, data_root, tmp_path, capsys, monkeypatch):
    lone = tmp_path / "mine.npz"
    shutil.copy(run / "model.npz", lone)
    capsys.readouterr()
    assert main(["evaluate", str(run / "model.npz"), "--test-subset", "100"]) == 0
    expected = accuracy_line(capsys.readouterr().out)
    assert main(["evaluate", str(lone), "--data-dir", data_root, "--test-subset", "100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"mine.npz on mnist, model file ({lone})\n")   # no run: its name
    assert accuracy_line(out) == expected
    monkeypatch.setenv("MINICNN_DATA", data_root)                       # the usual search
    assert main(["evaluate", str(lone), "--test-subset", "100"]) == 0
    assert accuracy_line(capsys.readouterr().out) == expected
    assert main(["evaluate", str(lone), "--dataset", "fashion-mnist", "--test-subset", "100"]) == 0
    assert "mine.npz on fashion-mnist" in capsys.readouterr().out


def test_best_tta_and_several_inputs_with_files(run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run / "best.npz"), "--test-subset", "100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny_cnn on mnist, best by validation, epoch 1 (validation accuracy ")
    assert main(["evaluate", str(run / "model.npz"), "--tta", "--test-subset", "100"]) == 0
    out = capsys.readouterr().out
    assert f"  {run / 'model.npz'}: tiny_cnn, model file: " in out and " / " in out
    assert main(["evaluate", str(run), str(run / "best.npz"), "--test-subset", "100"]) == 0
    assert "average of the 2 runs' probabilities: " in capsys.readouterr().out

    assert main(["evaluate", str(run / "model.npz"), "--best"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"minicnn evaluate: error: --best picks RUN_DIR/best.npz of a run folder, "
                   f"and {run / 'model.npz'} is a file: evaluate {run / 'best.npz'} itself, "
                   f"or give the folder {run}")


def test_files_that_cannot_be_evaluated_are_one_line(run, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "no" / "model.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"minicnn evaluate: error: no run folder or model file "
                   f"{str(tmp_path / 'no' / 'model.npz')!r}")
    (tmp_path / "notes.txt").write_text("not a model")
    assert main(["evaluate", str(tmp_path / "notes.txt")]) == 1
    err = capsys.readouterr().err.strip()
    assert "notes.txt is not a minicnn model file" in err and len(err.splitlines()) == 1

    five = Sequential([Flatten(), Dense(784, 5)], input_shape=(1, 28, 28))
    save_model(five, tmp_path / "five.npz")
    assert main(["evaluate", str(tmp_path / "five.npz")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"minicnn evaluate: error: {tmp_path / 'five.npz'} gives 5 outputs per image, and "
        f"mnist has 10 classes: not a model for this dataset")
    color = Sequential([Flatten(), Dense(3 * 32 * 32, 10)], input_shape=(3, 32, 32))
    save_model(color, tmp_path / "cifar.npz")
    assert main(["evaluate", str(tmp_path / "cifar.npz")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"minicnn evaluate: error: {tmp_path / 'cifar.npz'} is a model for inputs of shape "
        f"(3, 32, 32), and mnist's images are (1, 28, 28): not a model for this dataset")

    assert main(["evaluate", str(run), "--dataset", "fashion-mnist"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"minicnn evaluate: error: --dataset fashion-mnist, but {run} was trained on mnist")
