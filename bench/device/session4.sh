#!/usr/bin/env bash
# GPU session 4: tune efficacy for all five kernels with NA311-NA313 (bench_tune.py), then the tune GPU tests.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=$PATH:/usr/local/cuda/bin
KERNELS=${KERNELS:-seed001,matmul,elementwise,softmax,spill}
mkdir -p $OUT/tune
[ -d "${PREVIOUS:-/nonexistent}" ] && cp "$PREVIOUS"/bench_tune.json $OUT/tune/ 2>/dev/null
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/tune/gpu.txt
timeout ${BENCH_TIMEOUT:-540} python3 bench/bench_tune.py $OUT/tune --kernels $KERNELS --max-seconds ${MAX_S:-420} > $OUT/tune/log.txt 2>&1
echo "bench rc=$?"
grep -E "^\| (seed001|matmul|elementwise|softmax|spill) \|" $OUT/tune/bench_tune.md | cut -c1-260
