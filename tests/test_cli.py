"""The ``minicnn`` command: train, resume, evaluate, summary, and its error messages.

Most tests call ``main([...])`` in-process (fast); one runs ``python -m minicnn``.
"""
import subprocess
import sys

import numpy as np
import pytest

from minicnn.backend import gpu_unavailable_reason
from minicnn.cli import DIVERGED, main
from minicnn.train import read_checkpoint

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
    assert "epoch 1/1" in capsys.readouterr().out
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


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # overflow on the way to NaN is the point
def test_nan_loss_exits_non_zero_with_a_message(data_root, tmp_path, capsys):
    code = train(data_root, tmp_path / "run", "--epochs", "1", "--optimizer", "sgd",
                 "--lr", "1e6")
    assert code == DIVERGED != 0
    assert "diverged" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "resnet"], "unknown model"),
    (["train", "--lr", "-1"], "lr must be"),
    (["evaluate", "no/such/run"], "no run folder"),
    (["summary", "--model", "resnet"], "unknown model"),
])
def test_bad_arguments_are_explained(tmp_path, capsys, args, message):
    if args[0] == "train":
        args = args + ["--out", str(tmp_path / "run")]
    assert main(args) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_data_folder_hints_at_data_dir(tmp_path, capsys, make):
    folder = tmp_path / "data"
    if make == "empty":
        folder.mkdir()
    assert main(["train", "--data-dir", str(folder), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "--data-dir" in err and "MINICNN_DATA" in err


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
