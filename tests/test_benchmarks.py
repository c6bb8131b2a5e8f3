"""The benchmark scripts run: bench.py's CPU path and its clear refusal without a GPU,
epoch.py's end-to-end epoch (with and without PyTorch), launch_overhead.py's dry run under
the CUDA simulator, gpu_check.sh's syntax and its summary table. Subprocesses on tiny sizes;
no test depends on a timing."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn.backend import gpu_unavailable_reason

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
no_gpu = pytest.mark.skipif(gpu_unavailable_reason() is None, reason="a GPU is available here")


def run(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, MPLBACKEND="Agg", **(env or {})))


@no_gpu
@pytest.mark.parametrize("script, args", [("bench.py", ["--device", "gpu"]),
                                          ("launch_overhead.py", [])])
def test_gpu_scripts_refuse_in_one_line_without_a_gpu(script, args):
    result = run(BENCH / script, *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no usable GPU" in lines[0], result.stderr
    assert "pip install -e .[gpu" in lines[0] or "driver" in lines[0]


def test_bench_blocks_protocol_writes_its_rows(tmp_path):
    out = tmp_path / "bench.json"
    result = run(BENCH / "bench.py", "--models", "tiny_cnn", "--batch-sizes", "4",
                 "--block-steps", "1", "--pause", "0", "--warmup", "1", "--threads", "1",
                 "--no-layers", "--json", out)
    assert result.returncode == 0, result.stderr
    assert "protocol: blocks: 5 blocks of 1 timed steps" in result.stdout
    assert "threads in use" in result.stdout
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert (row["model"], row["batch"]) == ("tiny_cnn", 4)
    assert row["images_per_s"] > 0 and row["cpu_ms_per_image"] > 0
    assert ("ratio" in row) == (report["torch_skipped"] is None)


def test_bench_appends_a_json_line_per_row_as_it_ends(tmp_path):
    out = tmp_path / "rows.jsonl"
    out.write_text('{"earlier": "run"}\n')                     # appended to, never replaced
    result = run(BENCH / "bench.py", "--models", "tiny_cnn", "fast_cnn", "--batch-sizes", "2",
                 "--block-steps", "1", "--pause", "0", "--warmup", "1", "--threads", "1",
                 "--no-layers", "--no-torch", "--jsonl", out)
    assert result.returncode == 0, result.stderr
    earlier, *rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert earlier == {"earlier": "run"}
    assert [(r["model"], r["batch"], r["device"]) for r in rows] == [("tiny_cnn", 2, "cpu"),
                                                                     ("fast_cnn", 2, "cpu")]
    assert all(r["images_per_s"] > 0 and r["torch_skipped"] == "--no-torch" for r in rows)


def test_gpu_step_compares_one_lenet_step_on_the_stand_in(tmp_path):
    """At batch 64 float32 rounding flips a kink (the CPU's Winograd against the GPU's
    im2col): the gradients are compared in float64, where a correct GPU agrees."""
    out = tmp_path / "step.json"
    result = run(BENCH / "gpu_step.py", "--fake-gpu", "--batch", "64", "--repeats", "1",
                 "--json", out)
    assert result.returncode == 0, result.stdout + result.stderr
    row = json.loads(out.read_text())
    assert row["loss_cpu"] == pytest.approx(row["loss_gpu"], rel=1e-5)
    assert row["worst_grad_diff"] < 1e-9 and row["step_s_gpu"] > 0
    assert "stand-in" in row["gpu_loops"]


def test_bench_refuses_fewer_than_five_blocks():
    result = run(BENCH / "bench.py", "--blocks", "3")
    assert result.returncode == 2 and "--blocks must be >= 5" in result.stderr


# Real MNIST (data_root skips without it), 4 training steps, no untimed warm-up run.
EPOCH_TINY = ["--train-subset", "256", "--test-subset", "256", "--threads", "1",
              "--no-warmup", "--pause", "0"]


def check_epoch_row(row):
    assert (row["train_images"], row["test_images"], row["threads"]) == (256, 256, 1)
    assert row["wall_s"] > row["train_s"] + row["evaluate_s"] and row["evaluate_s"] > 0
    assert row["images_per_s"] == pytest.approx(256 / row["train_s"], rel=0.02)
    assert 0.2 < row["test_acc"] <= 1       # 4 steps of Adam: well above chance (0.1)


def test_epoch_times_minicnn_and_torch_end_to_end(tmp_path, data_root):
    pytest.importorskip("torch")
    out = tmp_path / "epoch.json"
    result = run(BENCH / "epoch.py", *EPOCH_TINY, "--json", out)
    assert result.returncode == 0, result.stderr
    assert "| minicnn | 1 | 256 / 256 |" in result.stdout
    assert "| torch | 1 | 256 / 256 |" in result.stdout and "uptime before" in result.stdout
    report = json.loads(out.read_text())
    assert [r["engine"] for r in report["rows"]] == ["minicnn", "torch"]
    for row in report["rows"]:
        check_epoch_row(row)
    minicnn, torch = report["rows"]
    assert report["ratios"] == [pytest.approx(torch["wall_s"] / minicnn["wall_s"])]
    assert "--init glorot" in minicnn["command"] and "--lr 0.001" in minicnn["command"]


def test_epoch_without_torch_still_times_minicnn(tmp_path, data_root):
    (tmp_path / "torch.py").write_text("raise ImportError('no torch here (test)')\n")
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    out = tmp_path / "epoch.json"
    result = run(BENCH / "epoch.py", *EPOCH_TINY, "--json", out, env={"PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    assert "PyTorch not installed" in result.stdout and "| torch |" not in result.stdout
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["engine"] == "minicnn" and report["torch_skipped"] == "PyTorch not installed"
    check_epoch_row(row)


def test_launch_overhead_dry_run_launches_every_kernel(tmp_path):
    out = tmp_path / "launch.json"
    result = run(BENCH / "launch_overhead.py", "--dry-run", "--json", out)
    if "No module named" in result.stderr and "cuda" in result.stderr:
        pytest.skip(f"numba.cuda simulator unavailable: {result.stderr.splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert {r["kernel"] for r in rows} == {"im2col", "col2im", "maxpool_forward",
                                           "maxpool_backward", "avgpool_forward",
                                           "avgpool_backward"}
    assert all(r["us_per_launch"] is None for r in rows)      # a dry run times nothing


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(BENCH / "gpu_check.sh")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def test_gpu_check_is_staged_for_one_8_minute_run():
    """What issue 27 asks of it, read from the script (its --dry-run takes 1.5 minutes: run
    it by hand); the limits of its steps add up to under 8 minutes."""
    script = (BENCH / "gpu_check.sh").read_text()
    assert "PY=${PYTHON:-python3}" in script
    assert "pip install --no-deps --no-build-isolation -e ." in script and "wheel" in script
    assert 'CUPY_CACHE_DIR="$OUT_DIR/' in script and "timeout -s INT" in script
    assert "-m gpu" in script and '--junitxml "$OUT_DIR/tests.xml"' in script
    assert "--models lenet tiny_cnn keras_cnn fast_cnn --batch-sizes 64 256" in script
    assert '--jsonl "$OUT_DIR/bench.jsonl"' in script and "minicnn doctor" in script
    limits = [int(n) for n in re.findall(r"^\s*step \w+ (\d+) ", script, re.M)]
    assert len(limits) == 8 and sum(limits) - 40 <= 8 * 60, limits   # doctor: once of two


def test_gpu_summary_reports_failed_steps_and_missing_outputs(tmp_path):
    (tmp_path / "steps.tsv").write_text("tests\t1\t1500\nbench\t124\t90000\n")
    (tmp_path / "tests.log").write_text("FAILED tests/test_x.py::test_y - boom\n"
                                        "1 failed, 3 passed in 1.50s\n")
    result = run(BENCH / "gpu_summary.py", tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "FAILED (1)" in text and "TIMEOUT" in text
    assert "tests: 1 failed, 3 passed" in text and "test_x.py::test_y" in text
    assert "no epoch finished" in text and "no bench.json nor bench.jsonl rows" in text
    assert "no parity table" in text and "no gpu_step.json" in text


def test_gpu_summary_reads_the_rows_of_a_bench_cut_short(tmp_path):
    (tmp_path / "bench.jsonl").write_text(json.dumps(dict(
        model="lenet", batch=64, device="gpu", images_per_s=1000.0, torch_images_per_s=500.0,
        ratio=2.0, torch_skipped=None)) + "\n")
    (tmp_path / "doctor.log").write_text("  gpu            the GPU runs the numba.cuda kernels\n"
                                         "  Dense   gpu fast   1.0e-16   0.1  ok\n"
                                         "  ReLU    gpu fast   2.0e-01   0.1  MISMATCH\n")
    text = run(BENCH / "gpu_summary.py", tmp_path).stdout
    assert "cut short" in text and "lenet         64           1000          500" in text
    assert "doctor: 1 rows ok, 1 MISMATCH" in text and "numba.cuda kernels" in text


def test_count_launches_matches_a_count_by_reading():
    """benchmarks/count_launches.py against what the code says for lenet (batch 2):
    ReLU forward is `x > 0` and `x * mask`; Dense forward one product and a bias add;
    eight facade kernels (im2col, maxpool forward, maxpool backward, col2im, twice)."""
    result = run(BENCH / "count_launches.py", "--model", "lenet", "--batch", "2")
    assert result.returncode == 0, result.stderr
    rows = {line[:24].strip(): line[24:].split() for line in result.stdout.splitlines()}
    assert rows["1 ReLU forward"] == ["2"]                     # elementwise only
    assert rows["10 Dense forward"] == ["1", "1"]              # elementwise, cuBLAS
    total = dict(zip(["elementwise", "fill", "copy", "gather", "cuBLAS", "numba", "sync"],
                     map(int, rows["total"])))
    # cuBLAS: forward 1 and backward 2 (dW, dx) per Conv2D and per Dense, four layers
    assert total["numba"] == 8 and total["cuBLAS"] == 12
