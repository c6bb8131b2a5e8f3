"""One MNIST epoch end to end: ``minicnn train`` against a PyTorch script, same recipe.

Any trainable zoo model (``--model``, default lenet; ``minicnn.training.config.MNIST_MODELS``).
minicnn's side is the real command line, ``python -m minicnn train --model lenet --epochs 1``
with its recipe spelled out (Adam lr 1e-3, batch 64, Glorot init, seed 0, no schedule, no
augmentation), into a fresh temporary run folder: start-up, data loading, batching, training,
the test-set evaluation and the run folder's files (checkpoint, metrics, curves) included.
PyTorch's side is ``torch_epoch.py``: the same network and initial weights, the same arrays
and normalization, Adam, batch 64, shuffled, then the whole test set in eval mode.

Protocol: each run is its own subprocess (so neither engine's thread pool can slow the
other), minicnn and PyTorch alternate (minicnn, torch, minicnn, torch, ... for
``--repeats``), with ``--pause`` seconds of rest before each. ``--threads T`` sets
OMP/OPENBLAS/MKL/NUMBA/MINICNN_NUM_THREADS in both environments (and
``torch.set_num_threads(T)``). Unless ``--no-warmup``, one untimed tiny run of each engine
comes first: it fills Numba's on-disk cache (compiled once after every code change) and
the OS's file cache, which a learner's second run would find filled.

Reported per run: the subprocess's wall time (end to end), its training and evaluation
seconds (minicnn: its metrics.jsonl; PyTorch: what the script prints), training images/s,
test accuracy, and the ratio PyTorch wall / minicnn wall (> 1: minicnn is faster).

    python benchmarks/epoch.py --threads 2
    python benchmarks/epoch.py --threads 1 --repeats 3 --json epoch.json
    python benchmarks/epoch.py --train-subset 6400 --test-subset 2000 --threads 1
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from report import machine_info

HERE = Path(__file__).resolve().parent
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS", "MINICNN_NUM_THREADS")
RECIPE = dict(epochs=1, batch_size=64, lr=1e-3, seed=0)
# minicnn.training.config.MNIST_MODELS, spelled out: this script imports no minicnn (its children do)
MODELS = ("lenet", "tiny_cnn", "keras_cnn", "lenet5", "bn_cnn", "fast_cnn", "mobilenet_mnist")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="lenet", choices=MODELS,
                   help="the zoo model both engines train (default lenet)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads of every pool in both subprocesses (default: all cores)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs of each engine")
    p.add_argument("--pause", type=float, default=2.0, help="seconds of rest before each run")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="both engines train on the first N training images (default all)")
    p.add_argument("--test-subset", type=int, default=None, metavar="N",
                   help="both engines evaluate the first N test images (default all)")
    p.add_argument("--data-dir", default=None, help="(default: $MINICNN_DATA, then the cache)")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed tiny runs")
    p.add_argument("--no-torch", action="store_true", help="time minicnn only")
    p.add_argument("--json", metavar="PATH", help="also write the runs and settings as JSON")
    args = p.parse_args(argv)
    for name in ("threads", "repeats", "train_subset", "test_subset"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def child_env(threads):
    return dict(os.environ, MPLBACKEND="Agg", **{v: str(threads) for v in THREAD_VARS})


def subset_args(args, train, test):
    out = [] if args.data_dir is None else ["--data-dir", args.data_dir]
    for flag, n in (("--train-subset", train), ("--test-subset", test)):
        out += [] if n is None else [flag, str(n)]
    return out


def timed(cmd, env):
    """Run ``cmd``; its wall seconds and stdout. Stops the benchmark if it fails."""
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"epoch.py: `{' '.join(cmd)}` failed ({result.returncode}):\n"
                 f"{result.stderr.strip()[-2000:]}")
    return wall, result.stdout


def run_minicnn(args, train, test):
    """One ``minicnn train`` run into a temporary folder: a row (dict)."""
    with tempfile.TemporaryDirectory(prefix="epoch-minicnn-") as tmp:
        out = os.path.join(tmp, "run")
        cmd = [sys.executable, "-m", "minicnn", "train", "--model", args.model,
               "--epochs", str(RECIPE["epochs"]), "--batch-size", str(RECIPE["batch_size"]),
               "--optimizer", "adam", "--lr", f"{RECIPE['lr']:g}", "--init", "glorot",
               "--seed", str(RECIPE["seed"]), "--schedule", "none", "--device", "cpu",
               "--dataset", "mnist", "--no-progress", "--out", out,
               *subset_args(args, train, test)]
        wall, stdout = timed(cmd, child_env(args.threads))
        with open(os.path.join(out, "metrics.jsonl")) as f:
            records = [json.loads(line) for line in f if line.strip()]
    epoch = [r for r in records if r["kind"] == "epoch"][-1]
    # its first line: "training lenet on mnist (6400 images, test 2000) for 1 epoch ..."
    images = re.search(r"\((\d+) images, test (\d+)\)", stdout)
    # ``seconds`` counts training and evaluation of the epoch, ``train_seconds`` training only
    return dict(engine="minicnn", wall_s=wall, train_s=epoch["train_seconds"],
                evaluate_s=epoch["seconds"] - epoch["train_seconds"],
                train_images=int(images[1]), test_images=int(images[2]),
                images_per_s=epoch["images_per_s"], test_acc=epoch["test_acc"],
                command=" ".join(cmd[1:]))


def run_torch(args, train, test):
    """One ``torch_epoch.py`` run: a row (dict)."""
    cmd = [sys.executable, str(HERE / "torch_epoch.py"), "--model", args.model,
           "--epochs", str(RECIPE["epochs"]), "--batch-size", str(RECIPE["batch_size"]),
           "--lr", f"{RECIPE['lr']:g}", "--seed", str(RECIPE["seed"]),
           "--threads", str(args.threads), *subset_args(args, train, test)]
    wall, stdout = timed(cmd, child_env(args.threads))
    result = json.loads(stdout.split("RESULT ", 1)[1])
    kept = ("train_s", "evaluate_s", "load_s", "imports_s", "minicnn_import_s", "train_images",
            "test_images", "images_per_s", "test_acc", "torch", "threads")
    return dict(engine="torch", wall_s=wall, **{k: result[k] for k in kept},
                command=" ".join(cmd[1:]))


def load_line():
    if shutil.which("uptime"):
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def cells(row, ratio=None):
    images = f"{row['train_images']} / {row['test_images']}"
    return [row["engine"], str(row["threads"]), images, f"{row['wall_s']:.2f}",
            f"{row['train_s']:.2f}", f"{row['evaluate_s']:.2f}",
            f"{row['wall_s'] - row['train_s'] - row['evaluate_s']:.2f}",
            f"{row['images_per_s']:.0f}", f"{100 * row['test_acc']:.2f}%",
            "" if ratio is None else f"{ratio:.2f}"]


def main(argv=None):
    args = parse_args(argv)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("# PyTorch not installed: timing minicnn only (pip install torch)")
    machine = machine_info(SimpleNamespace(threads=args.threads, impl="fast",
                                           device="cpu"), torch)
    uptime = load_line()
    print(f"# machine: {machine}")
    print(f"# uptime before the run: {uptime}")
    print(f"# protocol: separate subprocesses, minicnn and torch alternating, {args.repeats} "
          f"run(s) each, {args.pause:g} s pause before each"
          + ("" if args.no_warmup else ", after one untimed tiny run of each"))
    engines = [run_minicnn] + ([run_torch] if torch is not None else [])
    if not args.no_warmup:
        for engine in engines:
            time.sleep(args.pause)
            engine(args, 256, 256)
    rows = []
    for repeat in range(args.repeats):
        for engine in engines:
            time.sleep(args.pause)
            row = engine(args, args.train_subset, args.test_subset)
            row.update(repeat=repeat + 1)
            row.setdefault("threads", args.threads)     # torch's: what torch says it uses
            rows.append(row)
            print(f"# {row['engine']} run {repeat + 1}: {row['wall_s']:.2f} s wall, "
                  f"train {row['train_s']:.2f} s, test accuracy {100 * row['test_acc']:.2f}%",
                  flush=True)
    ratios = [t["wall_s"] / m["wall_s"] for m, t in zip(rows[0::2], rows[1::2])] \
        if torch is not None else []
    print(f"\n## one {args.model} MNIST epoch end to end, {args.threads} thread(s) "
          f"(Adam {RECIPE['lr']:g}, batch {RECIPE['batch_size']}, Glorot)")
    print("| engine | threads | train / test images | wall s | train s | evaluate s | other s "
          "| train images/s | test accuracy | torch wall / minicnn wall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i, row in enumerate(rows):
        ratio = ratios[i // 2] if row["engine"] == "torch" else None
        print("| " + " | ".join(cells(row, ratio)) + " |")
    if args.repeats > 1:
        walls = {e: statistics.median(r["wall_s"] for r in rows if r["engine"] == e)
                 for e in dict.fromkeys(r["engine"] for r in rows)}
        print(f"\nmedian wall over {args.repeats} runs: "
              + ", ".join(f"{e} {w:.2f} s" for e, w in walls.items())
              + (f"; median ratio {statistics.median(ratios):.2f}" if ratios else ""))
    print("\nother s = wall - train - evaluate: start-up, imports, data loading, and for "
          "minicnn the run folder's files (checkpoint, metrics, curves.png).")
    for row in rows:
        if row["engine"] == "torch":
            print(f"torch run {row['repeat']}: imports {row['imports_s']:.2f} s, of which "
                  f"{row['minicnn_import_s']:.2f} s importing minicnn (for the same data and "
                  f"initial weights; a plain PyTorch script would not pay it), load "
                  f"{row['load_s']:.2f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine, uptime=uptime, model=args.model,
                           threads=args.threads, repeats=args.repeats, pause=args.pause,
                           warmup=not args.no_warmup,
                           train_subset=args.train_subset, test_subset=args.test_subset,
                           torch_skipped=None if torch is not None else (
                               "--no-torch" if args.no_torch else "PyTorch not installed"),
                           rows=rows, ratios=ratios), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
