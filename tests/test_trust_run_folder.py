"""The run folder is the user's: what ``minicnn train --out`` may touch, what a failed or
interrupted start leaves behind, and that a kill between the writes of an epoch never
leaves ``checkpoint.npz``, ``model.npz`` and ``best.npz`` disagreeing.

The command runs in-process on a tiny fake Fashion-MNIST (48 training, 16 test images:
``tests/data_helpers.make_files``), so each case takes well under a second; one case
kills a real subprocess with SIGKILL.
"""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from data_helpers import make_files

from minicnn import load_model
from minicnn.cli import train as cli_train
from minicnn.cli.command import main
from minicnn.cli.evaluate import _load_run
from minicnn.data import datasets
from minicnn.training import checkpoint
from minicnn.training import trainer as train
from minicnn.training.checkpoint import read_checkpoint
from minicnn.training.run_folder import BEST, CHECKPOINT, MODEL

SIZES = {"train": 48, "test": 16}


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A folder holding a tiny Fashion-MNIST (checked by content, not md5)."""
    monkeypatch.setattr(datasets, "SIZES", SIZES)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    folder = tmp_path / "data"
    make_files(folder, sizes=SIZES)
    return str(folder)


def args(data, out, *extra):
    return ["train", "--model", "tiny_cnn", "--dataset", "fashion-mnist", "--batch-size", "16",
            "--test-subset", "16", "--no-progress", "--data-dir", data, "--out", str(out),
            *extra]


def one_line(capsys):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def snapshot(folder):
    """Every entry under ``folder`` with its bytes (files) and modification time."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            content = open(path, "rb").read() if os.path.isfile(path) else None
            found[os.path.relpath(path, folder)] = (st.st_mtime_ns, st.st_mode, content)
    return found


# -- 1. a folder that is not ours is refused untouched --------------------------------
@pytest.mark.parametrize("extra", [[], ["--resume"]], ids=["new", "resume"])
def test_a_folder_of_the_users_is_refused_and_left_untouched(data, tmp_path, capsys, extra):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("my work")
    (mine / ".tmp-notes.txt").write_text("also mine")
    (mine / ".tmp-abcd1234.npz").write_bytes(b"looks like a temporary, is mine")
    (mine / "figures").mkdir()
    before = snapshot(mine)
    assert main(args(data, mine, "--epochs", "1", *extra)) == 1
    err = one_line(capsys)
    assert str(mine) in err and "not a minicnn run" in err and "--out" in err
    assert snapshot(mine) == before                   # nothing written, renamed or deleted


def test_the_library_trainer_refuses_a_folder_of_the_users(tmp_path):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"\xff\xd8")
    before = snapshot(mine)
    x = np.zeros((32, 28, 28), np.uint8)
    y = np.arange(32) % 10
    config = train.TrainConfig(model="tiny_cnn", epochs=1, batch_size=16)
    trainer = train.Trainer(config, (x, y), (x, y), mine, progress=False)
    with pytest.raises(ValueError, match="not a minicnn run"):
        trainer.fit()
    assert snapshot(mine) == before


def test_out_pointing_at_a_file_is_one_line(data, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep")
    assert main(args(data, target, "--epochs", "1")) == 1
    err = one_line(capsys)
    assert str(target) in err and "is a file, not a folder" in err
    assert target.read_text() == "keep"


def test_only_our_own_temporaries_are_removed_from_a_run_folder(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(args(data, run, "--epochs", "1")) == 0
    (run / ".tmp-k3j4h5g6.npz").write_bytes(b"left by a killed write")   # mkstemp's shape
    (run / ".tmp-my-notes.txt").write_text("the user's")
    (run / "notes.txt").write_text("the user's too")
    assert main(args(data, run, "--epochs", "2", "--resume")) == 0
    names = set(os.listdir(run))
    assert ".tmp-k3j4h5g6.npz" not in names
    assert {".tmp-my-notes.txt", "notes.txt"} <= names


# -- 3. Ctrl-C and failed starts ------------------------------------------------------
def interrupt_at_step(monkeypatch, step):
    real = train.Trainer._train_step

    def step_or_interrupt(self, x, y):
        if self.step + 1 == step:
            raise KeyboardInterrupt
        return real(self, x, y)
    monkeypatch.setattr(train.Trainer, "_train_step", step_or_interrupt)


def test_ctrl_c_in_the_first_epoch_offers_no_resume_and_leaves_no_folder(
        data, tmp_path, capsys, monkeypatch):
    run = tmp_path / "runs" / "new"
    interrupt_at_step(monkeypatch, 2)
    assert main(args(data, run, "--epochs", "2")) == 1
    err = one_line(capsys)
    assert "interrupted" in err and "--resume" not in err and "nothing is kept" in err
    assert not (tmp_path / "runs").exists()       # nor runs/, which the run made too


def test_ctrl_c_later_names_the_epoch_of_the_kept_checkpoint(data, tmp_path, capsys,
                                                            monkeypatch):
    run = tmp_path / "run"
    interrupt_at_step(monkeypatch, 7)         # 3 steps per epoch: in epoch 3
    assert main(args(data, run, "--epochs", "4")) == 1
    err = one_line(capsys)
    assert "checkpoint after epoch 2 is kept" in err
    assert f"minicnn train --out {run} --resume" in err
    assert read_checkpoint(run).meta["epoch"] == 2


def test_ctrl_c_of_a_resumed_run_names_its_checkpoint(data, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(args(data, run, "--epochs", "1")) == 0
    interrupt_at_step(monkeypatch, 5)
    assert main(args(data, run, "--epochs", "3", "--resume")) == 1
    err = one_line(capsys)
    assert "checkpoint after epoch 1 is kept" in err and "--resume" in err
    assert run.exists()


@pytest.mark.parametrize("resume", [False, True])
def test_ctrl_c_while_the_data_loads_is_one_line(data, tmp_path, capsys, monkeypatch, resume):
    run = tmp_path / "run"
    if resume:
        assert main(args(data, run, "--epochs", "1")) == 0
        capsys.readouterr()

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_train, "load_data", interrupted)
    assert main(args(data, run, "--epochs", "2", *(["--resume"] if resume else []))) == 1
    err = one_line(capsys)
    assert "interrupted while loading the data" in err
    assert ("--resume" in err) == resume and run.exists() == resume


@pytest.mark.parametrize("fault", ["no data", "bad settings", "diverged"])
def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(data, tmp_path, capsys,
                                                                 monkeypatch, fault):
    run = tmp_path / "runs" / "r1"
    extra = ["--epochs", "1"]
    if fault == "no data":
        data = str(tmp_path / "no-such-data")
    elif fault == "bad settings":
        extra += ["--validation", "47"]          # leaves 1 image, under one batch
    else:
        def diverge(self, log, start):
            raise FloatingPointError("the loss is nan")
        monkeypatch.setattr(train.Trainer, "_train_epoch", diverge)
    assert main(args(data, run, *extra)) in (1, 3)
    one_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_a_failed_start_in_a_folder_the_user_made_leaves_it_as_it_was(data, tmp_path, capsys):
    run = tmp_path / "made-by-me"
    run.mkdir()
    assert main(args(data, run, "--epochs", "1", "--validation", "47")) == 1
    one_line(capsys)
    assert run.is_dir() and os.listdir(run) == []


# -- 2. checkpoint.npz, model.npz and best.npz never disagree --------------------------
class Killed(BaseException):
    """A kill: nothing of minicnn's may catch it (it is not an Exception)."""


def kill_after_rename(monkeypatch, name, count=1, action=None):
    """Make ``os.replace`` 'kill' the process right after its ``count``-th rename onto a
    file called ``name`` (``action``: run instead of raising, e.g. send a signal)."""
    real, seen = os.replace, []

    def replace(src, dst):
        real(src, dst)
        if os.path.basename(dst) == name:
            seen.append(dst)
            if len(seen) == count:
                if action is None:
                    raise Killed
                action()
    monkeypatch.setattr(os, "replace", replace)


def weights(model):
    return {k: np.asarray(v) for k, v in model.state_dict().items()}


def assert_all_agree(run):
    """What resume, evaluate, explore and load_model(RUN/model.npz) see, after the next
    start in the folder (``repair_run`` is what each of them calls first)."""
    checkpoint.repair_run(run)
    resumed = read_checkpoint(run).model_state
    evaluated = _load_run(str(run), "cpu").model
    for seen in (weights(evaluated), weights(load_model(run / MODEL))):
        assert seen.keys() == resumed.keys()
        for k in seen:
            np.testing.assert_array_equal(seen[k], resumed[k], err_msg=k)


@pytest.mark.parametrize("name", [CHECKPOINT, BEST, MODEL])
def test_a_kill_after_any_write_of_the_last_epoch_leaves_files_that_agree(
        data, tmp_path, monkeypatch, capsys, name):
    """The last epoch is the first here: each of its three renames happens (best.npz is
    always written after the first epoch of a run with a validation split)."""
    run = tmp_path / "run"
    kill_after_rename(monkeypatch, name)
    with pytest.raises(Killed):
        main(args(data, run, "--epochs", "1", "--validation", "16"))
    monkeypatch.undo()
    assert_all_agree(run)
    best = _load_run(str(run), "cpu", best=True).model
    meta = read_checkpoint(run).meta
    if meta["best"]["epoch"] == meta["epoch"]:     # best.npz is the checkpoint's model
        np.testing.assert_array_equal(weights(best)["0.weight"],
                                      read_checkpoint(run).model_state["0.weight"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_during_the_checkpoint_write_waits_for_the_pair(
        data, tmp_path, monkeypatch, capsys, sig):
    run, handler = tmp_path / "run", signal.getsignal(signal.SIGTERM)
    kill_after_rename(monkeypatch, CHECKPOINT, action=lambda: signal.raise_signal(sig))
    assert main(args(data, run, "--epochs", "2")) == 1
    err = one_line(capsys)
    assert "checkpoint after epoch 1 is kept" in err
    monkeypatch.undo()
    assert load_model(run / MODEL).state_dict().keys()     # both written before stopping
    np.testing.assert_array_equal(weights(load_model(run / MODEL))["0.weight"],
                                  read_checkpoint(run).model_state["0.weight"])
    assert not [n for n in os.listdir(run) if n.startswith(".tmp-")]
    assert signal.getsignal(signal.SIGTERM) == handler          # the handler is given back


SIGKILLED = """
import os, signal, sys
real = os.replace
def replace(src, dst):
    real(src, dst)
    if os.path.basename(dst) == "checkpoint.npz":
        os.kill(os.getpid(), signal.SIGKILL)      # between the checkpoint and model.npz
os.replace = replace
from minicnn.data import datasets
datasets.SIZES = {"train": 48, "test": 16}
from minicnn.cli.command import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_between_the_two_renames_is_repaired_by_the_next_start(data, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", SIGKILLED, *args(data, run, "--epochs", "1")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (run / CHECKPOINT).exists() and not (run / MODEL).exists()
    assert any(n.startswith(".tmp-") for n in os.listdir(run))   # model.npz's, left behind
    assert main(["evaluate", str(run), "--data-dir", data]) == 0   # the next start repairs
    assert_all_agree(run)
    assert main(args(data, run, "--epochs", "2", "--resume")) == 0
    assert not [n for n in os.listdir(run) if n.startswith(".tmp-")]


def test_ctrl_c_while_evaluate_loads_the_data_is_one_line(data, tmp_path, capsys,
                                                         monkeypatch):
    from minicnn.cli import evaluate as cli_evaluate
    run = tmp_path / "run"
    assert main(args(data, run, "--epochs", "1")) == 0
    capsys.readouterr()

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_evaluate, "load_data", interrupted)
    assert main(["evaluate", str(run)]) == 1
    assert "interrupted" in one_line(capsys)


@pytest.mark.parametrize("content, says", [
    ("[1, 2]", "holds a JSON array, not a run's settings (a JSON object): mend it, or remove it"),
    ("{not json", "cannot be read as a run's settings (Expecting property name"),
])
@pytest.mark.parametrize("command", ["evaluate", "report-card", "explore"])
def test_every_command_reads_config_json_alike(tmp_path, capsys, command, content, says):
    """One reader of a run's settings: a bad ``config.json`` is the same one line whichever
    command meets it (before any data is read)."""
    if command == "explore":
        pytest.importorskip("gradio", reason="the explore extra (gradio) is not installed")
    from minicnn import models, save_model
    run = tmp_path / "run"
    run.mkdir()
    save_model(models.get_model("tiny_cnn"), run / MODEL)
    (run / "config.json").write_text(content)
    target = run / MODEL if command == "evaluate" else run
    status = main([command, str(target)] + (["--no-browser"] if command == "explore" else []))
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(err) == 1, err
    assert f"{run / 'config.json'} {says}" in err[0]
