#!/usr/bin/env bash
# The GPU check in one 8-minute run, offline, in four stages (issue 27). Each step has its own
# time limit, writes its log and figures to OUT_DIR as it goes, and a step that fails or runs
# out of time does not stop the next; the summary (benchmarks/gpu_summary.py) comes last,
# also in OUT_DIR/summary.txt. Limits: 25 s install, then
#   stage 1 (about 45 s): versions (10 s), `minicnn doctor` (40 s: every layer on every
#            engine, the GPU's kernels compiled here), one lenet step GPU vs CPU (25 s)
#   stage 2: minicnn train --model lenet --epochs 2 --device gpu on MNIST (100 s): per-epoch
#            time and accuracy in OUT_DIR/lenet_run/metrics.jsonl, a line per epoch
#   stage 3: the GPU-parametrized tests (pytest -m gpu, 150 s) under `timeout -s INT`, so
#            pytest still prints its summary and writes OUT_DIR/tests.xml (JUnit)
#   stage 4: bench.py against PyTorch CUDA on lenet, tiny_cnn, keras_cnn, fast_cnn at batch 64
#            and 256 (110 s), a row appended to OUT_DIR/bench.jsonl as each one finishes
# 460 s of limits in all. CuPy's and Numba's compiled kernels are cached under OUT_DIR.
#
# usage: benchmarks/gpu_check.sh [--dry-run] [OUT_DIR] [DATA_DIR]
#   OUT_DIR   default: $OUT when set, else runs/gpu_check (git-ignored)
#   DATA_DIR  a folder with mnist/ inside (or the four MNIST files); default .data
#             (git-ignored: copy MNIST there so that it travels with the working tree)
#   --dry-run no GPU: no install; the GPU steps run on the tests' CuPy stand-in
#             (tests/fake_cupy.py), training and the benchmark on the CPU on a subset, so
#             the script's plumbing is checked.
# PYTHON (default: python3) is the interpreter; the script may be run from anywhere. The
# install is `pip install --no-deps --no-build-isolation -e .` (no network); it needs
# setuptools >= 68 and, below setuptools 70.1, `wheel` (then: pip install wheel, or
# `pip install --no-deps -e .` where an index is reachable). Where it fails but minicnn is
# already importable (installed before), the stages still run.
set -u
DRY=0 SCALE=1
# the dry run checks plumbing, not speed: its time limits are 4x (a shared CPU is slow)
if [ "${1:-}" = "--dry-run" ]; then DRY=1 SCALE=4; shift; fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT_DIR=${1:-${OUT:-$REPO/runs/gpu_check}}
DATA_DIR=${2:-$REPO/.data}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd) || exit 2   # given paths: from here
if [ -d "$DATA_DIR" ]; then DATA_DIR=$(cd "$DATA_DIR" && pwd); fi
cd "$REPO" || exit 2
: > "$OUT_DIR/steps.tsv"
rm -f "$OUT_DIR/bench.jsonl" "$OUT_DIR/tests.xml"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
export CUPY_CACHE_DIR="$OUT_DIR/cache/cupy" NUMBA_CACHE_DIR="$OUT_DIR/cache/numba"

# step NAME LIMIT_S COMMAND...: run it under a time limit (SIGINT first: pytest and Python
# print what they have), log it, record exit status and milliseconds in steps.tsv.
step() {
    local name=$1 limit=$(( $2 * SCALE )) start rc
    shift 2
    echo "== $name (limit ${limit} s): $*"
    start=$(date +%s%N)
    timeout -s INT --kill-after=10 "$limit" "$@" > "$OUT_DIR/$name.log" 2>&1
    rc=$?
    LAST_RC=$rc
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(( ($(date +%s%N) - start) / 1000000 ))" \
        >> "$OUT_DIR/steps.tsv"                                   # name, exit status, ms
    tail -n 3 "$OUT_DIR/$name.log"
}

if [ "$DRY" = 1 ]; then
    echo "dry run: no install, the CuPy stand-in for the GPU; writing to $OUT_DIR"
    FAKE=(--fake-gpu)
    export MINICNN_FAKE_GPU=1                                      # the tests' stand-in
else
    FAKE=()
    step install 25 "$PY" -m pip install --no-deps --no-build-isolation -e .
    if [ "$LAST_RC" != 0 ]; then
        if grep -q "bdist_wheel\|No module named 'wheel'\|setuptools" "$OUT_DIR/install.log"; then
            echo "gpu_check.sh: the offline install needs setuptools>=68 and wheel:" \
                 "$PY -m pip install wheel (or setuptools>=70.1)" >&2
        fi
        "$PY" -c "import minicnn" 2>/dev/null || { echo "gpu_check.sh: minicnn cannot be" \
            "imported: see $OUT_DIR/install.log" >&2; exit 1; }
        echo "install failed, but minicnn is importable: going on"
    fi
fi

# -- stage 1: versions, doctor, one step ---------------------------------------------------
step environment 10 "$PY" benchmarks/gpu_summary.py --environment
if [ "$DRY" = 0 ] && ! grep -q "^gpu_unavailable_reason: None$" "$OUT_DIR/environment.log"; then
    echo "gpu_check.sh: no usable GPU: $(grep '^gpu_unavailable_reason' "$OUT_DIR/environment.log")" \
         "(--dry-run checks this script without one)" >&2
    exit 1
fi
if [ "$DRY" = 1 ]; then
    step doctor 40 "$PY" -c "import sys; sys.path.insert(0, 'tests'); import pytest, conftest; \
conftest.install_fake_gpu(pytest.MonkeyPatch()); from minicnn.cli.command import main; \
sys.exit(main(['doctor', '--repeats', '3']))"
else
    step doctor 40 "$PY" -m minicnn doctor --repeats 3
fi
step gpu_step 25 "$PY" benchmarks/gpu_step.py "${FAKE[@]}" --json "$OUT_DIR/gpu_step.json"

# -- stage 2: lenet, 2 epochs on MNIST ---------------------------------------------------------
if [ ! -d "$DATA_DIR" ] && [ -n "${MINICNN_DATA:-}" ]; then
    echo "no folder $DATA_DIR: using MINICNN_DATA=$MINICNN_DATA for MNIST"
    DATA_DIR=$MINICNN_DATA
fi
if [ -d "$DATA_DIR/mnist" ]; then
    export MINICNN_DATA=$DATA_DIR                                  # the real-data tests run too
fi
if [ "$DRY" = 1 ]; then
    TRAIN=(--epochs 1 --device cpu --train-subset 256 --test-subset 200)
else
    TRAIN=(--epochs 2 --device gpu)
fi
rm -rf "$OUT_DIR/lenet_run"
step train 100 "$PY" -m minicnn train --model lenet "${TRAIN[@]}" --seed 0 --no-progress \
    --data-dir "$DATA_DIR" --out "$OUT_DIR/lenet_run"

# -- stage 3: the GPU-parametrized tests -------------------------------------------------------
if [ "$DRY" = 1 ]; then TESTS=(tests/test_backend.py tests/test_fake_gpu.py); else TESTS=(tests); fi
step tests 150 "$PY" -m pytest -q -rs -m gpu -p no:cacheprovider \
    --junitxml "$OUT_DIR/tests.xml" "${TESTS[@]}"

# -- stage 4: minicnn against PyTorch ------------------------------------------------------------
if [ "$DRY" = 1 ]; then
    BENCH=(--device cpu --models tiny_cnn fast_cnn --batch-sizes 8 --block-steps 1 --pause 0)
else
    BENCH=(--device gpu --models lenet tiny_cnn keras_cnn fast_cnn --batch-sizes 64 256)
fi
step bench 110 "$PY" benchmarks/bench.py "${BENCH[@]}" --no-layers --markdown \
    --jsonl "$OUT_DIR/bench.jsonl" --json "$OUT_DIR/bench.json"

"$PY" benchmarks/gpu_summary.py "$OUT_DIR" | tee "$OUT_DIR/summary.txt"
