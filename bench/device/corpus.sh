#!/usr/bin/env bash
# GPU machine (cwd = the repository root): the exhaustive config sweep of kernels/corpus/ and the zoo, the
# ground truth for issues 13 and 14. Writes 4 files to $OUT: env.txt, sweep.jsonl (one line per measured
# config), sweep.log (progress, worker restarts) and table.txt (start vs best per kernel, printed last).
# Wall time: at most LIMIT_S + GRACE_S + ~20 s (7.5 minutes with the defaults). Needs only the image's
# python3 with torch and triton (no pip install). Afterwards, on the development machine:
#   python bench/sweep_corpus.py --fill <files_at>/sweep.jsonl    # writes each ModelNew_best.config
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/corpus-out}
mkdir -p "$OUT"
LIMIT_S=${LIMIT_S:-390}   # no new config starts after this many seconds of sweeping
GRACE_S=${GRACE_S:-40}    # then the config in flight may finish before the worker is stopped
BUDGET_S=${BUDGET_S:-25}  # per kernel file
JOBS=${JOBS:-8}           # compile-ahead processes (16 CPUs there)

{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,memory.total --format=csv
  python3 -c 'import sys, torch, triton, numpy
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "triton", triton.__version__, "numpy", numpy.__version__)
p = torch.cuda.get_device_properties(0)
print(p.name, p.multi_processor_count, "SMs", round(p.total_memory / 2**30), "GiB")'
  echo "cpus $(nproc)"; free -g | head -2
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

timeout --kill-after=10 $((LIMIT_S + GRACE_S + 30)) python3 bench/sweep_corpus.py --out "$OUT/sweep.jsonl" --zoo \
  --deadline-s "$LIMIT_S" --grace-s "$GRACE_S" --budget-s "$BUDGET_S" --jobs "$JOBS" --warmup-ms 10 --rep-ms 40 \
  ${EXTRA_ARGS:-} > "$OUT/sweep.log" 2>&1
echo "sweep rc=$? ($(grep -c '"type": "config"' "$OUT/sweep.jsonl" 2>/dev/null) config records)"
grep -E "^sweep:" "$OUT/sweep.log" | tail -5
python3 bench/sweep_corpus.py --table "$OUT/sweep.jsonl" | tee "$OUT/table.txt"
