"""Floating-point warnings: the chunk threads follow the caller's ``np.errstate``, so a
diverging run ends in its one stop line and nothing else (issue 24)."""
import os
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from minicnn.kernels import threads


def overflow(k):
    """An overflow in float64, after a pause so that the helper threads take items too;
    returns the name of the thread that ran it."""
    time.sleep(0.02)
    np.array([1e308]) * 10.0
    return threading.current_thread().name


@pytest.mark.parametrize("mode", ["ignore", "raise"])
def test_chunk_threads_follow_the_callers_errstate(mode):
    threads.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # a warning from any thread fails
        with np.errstate(over=mode):
            if mode == "raise":
                with pytest.raises(FloatingPointError):
                    threads.run(overflow, range(8))
                return
            names = threads.run(overflow, range(8))
    assert any(name.startswith("minicnn-chunks") for name in names)   # a helper ran some


def test_chunk_threads_keep_their_own_default_afterwards():
    """The caller's errstate is applied for its items only, then the helper's default
    (``warn``) is back."""
    threads.set_num_threads(2)
    with np.errstate(over="ignore"):
        threads.run(overflow, range(4))
    assert threads.run(lambda k: np.geterr()["over"], range(6)) == ["warn"] * 6


def test_a_diverging_run_prints_only_its_stop_line(data_root, tmp_path):
    env = dict(os.environ, MINICNN_NUM_THREADS="2")
    done = subprocess.run(
        [sys.executable, "-m", "minicnn", "train", "--lr", "1e30", "--train-subset", "512",
         "--test-subset", "64", "--epochs", "1", "--no-progress", "--data-dir", data_root,
         "--out", str(tmp_path / "run")],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minicnn train: stopped: training diverged"), \
        done.stderr
