#!/usr/bin/env bash
# Scale-out benchmark on a machine with two GPUs (device kind nvidia-h200-x2); see bench/bench_scale.py.
#   PART=ab1d (default, one device command under 9 min): part a without the lock probe and the Dask smoke
#          (timing only, 24 variants, 1 GPU then 2 GPUs, through the timing worker per GPU, each sweep with
#          an empty Triton cache), then b1 (1-GPU ncu profile of 12 variants), then d if it fits (tune sweep,
#          one queue across 3 files: 2 GPUs first, 1 GPU if it fits; else set against last session's 1 GPU).
#   PART=s (~7 min, one device command, nvidia-h200-x2): every profile figure in one run with a timeline each
#          (bench/scale_same_run.py): timing only, 24 variants, 1 GPU then 2 GPUs with an empty Triton cache,
#          both again with the warm cache the 1-GPU pass filled, ncu profile of PROFILE_VARIANTS (6) variants on
#          2 then 1 GPU (same-run ratio), the 2-GPU timing-only sweep with the fifo scheduler (A/B). Writes
#          $OUT/scale-s.json, $OUT/README-draft.md (every figure from the JSON), $OUT/log-s.txt, $OUT/s-runs.tgz (runs/: run directories without the .ncu-rep reports;
#          the timing workers' logs). MAX_S (420) / BENCH_TIMEOUT (440) as below. SCALE_ARGS: more arguments of
#          bench_scale.py (CPU rehearsal: "--python tests/fake_ncu/fake_python" with tests/fake_ncu on PATH).
#   PART=a (~6 min): ncu lock probe, the timing-only sweep 1 then 2 GPUs, a Dask-executor smoke run.
#   PART=b (~7 min): profile with ncu, 12 variants: 2 GPUs --ncu-lock none, 2 GPUs --ncu-lock host, 1 GPU.
#   PART=b1 (~4 min): the 1-GPU ncu profile of part b alone.
#   PART=d (~6 min): tune's measurement workers (one per GPU, one queue) over 3 corpus spaces, 1 then 2 GPUs.
#   PART=c (~4 min): the 24-variant profile with ncu on 2 GPUs (NCU_LOCK=none|host).
#   TIMING=process: part a's timing with a process per variant (the path before the timing worker).
# Cut at BENCH_TIMEOUT with SIGINT (Ctrl-C: the workers are killed, the JSON of the finished parts stays).
# Carry .whl (dask, distributed and their missing deps, pydantic): installed to /tmp/site when present.
# Writes $OUT/scale-<parts>.json, $OUT/log-$PART.txt, $OUT/gpus.txt, $OUT/versions.txt; prints the table last.
set -u
export PYTHONUNBUFFERED=1
WHEELS=${WHEELS:-.whl}  # the stand-in rehearsal (tests/test_scale_bench.py) points it elsewhere
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PATH=$PATH:/usr/local/cuda/bin
PART=${PART:-ab1d}
nvidia-smi --query-gpu=index,name,uuid,driver_version --format=csv,noheader | tee $OUT/gpus.txt
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" > $OUT/versions.txt 2>&1
EXTRA=""
[ "${TIMING:-worker}" = process ] && EXTRA="--process-per-variant"
if [ "$PART" = s ]; then
  WORK=$(mktemp -d /tmp/scale-s.XXXXXX)  # run directories, timing worker logs, Triton caches
  timeout -s INT -k 15 ${BENCH_TIMEOUT:-440} python3 bench/bench_scale.py $OUT --part s --max-seconds ${MAX_S:-420} \
    --profile-variants ${PROFILE_VARIANTS:-6} --scratch $WORK ${SCALE_ARGS:-} > $OUT/log-$PART.txt 2>&1
  RC=$?
  tar czf $OUT/s-runs.tgz --exclude='*.ncu-rep' -C $WORK runs $(cd $WORK && ls ncu-advisor-timing-gpu*.log 2>/dev/null) \
    || echo "tar of the run directories failed"
  rm -rf $WORK
  (exit $RC)
elif [ "$PART" = ab1d ]; then
  timeout -s INT -k 15 ${BENCH_TIMEOUT:-505} python3 bench/bench_scale.py $OUT --part a,b1,d --no-probe --no-dask \
    --d-two-first --max-seconds ${MAX_S:-490} $EXTRA > $OUT/log-$PART.txt 2>&1
else
  python3 -c "import distributed; print('distributed', distributed.__version__)" || echo "no dask: Dask smoke skipped"
  timeout -s INT -k 15 ${BENCH_TIMEOUT:-470} python3 bench/bench_scale.py $OUT --part $PART --max-seconds ${MAX_S:-420} \
    --ncu-lock ${NCU_LOCK:-none} $EXTRA > $OUT/log-$PART.txt 2>&1
fi
RC=$?
echo "bench rc=$RC"
grep -v "^INFO\|^[0-9-]* [0-9:,]* - distributed" $OUT/log-$PART.txt | tail -n 40
if [ $RC -ne 0 ]; then  # cut short: the table of what the JSON (written after each part) holds
  python3 -c "import glob, json, sys; sys.path.insert(0, 'bench'); from bench_scale import table
for f in glob.glob('$OUT/scale-*.json'): print(table(json.load(open(f))))"
fi
