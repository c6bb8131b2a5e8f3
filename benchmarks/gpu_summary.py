"""The short table ``gpu_check.sh`` prints last, read from what its steps wrote.

    python benchmarks/gpu_summary.py OUT_DIR        # the table
    python benchmarks/gpu_summary.py --environment  # versions, driver, GPU (stage 1)

A step that failed or wrote nothing shows as such; nothing here is estimated.
"""
import importlib
import json
import os
import platform
import re
import subprocess
import sys


def environment():
    try:
        print(subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20).stdout)
    except (OSError, subprocess.SubprocessError) as err:
        print(f"nvidia-smi unavailable: {err}")
    print("python", platform.python_version())
    for name in ("numpy", "numba", "cupy", "numba_cuda", "torch"):
        try:
            print(name, importlib.import_module(name).__version__)
        except Exception as err:  # noqa: BLE001 - a line per package, whatever went wrong
            print(name, "unavailable:", err)
    from minicnn.backend import cuda_driver_version, gpu_unavailable_reason
    print("driver CUDA version:", cuda_driver_version())
    print(f"gpu_unavailable_reason: {gpu_unavailable_reason()}")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _json(path):
    text = _read(path)
    return json.loads(text) if text else None


def summary(out):
    lines = ["## gpu_check summary (" + out + ")", "", "step               exit  seconds"]
    for row in (_read(os.path.join(out, "steps.tsv")) or "").splitlines():
        name, rc, ms = row.split("\t")
        status = {"0": "ok", "124": "TIMEOUT", "137": "KILLED"}.get(rc, f"FAILED ({rc})")
        lines.append(f"{name:<18} {status:<9} {int(ms) / 1000:.1f}")
    doctor = _read(os.path.join(out, "doctor.log")) or ""
    rows = re.findall(r"  (ok|MISMATCH)$", doctor, re.M)
    gpu = re.findall(r"^  gpu +(.*)$", doctor, re.M)
    lines += ["", f"doctor: {rows.count('ok')} rows ok, {rows.count('MISMATCH')} MISMATCH"
              if rows else "doctor: no parity table (see doctor.log)"]
    lines += [f"  gpu loops: {gpu[0]}"] if gpu else []
    step = _json(os.path.join(out, "gpu_step.json"))
    if step:
        lines.append(f"lenet step, batch {step['batch']}: loss cpu {step['loss_cpu']:.6f}, gpu "
                     f"{step['loss_gpu']:.6f}, gradients differ by {step['worst_grad_diff']:.1e}; "
                     f"gpu {1e3 * step['step_s_gpu']:.2f} ms (first {step['first_step_s_gpu']:.2f}"
                     f" s), cpu {1e3 * step['step_s_cpu']:.2f} ms")
    else:
        lines.append("lenet step: no gpu_step.json (see gpu_step.log)")
    tests = _read(os.path.join(out, "tests.log")) or ""
    counts = re.findall(r"^=*\s*(\d+ (?:passed|failed|error|skipped).*?) in [\d.]+s", tests, re.M)
    lines += ["", f"tests: {counts[-1] if counts else 'no pytest summary line (see tests.log)'}"]
    lines += [f"  {m}" for m in re.findall(r"^(?:FAILED|ERROR) .*$", tests, re.M)[:15]]
    metrics = _read(os.path.join(out, "lenet_run", "metrics.jsonl")) or ""
    epochs = [r for r in map(json.loads, metrics.splitlines()) if r.get("kind") == "epoch"]
    lines.append("")
    for r in epochs:
        lines.append(f"lenet epoch {r['epoch']}: test accuracy {100 * r['test_acc']:.2f}%, "
                     f"{r['train_seconds']:.2f} s of training ({r['images_per_s']:.0f} images/s), "
                     f"{r['seconds']:.1f} s since the start")
    if not epochs:
        lines.append("lenet training: no epoch finished (see train.log)")
    bench = _json(os.path.join(out, "bench.json"))
    rows = [json.loads(line) for line in
            (_read(os.path.join(out, "bench.jsonl")) or "").splitlines() if line.strip()]
    if not bench and rows:              # cut short: the rows that finished
        bench = dict(device=rows[0]["device"], protocol="cut short: the rows that finished",
                     rows=rows, torch_skipped=rows[0].get("torch_skipped"))
    lines.append("")
    if bench:
        lines.append(f"bench ({bench['device']}; {bench['protocol']})")
        lines.append("model      batch  minicnn img/s  torch img/s  minicnn/torch")
        for r in bench["rows"]:
            torch_cells = (f"{r['torch_images_per_s']:>11.0f}  {r['ratio']:>13.2f}"
                           if "ratio" in r else f"{'-':>11}  {'-':>13}")
            lines.append(f"{r['model']:<10} {r['batch']:>5}  {r['images_per_s']:>13.0f}  "
                         f"{torch_cells}")
        if bench.get("torch_skipped"):
            lines.append(f"(PyTorch skipped: {bench['torch_skipped']})")
    else:
        lines.append("bench: no bench.json nor bench.jsonl rows (see bench.log)")
    launch = _json(os.path.join(out, "launch_overhead.json"))
    if launch:                          # benchmarks/launch_overhead.py, when it was run
        lines.append("")
        lines.append("launch overhead (us per launch" + (", dry run: not timed)" if
                                                         launch["dry_run"] else ")"))
        for r in launch["rows"]:
            value = "-" if r["us_per_launch"] is None else f"{r['us_per_launch']:.1f}"
            lines.append(f"  {r['kernel']:<18} {r['variant']:<48} {r.get('error', value)}")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--environment"]:
        environment()
    elif len(sys.argv) == 2:
        print(summary(sys.argv[1]))
    else:
        sys.exit("usage: gpu_summary.py OUT_DIR | --environment")
