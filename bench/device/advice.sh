#!/usr/bin/env bash
# Issue 13's advice benchmark on one H200 (< 8 min): profile each corpus kernel's start and best with the
# default metric set (`ncu-advisor profile`), record `--set full` for start and best of a few kernels, time
# the top proposals that the sweep did not measure, and print bench/bench_advice.py's table last.
# Usage (repository root, GPU machine): OUT=/some/dir SWEEP=bench/results/<corpus sweep>.jsonl bash bench/device/advice.sh
set -u
OUT=${OUT:-/tmp/advice-out}
SWEEP=${SWEEP:-$(ls -t bench/results/*corpus-sweep*/sweep.jsonl 2>/dev/null | head -1)}
FULL_KERNELS=${FULL_KERNELS:-"rmsnorm_rows cross_entropy_vocab transpose_tiled"}
DEADLINE_PROFILE=${DEADLINE_PROFILE:-300}   # seconds of default-set profiling before the full-set step
mkdir -p "$OUT/runs" "$OUT/logs" "$OUT/full" "$OUT/tmp"
T0=$(date +%s)
# ModelNew_best must run the sweep's best: fill the classes' config from the sweep when the corpus still says so.
if grep -q "FILLED FROM SWEEP: not yet" kernels/corpus/*.py; then
  python3 bench/sweep_corpus.py --fill "$SWEEP" > "$OUT/logs/fill.log" 2>&1
fi
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; ncu --version | tail -1;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } > "$OUT/machine.txt" 2>&1
echo "sweep: $SWEEP" >> "$OUT/machine.txt"

# Every swept file (corpus and zoo) with the sweep's start and swept variants.
python3 bench/bench_advice.py variants "$SWEEP" > "$OUT/variants.tsv"
while IFS=$'\t' read -r f start best; do
  stem=$(basename "$f" .py)
  if [ $(( $(date +%s) - T0 )) -gt "$DEADLINE_PROFILE" ]; then echo "skipped (deadline): $stem" >> "$OUT/logs/skipped.txt"; continue; fi
  timeout 90 python3 -m ncu_advisor profile "$f" --variant "$start" --variant "$best" --reps 3 \
    --runs-dir "$OUT/tmp/$stem" > "$OUT/logs/$stem.profile.log" 2>&1 < /dev/null
  run=$(ls -d "$OUT/tmp/$stem"/*/ 2>/dev/null | head -1)
  [ -n "$run" ] && mv "$run" "$OUT/runs/$stem"
done < "$OUT/variants.tsv"

for stem in $FULL_KERNELS; do
  f=kernels/corpus/$stem.py
  [ -f "$f" ] || continue
  mkdir -p "$OUT/full/$stem"
  for v in ModelNew ModelNew_best; do
    timeout 60 ncu --set full --clock-control none --nvtx --nvtx-include "advice/" -o "$OUT/full/$stem/$v" -f \
      python3 bench/bench_advice.py run-variant "$f" "$v" > "$OUT/logs/$stem.$v.full.log" 2>&1
  done
done

python3 bench/bench_advice.py analyze --runs "$OUT/runs" --sweep "$SWEEP" --full "$OUT/full" --out "$OUT/advice-pass1.json" \
  > "$OUT/table-pass1.txt" 2>&1
# Proposals outside the swept space: each written as a variant class of a copy of its kernel file and timed
# against the start in the same process (bench/advice_time.py).
python3 bench/bench_advice.py plan --runs "$OUT/runs" --sweep "$SWEEP" --variants-dir "$OUT/variants" \
  --out "$OUT/plan.jsonl" > "$OUT/logs/plan.log" 2>&1
for stem in $(python3 -c 'import json, sys; [print(json.loads(l)["stem"]) for l in open(sys.argv[1]) if l.strip()]' "$OUT/plan.jsonl"); do
  timeout 90 python3 bench/bench_advice.py time "$OUT/plan.jsonl" --only "$stem" --out "$OUT/timed.jsonl" \
    >> "$OUT/logs/time.log" 2>&1 < /dev/null
done
echo "elapsed $(( $(date +%s) - T0 )) s" >> "$OUT/machine.txt"
python3 bench/bench_advice.py analyze --runs "$OUT/runs" --sweep "$SWEEP" --full "$OUT/full" --timed "$OUT/timed.jsonl" \
  --out "$OUT/advice.json" | tee "$OUT/table.txt"
