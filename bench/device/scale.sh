#!/usr/bin/env bash
# Scale-out benchmark on a machine with two GPUs (device kind nvidia-h200-x2); see bench/bench_scale.py.
#   PART=a (default, ~6 min): ncu lock probe (two bare ncu on GPU 0 and GPU 1 at once vs one alone), timing-only
#          sweep of the 24-variant corpus set on 1 GPU then 2 GPUs, a Dask-executor smoke run on both GPUs.
#   PART=b (~7 min): profile with ncu, 12 variants: 2 GPUs --ncu-lock none, 2 GPUs --ncu-lock host, 1 GPU.
#   PART=b1 (~4 min): the 1-GPU ncu profile of part b alone.
#   PART=d (~3 min): tune's measurement workers (one per GPU) over 3 corpus spaces (216 configs), 1 then 2 GPUs.
#   PART=c (~4 min): the 24-variant profile with ncu on 2 GPUs (NCU_LOCK=none|host).
# Carry .whl (dask, distributed and their missing deps, pydantic): installed to /tmp/site when present.
# Writes $OUT/scale-$PART.json, $OUT/log-$PART.txt, $OUT/gpus.txt; prints the table last.
set -u
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PATH=$PATH:/usr/local/cuda/bin
PART=${PART:-a}
nvidia-smi --query-gpu=index,name,uuid,driver_version --format=csv,noheader | tee $OUT/gpus.txt
python3 -c "import distributed; print('distributed', distributed.__version__)" || echo "no dask: Dask smoke skipped"
timeout ${BENCH_TIMEOUT:-470} python3 bench/bench_scale.py $OUT --part $PART --max-seconds ${MAX_S:-420} \
  --ncu-lock ${NCU_LOCK:-none} > $OUT/log-$PART.txt 2>&1
echo "bench rc=$?"
grep -v "^INFO\|^[0-9-]* [0-9:,]* - distributed" $OUT/log-$PART.txt | tail -n 25
