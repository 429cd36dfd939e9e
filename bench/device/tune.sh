#!/usr/bin/env bash
# GPU machine with two GPUs (nvidia-h200-x2; cwd = the repository root; carry .whl: the image lacks pydantic):
# tune against an exhaustive sweep and random search for every zoo and corpus kernel (bench/bench_tune.py).
# The kernels are split in NGPU shards (every NGPU-th kernel) run at once, one per GPU
# (CUDA_VISIBLE_DEVICES=i), each writing $OUT/tune/gpuI/{bench_tune.json,bench_tune.md,log.txt,runs/}; then
# bench_tune.py --merge writes $OUT/tune/bench_tune.{json,md}, the one table printed last, and the shards'
# folders go into one $OUT/tune/shards.tgz (the device tool returns at most 8 files: gpu.txt, merge.log,
# bench_tune.json, bench_tune.md, shards.tgz).
# Time (one device command of at most 9.5 minutes): pip ~10 s + the shards (killed at BENCH_TIMEOUT=530 s;
# no new kernel starts after TOTAL_S=455 s; per kernel at most CAP_S=18 s of tune plus SWEEP_CAP_S=45 s of
# sweep: the 2026-11-30 two-H200 run took 37-59 s per kernel, 47 s on average, its sweeps 16-37 s) + merge
# and tar ~5 s. Shard 0 has 10 of the 19 kernels (~450 s at that run's pace), shard 1 has 9.
# SWEEP: bench/sweep_corpus.py's in-process JSONL, only a cross-check of the fresh sweep's best.
# COMPILE_PROCS: compile-ahead processes of each worker (tune's and the sweep's; 2 shards x 8 of 32 cores).
# CPU rehearsal (no GPU, no .whl): PY=/path/to/python-with-torch TRITON_INTERPRET=1 KERNELS=a,b,c
#   EXTRA_ARGS="--device cpu --reps 2 --warmup-ms 1 --rep-ms 2" COMPILE_PROCS=0 bash bench/device/tune.sh
set -u
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
if [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PATH=$PATH:/usr/local/cuda/bin
OUT=${OUT:-/tmp/tune-out}
NGPU=${NGPU:-2}
SWEEP=${SWEEP:-bench/results/2026-11-30-corpus-sweep-h200/sweep.jsonl}
mkdir -p "$OUT/tune"
nvidia-smi --query-gpu=index,name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/tune/gpu.txt" \
  || echo "no nvidia-smi (a CPU rehearsal?)" | tee "$OUT/tune/gpu.txt"
SWEEP_ARGS=()
[ -f "$SWEEP" ] && SWEEP_ARGS=(--sweep "$SWEEP")
pids=()
for ((i = 0; i < NGPU; i++)); do
  part="$OUT/tune/gpu$i"
  mkdir -p "$part"
  CUDA_VISIBLE_DEVICES=$i TRITON_CACHE_DIR=/tmp/triton-cache-gpu$i \
    timeout --kill-after=10 "${BENCH_TIMEOUT:-530}" "$PY" bench/bench_tune.py "$part" --shard "$i/$NGPU" \
    --total-s "${TOTAL_S:-455}" --cap-s "${CAP_S:-18}" --sweep-cap-s "${SWEEP_CAP_S:-45}" \
    --reps 3 --warmup-ms 10 --rep-ms 40 --compile-procs "${COMPILE_PROCS:-8}" \
    ${KERNELS:+--kernels "$KERNELS"} "${SWEEP_ARGS[@]}" ${EXTRA_ARGS:-} > "$part/log.txt" 2>&1 &
  pids+=($!)
done
for ((i = 0; i < NGPU; i++)); do
  wait "${pids[$i]}"
  echo "gpu$i bench rc=$? ($(grep -E '^bench wall' "$OUT/tune/gpu$i/log.txt" || echo 'no bench wall line: killed?'))"
done
"$PY" bench/bench_tune.py "$OUT/tune" --merge "$OUT"/tune/gpu*/bench_tune.json > "$OUT/tune/merge.log" 2>&1
echo "merge rc=$?"
shards=()
for ((i = 0; i < NGPU; i++)); do shards+=("gpu$i"); done
tar czf "$OUT/tune/shards.tgz" -C "$OUT/tune" "${shards[@]}" && (cd "$OUT/tune" && rm -rf "${shards[@]}")
cat "$OUT/tune/bench_tune.md"
