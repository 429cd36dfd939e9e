#!/usr/bin/env bash
# The 10 swept files bench/device/advice.sh skipped on 2026-11-30 (deadline; skipped.txt there), profiled the
# same way (start and sweep-best, default metric set) so precision/recall/direction cover them too (issue 13).
# No --set full step. About 40 s per file: < 7.5 min. Table printed last.
# Usage (repository root, GPU machine): OUT=/some/dir bash bench/device/advice_rest.sh
set -u
OUT=${OUT:-/tmp/advice-rest}
SWEEP=${SWEEP:-bench/results/2026-11-30-corpus-sweep-h200/sweep.jsonl}
STEMS=${STEMS:-"rmsnorm_rows rotary_embedding rowwise_quant_int8 scatter_add_rows transpose_tiled linear_bias_gelu elementwise softmax spill matmul_epilogue"}
DEADLINE=${DEADLINE:-420}
mkdir -p "$OUT/runs" "$OUT/logs" "$OUT/tmp"
T0=$(date +%s)
if grep -q "FILLED FROM SWEEP: not yet" kernels/corpus/*.py; then
  python3 bench/sweep_corpus.py --fill "$SWEEP" > "$OUT/logs/fill.log" 2>&1
fi
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; ncu --version | tail -1; } > "$OUT/machine.txt" 2>&1
python3 bench/bench_advice.py variants "$SWEEP" > "$OUT/variants.tsv"
for want in $STEMS; do
  line=$(awk -F'\t' -v s="$want" '{n=$1; sub(/.*\//, "", n); sub(/\.py$/, "", n); if (n == s) print}' "$OUT/variants.tsv" | head -1)
  [ -n "$line" ] || { echo "not in the sweep: $want" >> "$OUT/logs/skipped.txt"; continue; }
  IFS=$'\t' read -r f start best <<< "$line"
  if [ $(( $(date +%s) - T0 )) -gt "$DEADLINE" ]; then echo "skipped (deadline): $want" >> "$OUT/logs/skipped.txt"; continue; fi
  timeout 70 python3 -m ncu_advisor profile "$f" --variant "$start" --variant "$best" --reps 3 \
    --runs-dir "$OUT/tmp/$want" > "$OUT/logs/$want.profile.log" 2>&1 < /dev/null
  run=$(ls -d "$OUT/tmp/$want"/*/ 2>/dev/null | head -1)
  [ -n "$run" ] && mv "$run" "$OUT/runs/$want"
done
tar czf "$OUT/runs.tgz" -C "$OUT" runs
python3 bench/bench_advice.py analyze --runs "$OUT/runs" --sweep "$SWEEP" --out "$OUT/advice.json" 2>&1 | tee "$OUT/table.txt"
