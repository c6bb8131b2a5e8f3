"""A run folder under faults a user can cause: two trainings into one folder, a
folder that cannot be written, a full disk, and a process killed while it writes
a checkpoint. The process cases run ``python -m minicnn`` as real subprocesses
on 64 images, so each takes seconds."""
import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from minicnn.cli.command import main
from minicnn.training.checkpoint import read_checkpoint
from minicnn.training.run_folder import CHECKPOINT

TINY = ["--model", "tiny_cnn", "--train-subset", "64", "--test-subset", "64",
        "--batch-size", "32", "--no-progress"]


def _command(data_root, out, *extra):
    return [sys.executable, "-m", "minicnn", "train", *TINY, "--data-dir", data_root,
            "--out", str(out), *extra]


def _temporaries(folder):
    return [p for p in os.listdir(folder) if p.startswith(".tmp-")]


def _wait_for_lock(run, proc, seconds=60):
    """Until ``proc`` has written its pid into the run folder's lock file."""
    lock = run / ".minicnn.lock"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if lock.exists() and lock.read_text().strip() == str(proc.pid):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the first training never took the run folder's lock")


def test_second_training_into_one_folder_is_refused_at_once(data_root, tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen(_command(data_root, run, "--epochs", "1000"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_lock(run, first)
        for extra in (["--epochs", "1"], ["--resume", "--epochs", "2000"]):
            start = time.monotonic()
            second = subprocess.run(_command(data_root, run, *extra), capture_output=True,
                                    text=True, timeout=60)
            assert second.returncode == 1, second.stderr
            assert str(run) in second.stderr and "another training run" in second.stderr
            assert f"process {first.pid}" in second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
            assert time.monotonic() - start < 30       # no data loaded, no waiting
        assert first.poll() is None                    # the first one trains on
    finally:
        first.kill()
        first.wait()
        first.stdout.close()
        first.stderr.close()


KILLED_IN_WRITE = """
import sys, time
import numpy as np
real = np.savez
def savez_then_hang(f, **arrays):   # a checkpoint half on disk, then kill -9
    real(f, **arrays)
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
np.savez = savez_then_hang
from minicnn.cli.command import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_during_a_checkpoint_write_leaves_no_temporary_after_the_next_start(
        data_root, tmp_path):
    run = tmp_path / "run"
    args = ["train", *TINY, "--data-dir", data_root, "--out", str(run), "--epochs", "1"]
    proc = subprocess.Popen([sys.executable, "-c", KILLED_IN_WRITE, *args],
                            stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "writing":
                break
        else:
            raise AssertionError(f"the child never wrote a checkpoint (exit {proc.wait()})")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert _temporaries(run), "the killed write should have left its temporary file"
    assert not (run / CHECKPOINT).exists()
    assert main(args) == 0                             # the next start cleans up first
    assert not _temporaries(run)
    assert read_checkpoint(run)[0]["epoch"] == 1


def test_run_folder_under_a_file_is_refused_before_loading_data(tmp_path, capsys):
    """A run folder that cannot be made or written to (works as root, unlike chmod)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["train", "--out", str(blocker / "run"), "--data-dir",
                 str(tmp_path / "no-data-here")])
    assert code == 1
    err = capsys.readouterr().err
    assert str(blocker / "run") in err and "cannot write" in err
    assert "no-data-here" not in err                   # checked before the data
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="runs as root, where chmod 0o555 does not stop writes (the "
                           "file-in-the-way and disk-full tests cover the same paths)")
def test_read_only_run_folder_is_refused_before_loading_data(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o555)
    try:
        assert main(["train", "--out", str(run), "--data-dir", str(tmp_path / "none")]) == 1
    finally:
        run.chmod(0o755)
    err = capsys.readouterr().err
    assert str(run) in err and "cannot write" in err


def test_disk_full_during_a_checkpoint_names_the_file_and_keeps_the_last_one(
        data_root, tmp_path, capsys, monkeypatch):
    """A full disk, simulated: the second checkpoint's write fails half-way with ENOSPC
    (the writability check at the start still passes: the disk fills up later)."""
    import numpy as np
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data-dir", data_root, "--out", str(run),
                 "--epochs", "1"]) == 0
    before = (run / CHECKPOINT).read_bytes()
    real = np.savez

    def full(f, **arrays):
        real(f, **arrays)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(np, "savez", full)
    capsys.readouterr()
    code = main(["train", "--out", str(run), "--resume", "--epochs", "2",
                 "--data-dir", data_root, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1
    assert f"could not write {run / CHECKPOINT}: No space left on device" in err
    assert (run / CHECKPOINT).read_bytes() == before   # the previous checkpoint stays
    assert not _temporaries(run)
