"""FolderLock: one process per folder; a killed holder never blocks the next one."""
import os
import signal
import subprocess
import sys
import time

import pytest

from minicnn.files.locks import FolderBusy, FolderLock, remove_stale_temporaries

HOLD = """
import sys, time
from minicnn.files.locks import FolderLock
lock = FolderLock(sys.argv[1], "training run").acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_is_refused_at_once_and_named(tmp_path):
    proc = _holder(tmp_path)
    try:
        start = time.perf_counter()
        with pytest.raises(FolderBusy) as err:
            FolderLock(tmp_path, "training run").acquire()
        assert time.perf_counter() - start < 1.0
        assert str(tmp_path) in str(err.value) and "training run" in str(err.value)
        assert f"process {proc.pid}" in str(err.value)
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_process_does_not_block(tmp_path):
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert os.path.exists(tmp_path / ".minicnn.lock")      # the file stays ...
    with FolderLock(tmp_path) as lock:                     # ... but nobody holds it
        assert lock.held
    assert not lock.held


def test_one_process_cannot_take_its_own_lock_twice(tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(FolderBusy):
            FolderLock(tmp_path).acquire()
    FolderLock(tmp_path).acquire().release()               # free again after the block


def test_remove_stale_temporaries(tmp_path):
    (tmp_path / ".tmp-abc12_yz.npz").write_bytes(b"half")    # mkstemp's 8 characters
    (tmp_path / ".tmp-notes.txt").write_bytes(b"the user's")  # not a name minicnn gives
    (tmp_path / "checkpoint.npz").write_bytes(b"keep")
    removed = remove_stale_temporaries(tmp_path)
    assert [os.path.basename(p) for p in removed] == [".tmp-abc12_yz.npz"]
    assert sorted(os.listdir(tmp_path)) == [".tmp-notes.txt", "checkpoint.npz"]
