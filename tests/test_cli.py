"""The ``minicnn`` command: train, resume, evaluate, summary, and its error messages.

Most tests call ``main([...])`` in-process (fast); one runs ``python -m minicnn``.
"""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import minicnn
from minicnn.backend import gpu_unavailable_reason
from minicnn.cli.command import DIVERGED, main
from minicnn.models import MODELS, get_model
from minicnn.training.checkpoint import read_checkpoint
from minicnn.training.config import INPUT_SHAPE, MNIST_MODELS

QUICK = ["--model", "tiny_cnn", "--train-subset", "128", "--test-subset", "100",
         "--batch-size", "32", "--no-progress"]


def train(data_root, out, *extra):
    return main(["train", *QUICK, "--data-dir", data_root, "--out", str(out), *extra])


def test_summary(capsys):
    assert main(["summary", "--model", "tiny_cnn"]) == 0
    out = capsys.readouterr().out
    assert "Conv2D" in out and "parameters: 3,146" in out


def test_python_dash_m_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "minicnn", "summary", "--model", "lenet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "parameters: 3,274,634" in done.stdout


def test_train_resume_evaluate(data_root, tmp_path, capsys):
    run, straight = tmp_path / "run", tmp_path / "straight"
    assert train(data_root, run, "--epochs", "1") == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and " for 1 epoch on " in out and "1 epochs" not in out
    assert read_checkpoint(run)[0]["epoch"] == 1

    # Resuming takes the saved settings (model, subsets, ...); only --epochs extends.
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2",
                 "--data-dir", data_root, "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert train(data_root, straight, "--epochs", "2") == 0
    resumed, uninterrupted = read_checkpoint(run), read_checkpoint(straight)
    assert resumed[0]["epoch"] == 2
    for k, v in uninterrupted[1].items():
        np.testing.assert_array_equal(resumed[1][k], v, err_msg=k)

    capsys.readouterr()
    assert main(["evaluate", str(run), "--data-dir", data_root, "--test-subset", "100"]) == 0
    out = capsys.readouterr().out
    accuracy = resumed[0]["records"][-1]["test_acc"]
    assert f"test accuracy: {100 * accuracy:.2f}%" in out    # the same 100 images
    assert "true\\pred" in out and out.count("%") >= 11      # overall + one per class
    assert (run / "confusion.png").read_bytes()[:4] == b"\x89PNG"

    # --epochs is the run's total: fewer than it has trained is refused, config.json stays
    assert main(["train", "--out", str(run), "--resume", "--epochs", "1",
                 "--data-dir", data_root, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "--epochs 1" in err and "already trained 2 epochs" in err
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    assert read_checkpoint(run)[0]["config"]["epochs"] == 2
    # the same total: nothing to train, and it says so
    assert main(["train", "--out", str(run), "--resume", "--data-dir", data_root]) == 0
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # overflow on the way to NaN is the point
def test_nan_loss_exits_non_zero_with_a_message(data_root, tmp_path, capsys):
    code = train(data_root, tmp_path / "run", "--epochs", "1", "--optimizer", "sgd",
                 "--lr", "1e6")
    assert code == DIVERGED != 0
    assert "diverged" in capsys.readouterr().err


@pytest.mark.parametrize("args, message, code", [     # 2: a bad option value
    (["train", "--model", "resnet"], "unknown model", 2),
    (["train", "--lr", "-1"], "argument --lr: must be a finite number > 0", 2),
    (["evaluate", "no/such/run"], "no run folder", 1),
    (["summary", "--model", "resnet"], "unknown model", 2),
])
def test_bad_arguments_are_explained(tmp_path, capsys, args, message, code):
    if args[0] == "train":
        args = args + ["--out", str(tmp_path / "run")]
    try:
        status = main(args)
    except SystemExit as exit_info:
        status = exit_info.code
    assert status == code
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_data_folder_names_it_without_advising_data_dir(tmp_path, capsys, make):
    """--data-dir was given: the message names that folder and does not tell the
    user to pass --data-dir."""
    folder = tmp_path / "data"
    if make == "empty":
        folder.mkdir()
    assert main(["train", "--data-dir", str(folder), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert str(folder) in err and "pass --data-dir" not in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"minicnn {minicnn.__version__}"


@pytest.mark.parametrize("args", [
    ["evaluate", "RUN", "--test-subset", "0"], ["evaluate", "RUN", "--test-subset", "-5"],
    ["train", "--epochs", "0"], ["train", "--batch-size", "-1"],
    ["train", "--train-subset", "0"], ["train", "--test-subset", "-3"],
    ["train", "--epochs", "two"]])
def test_sizes_below_one_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {args[-2]}: " in err and "whole number in [1, " in err


def test_train_help_offers_only_models_that_train_on_mnist(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    model_help = text[text.index("\n  --model"):text.index("\n  --dataset")]
    assert all(name in model_help for name in MNIST_MODELS)
    assert not [name for name in MODELS if name not in MNIST_MODELS and name in model_help]
    assert all(get_model(name).input_shape == INPUT_SHAPE for name in MNIST_MODELS)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "alexnet", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "ImageNet-sized" in err and "minicnn summary --model alexnet" in err


def test_exploding_loss_exits_like_nan_without_numpy_warnings(data_root, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a raw overflow warning fails the test
        code = train(data_root, tmp_path / "run", "--epochs", "1", "--lr", "1e3")
    assert code == DIVERGED
    err = capsys.readouterr().err
    assert "exploded" in err and "lower the learning rate" in err
    assert len(err.strip().splitlines()) == 1


def test_existing_run_needs_resume_and_resume_needs_a_run(data_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--resume"]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert train(data_root, run, "--epochs", "1") == 0
    capsys.readouterr()
    assert train(data_root, run, "--epochs", "1") == 1
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--lr", "0.5"]) == 1
    assert "--lr (run: 0.001, given: 0.5)" in capsys.readouterr().err


def test_evaluate_a_folder_without_checkpoint(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "checkpoint.npz" in capsys.readouterr().err


def test_argparse_rejects_unknown_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--device", "tpu"])
    assert exit_info.value.code == 2


@pytest.mark.skipif(gpu_unavailable_reason() is None, reason="a GPU is available here")
def test_gpu_request_without_gpu_is_explained(data_root, tmp_path, capsys):
    assert train(data_root, tmp_path / "run", "--device", "gpu") == 1
    assert "device 'gpu' requested" in capsys.readouterr().err


def test_resume_needs_out(capsys):
    assert main(["train", "--resume"]) == 1
    assert "--resume needs --out" in capsys.readouterr().err


def test_evaluate_offline_reads_the_recorded_folder_and_only_its_test_files(
        data_root, tmp_path, capsys, monkeypatch):
    """The run remembers the resolved data folder (config.json and the checkpoint);
    evaluate then needs neither --data-dir, nor $MINICNN_DATA, nor the network,
    nor the training files."""
    import os
    own = tmp_path / "my-data"                 # the user's own folder, the files linked in
    own.mkdir()
    for name in os.listdir(os.path.join(data_root, "mnist")):
        (own / name).symlink_to(os.path.join(data_root, "mnist", name))
    run = tmp_path / "run"
    assert train(str(own), run, "--epochs", "1") == 0
    recorded = json.loads((run / "config.json").read_text())["data_dir"]
    assert recorded == str(own) and read_checkpoint(run)[0]["config"]["data_dir"] == str(own)

    for name in os.listdir(own):               # only the t10k-* files stay
        if name.startswith("train-"):
            (own / name).unlink()
    monkeypatch.delenv("MINICNN_DATA")
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("MINICNN_MIRRORS", str(tmp_path / "no-mirror"))   # no download
    capsys.readouterr()
    assert main(["evaluate", str(run), "--test-subset", "100"]) == 0, capsys.readouterr().err
    accuracy = read_checkpoint(run)[0]["records"][-1]["test_acc"]
    assert f"test accuracy: {100 * accuracy:.2f}%" in capsys.readouterr().out


def test_the_command_leaves_matplotlibs_backend_alone():
    """``main`` is also called in-process (a notebook, the tests): switching matplotlib to
    Agg there stopped a notebook's inline figures. minicnn draws on ``Figure`` objects
    without pyplot, so no backend is needed."""
    code = ("import matplotlib; matplotlib.use('svg')\n"
            "from minicnn.cli.command import main\n"
            "assert main(['summary', '--model', 'tiny_cnn']) == 0\n"
            "print(matplotlib.get_backend())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k != "MPLBACKEND"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "svg"
