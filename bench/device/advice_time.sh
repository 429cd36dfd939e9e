#!/usr/bin/env bash
# Issue 13's recall step on one H200 (about 2 min, < 3.5 min with its deadline): the top proposal of each of the 18 recorded corpus and zoo
# files (runs.tgz of bench/results/2026-11-30-advice-h200 and -unseen) that the exhaustive sweep did not
# measure is written as a variant class of a copy of its kernel file (`bench_advice.py plan`, the project's
# tune --write machinery) and checked and timed against the start in the same process (`bench_advice.py
# time`); then `analyze` prints recall with those gains, the short table last. Carry .whl.
# Usage (repository root, GPU machine): OUT=/some/dir bash bench/device/advice_time.sh
set -u
OUT=${OUT:-/tmp/advice-time}
SWEEP=${SWEEP:-bench/results/2026-11-30-corpus-sweep-h200/sweep.jsonl}
TGZS=${TGZS:-"bench/results/2026-11-30-advice-h200/runs.tgz bench/results/2026-11-30-advice-h200-unseen/runs.tgz"}
REPS=${REPS:-5}
DEADLINE=${DEADLINE:-150}  # seconds from the start after which no further proposal is timed (skipped.txt)
export PYTHONUNBUFFERED=1 PATH=$PATH:/usr/local/cuda/bin
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
mkdir -p "$OUT/logs" /tmp/advice-time-runs/runs
T0=$(date +%s)
RUNS=/tmp/advice-time-runs/runs
for t in $TGZS; do
  [ -f "$t" ] || { echo "missing $t" >> "$OUT/logs/skipped.txt"; continue; }
  d=$(mktemp -d); tar xzf "$t" -C "$d" && cp -r "$d"/runs/* "$RUNS"/; rm -rf "$d"
done
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } > "$OUT/machine.txt" 2>&1
git rev-parse HEAD >> "$OUT/machine.txt" 2>/dev/null
python3 bench/bench_advice.py plan --runs "$RUNS" --sweep "$SWEEP" --variants-dir "$OUT/variants" \
  --out "$OUT/plan.jsonl" > "$OUT/logs/plan.log" 2>&1 || { echo "plan failed"; tail -20 "$OUT/logs/plan.log"; exit 1; }
echo "plan: $(wc -l < "$OUT/plan.jsonl") proposals outside the sweep, $(( $(date +%s) - T0 )) s" >> "$OUT/machine.txt"
for stem in $(python3 -c 'import json, sys; [print(json.loads(l)["stem"]) for l in open(sys.argv[1]) if l.strip()]' "$OUT/plan.jsonl"); do
  if [ $(( $(date +%s) - T0 )) -gt "$DEADLINE" ]; then echo "skipped (deadline): $stem" >> "$OUT/logs/skipped.txt"; continue; fi
  timeout 60 python3 bench/bench_advice.py time "$OUT/plan.jsonl" --only "$stem" --reps "$REPS" --out "$OUT/timed.jsonl" \
    >> "$OUT/logs/time.log" 2>&1 < /dev/null
  echo "$stem rc=$? at $(( $(date +%s) - T0 )) s" >> "$OUT/logs/time.log"
done
python3 bench/bench_advice.py analyze --runs "$RUNS" --sweep "$SWEEP" --timed "$OUT/timed.jsonl" \
  --out "$OUT/advice.json" > "$OUT/table.txt" 2>&1
echo "elapsed $(( $(date +%s) - T0 )) s" >> "$OUT/machine.txt"
echo "== time step (per proposal: rule, gain or error)"; grep -E "^[a-z_0-9]+: |rc=" "$OUT/logs/time.log" | tail -30
[ -f "$OUT/logs/skipped.txt" ] && cat "$OUT/logs/skipped.txt"
echo "== advice table (18 files; gain* = timed here)"; cat "$OUT/table.txt"
