#!/usr/bin/env bash
# Every speed target of issue 28 in one go, on the CPU, each step's load average recorded:
#   1. bench.py: every trainable zoo model at batch 64 and 256, 2 threads, against PyTorch
#      (blocks protocol), with both engines' peak memory of a step; the C allocator keeps
#      freed memory, as the `minicnn` command sets it (both engines share the process);
#   2. the fast recipe: `minicnn train --recipe fast`, its training seconds, test accuracy
#      and the whole command's wall time;
#   3. epoch.py: one MNIST epoch end to end against the PyTorch script, lenet and fast_cnn.
# Usage: benchmarks/zoo.sh [OUT_DIR] [DATA_DIR]
#   OUT_DIR  where the logs and JSON go (default runs/zoo)
#   DATA_DIR the folder holding mnist/ (default $MINICNN_DATA, else /work/shared/data)
# Environment: PYTHON (default: python), THREADS (default 2), REPEATS (epoch.py's runs of
# each engine, default 1). About 15-25 minutes on the 2-core machine when it is quiet.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/zoo}"
DATA="${2:-${MINICNN_DATA:-/work/shared/data}}"
PYTHON="${PYTHON:-python}"
THREADS="${THREADS:-2}"
REPEATS="${REPEATS:-1}"
mkdir -p "$OUT"
export MPLBACKEND=Agg MINICNN_DATA="$DATA"
for var in OMP_NUM_THREADS OPENBLAS_NUM_THREADS MKL_NUM_THREADS NUMBA_NUM_THREADS \
           MINICNN_NUM_THREADS; do
    export "$var=$THREADS"
done

note() { echo "# $(date -u +%FT%TZ) $*; $(uptime)" | tee -a "$OUT/load.txt"; }

note "start"
"$PYTHON" -m minicnn train --recipe fast --data-dir "$DATA" --train-subset 256 \
    --test-subset 256 --out "$OUT/warmup_run" --no-progress > "$OUT/warmup.log" 2>&1 \
    || echo "warm-up run failed: see $OUT/warmup.log"    # Numba's cache, the file cache
rm -rf "$OUT/warmup_run"

note "bench.py: every model, batch 64 and 256, $THREADS threads"
"$PYTHON" benchmarks/bench.py --batch-sizes 64 256 --threads "$THREADS" --no-layers \
    --keep-freed-memory --markdown --json "$OUT/bench.json" 2>&1 | grep -v "^\[W\|USDT" | tee "$OUT/bench.log"

note "the fast recipe"
rm -rf "$OUT/fast_run"
start=$(date +%s.%N)
"$PYTHON" -m minicnn train --recipe fast --data-dir "$DATA" --out "$OUT/fast_run" \
    --no-progress 2>&1 | tee "$OUT/fast.log"
end=$(date +%s.%N)
"$PYTHON" - "$OUT/fast_run/metrics.jsonl" "$start" "$end" <<'EOF' | tee -a "$OUT/fast.log"
import json, sys
epoch = [json.loads(l) for l in open(sys.argv[1]) if '"epoch"' in l][-1]
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"fast recipe: test accuracy {100 * epoch['test_acc']:.2f}% (target 99%), "
      f"training {epoch['train_seconds']:.2f} s (target <= 6 s), "
      f"the whole command {wall:.2f} s wall (target < 9 s)")
EOF

for model in lenet fast_cnn; do
    note "epoch.py --model $model"
    "$PYTHON" benchmarks/epoch.py --model "$model" --threads "$THREADS" --repeats "$REPEATS" \
        --data-dir "$DATA" --json "$OUT/epoch_$model.json" 2>&1 | tee "$OUT/epoch_$model.log"
done
note "end"
echo "logs and JSON in $OUT (load averages: $OUT/load.txt)"
