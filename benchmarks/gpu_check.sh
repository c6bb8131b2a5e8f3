#!/usr/bin/env bash
# The whole GPU check in one go, offline, in under 8 minutes (issue 17):
#   1. install the project (pip --no-deps --no-build-isolation -e .: no network needed)
#   2. record the environment (GPU, driver, CuPy, numba-cuda, PyTorch)
#   3. the whole test suite with CuPy present (every backend test runs on the GPU)
#   4. minicnn train --model lenet --epochs 2 --device gpu on the real MNIST
#   5. benchmarks/bench.py --device gpu: lenet, tiny_cnn, keras_cnn at batch 64 and 256
#   6. benchmarks/launch_overhead.py: numba.cuda launches against CuPy RawKernels
# Each step has its own time limit (45+170+110+90+35 s = 7.5 min at most), writes its log
# to OUT_DIR/<step>.log and does not stop the others; a short table is printed last
# (benchmarks/gpu_summary.py, also in OUT_DIR/summary.txt).
#
# usage: benchmarks/gpu_check.sh [--dry-run] [OUT_DIR] [DATA_DIR]
#   OUT_DIR   default: $OUT when set, else runs/gpu_check (git-ignored)
#   DATA_DIR  a folder with mnist/ inside (or the four MNIST files); default .data
#             (git-ignored: copy MNIST there so that it travels with the working tree)
#   --dry-run no GPU: skips the install, runs one test file, trains 1 epoch on a subset
#             on the CPU, benches tiny_cnn at batch 8 on the CPU and runs the launch
#             benchmark under the CUDA simulator, so the script's plumbing is checked.
# PYTHON (default: python) is the interpreter to use; the script may be run from anywhere.
set -u
DRY=0 SCALE=1
# the dry run checks plumbing, not speed: its time limits are 4x (a shared CPU is slow)
if [ "${1:-}" = "--dry-run" ]; then DRY=1 SCALE=4; shift; fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT_DIR=${1:-${OUT:-$REPO/runs/gpu_check}}
DATA_DIR=${2:-$REPO/.data}
PY=${PYTHON:-python}
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd) || exit 2   # given paths: from here
if [ -d "$DATA_DIR" ]; then DATA_DIR=$(cd "$DATA_DIR" && pwd); fi
cd "$REPO" || exit 2
: > "$OUT_DIR/steps.tsv"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1

# step NAME LIMIT_S COMMAND...: run it under a time limit, log it, record rc and seconds.
step() {
    local name=$1 limit=$(( $2 * SCALE )) start rc
    shift 2
    echo "== $name (limit ${limit} s): $*"
    start=$(date +%s%N)
    timeout --kill-after=5 "$limit" "$@" > "$OUT_DIR/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(( ($(date +%s%N) - start) / 1000000 ))" \
        >> "$OUT_DIR/steps.tsv"                                   # name, exit status, ms
    tail -n 3 "$OUT_DIR/$name.log"
}

if [ "$DRY" = 1 ]; then
    echo "dry run: no install, CPU and CUDA simulator only; writing to $OUT_DIR"
else
    step install 45 "$PY" -m pip install --no-deps --no-build-isolation -e .
fi

step environment 30 "$PY" benchmarks/gpu_summary.py --environment
if [ "$DRY" = 0 ] && ! grep -q "^gpu_unavailable_reason: None$" "$OUT_DIR/environment.log"; then
    echo "gpu_check.sh: no usable GPU: $(grep '^gpu_unavailable_reason' "$OUT_DIR/environment.log")" \
         "(--dry-run checks this script without one)" >&2
    exit 1
fi
if [ ! -d "$DATA_DIR" ] && [ -n "${MINICNN_DATA:-}" ]; then
    echo "no folder $DATA_DIR: using MINICNN_DATA=$MINICNN_DATA for MNIST"
    DATA_DIR=$MINICNN_DATA
fi
if [ -d "$DATA_DIR/mnist" ]; then
    export MINICNN_DATA=$DATA_DIR                                  # the real-data tests run too
fi

if [ "$DRY" = 1 ]; then
    step tests 170 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_backend.py
else
    step tests 170 "$PY" -m pytest -q -rs -p no:cacheprovider --junitxml "$OUT_DIR/tests.xml" tests
fi

if [ "$DRY" = 1 ]; then
    TRAIN=(--epochs 1 --device cpu --train-subset 256 --test-subset 200)
else
    TRAIN=(--epochs 2 --device gpu)
fi
rm -rf "$OUT_DIR/lenet_run"
step train 110 "$PY" -m minicnn train --model lenet "${TRAIN[@]}" --seed 0 --no-progress \
    --data-dir "$DATA_DIR" --out "$OUT_DIR/lenet_run"

if [ "$DRY" = 1 ]; then
    BENCH=(--device cpu --models tiny_cnn --batch-sizes 8 --block-steps 1 --pause 0 --no-layers)
else
    BENCH=(--device gpu --models lenet tiny_cnn keras_cnn --batch-sizes 64 256)
fi
step bench 90 "$PY" benchmarks/bench.py "${BENCH[@]}" --markdown --json "$OUT_DIR/bench.json"

if [ "$DRY" = 1 ]; then LAUNCH=(--dry-run); else LAUNCH=(); fi
step launch_overhead 35 "$PY" benchmarks/launch_overhead.py "${LAUNCH[@]}" \
    --json "$OUT_DIR/launch_overhead.json"

"$PY" benchmarks/gpu_summary.py "$OUT_DIR" | tee "$OUT_DIR/summary.txt"
