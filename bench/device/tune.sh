#!/usr/bin/env bash
# GPU machine (cwd = the repository root): tune against an exhaustive sweep and random search for every zoo
# and corpus kernel (bench/bench_tune.py), one H200, about 8 minutes; the table is printed last.
# Carry .whl (pydantic wheels: the image lacks pydantic), as for smoke.sh. Optional: SWEEP=path of
# bench/sweep_corpus.py's sweep.jsonl from an earlier run (its kernels are not swept again; carry it too).
# Writes to $OUT/tune: bench_tune.json (every trial and sweep timing), bench_tune.md (the table), log.txt,
# runs/ (tune's run directories), *-sweep.log (the sweep workers' logs), gpu.txt.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=$PATH:/usr/local/cuda/bin
OUT=${OUT:-/tmp/tune-out}
mkdir -p "$OUT/tune"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/tune/gpu.txt"
SWEEP_ARGS=()
[ -n "${SWEEP:-}" ] && [ -f "$SWEEP" ] && SWEEP_ARGS=(--sweep "$SWEEP")
# TOTAL_S: no new kernel starts after this; CAP_S: tune's time limit per kernel (the sweep's is 4x);
# COMPILE_PROCS: compile-ahead processes of both tune's and the sweep's worker (0: none)
timeout --kill-after=10 "${BENCH_TIMEOUT:-500}" python3 bench/bench_tune.py "$OUT/tune" \
  --total-s "${TOTAL_S:-420}" --cap-s "${CAP_S:-20}" --reps 3 --warmup-ms 10 --rep-ms 40 \
  --compile-procs "${COMPILE_PROCS:-8}" \
  ${KERNELS:+--kernels "$KERNELS"} "${SWEEP_ARGS[@]}" > "$OUT/tune/log.txt" 2>&1
echo "bench rc=$?"
tar czf "$OUT/tune/runs.tgz" -C "$OUT/tune" runs 2>/dev/null && rm -rf "$OUT/tune/runs"
grep -E "^bench wall" "$OUT/tune/log.txt"
cat "$OUT/tune/bench_tune.md"
