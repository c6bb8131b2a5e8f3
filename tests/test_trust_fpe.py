"""Floating-point warnings: a diverging run ends in its one stop line and nothing else
(issue 24)."""
import os
import subprocess
import sys



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
