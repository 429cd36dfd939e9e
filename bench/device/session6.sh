#!/usr/bin/env bash
# Device call of 2026-11-30 (third session), on nvidia-h200-x2, < 10 min:
#  at once: the advice bench on the 10 swept corpus files not yet profiled (GPU 0, bench/device/advice_rest.sh)
#  and the tune GPU tests (GPU 1, tests/test_tune_gpu.py). Carry .whl. Outputs under $OUT; a short table last.
set -u
export PYTHONUNBUFFERED=1 NCU_ADVISOR_UNITS=catalogue PATH=$PATH:/usr/local/cuda/bin
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=index,name,uuid,driver_version --format=csv,noheader > "$OUT/gpus.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" > "$OUT/versions.txt" 2>&1
( CUDA_VISIBLE_DEVICES=1 TRITON_CACHE_DIR=/tmp/tc1 timeout 420 python3 -m pytest -m gpu tests/test_tune_gpu.py -v \
    -p no:cacheprovider > "$OUT/gpu-tests-tune.log" 2>&1; echo "gpu tests rc=$?" >> "$OUT/gpu-tests-tune.log" ) &
TESTS=$!
CUDA_VISIBLE_DEVICES=0 TRITON_CACHE_DIR=/tmp/tc0 OUT="$OUT/advice" DEADLINE=${DEADLINE:-430} \
  timeout 540 bash bench/device/advice_rest.sh > "$OUT/advice-rest.txt" 2>&1
echo "advice rc=$?" >> "$OUT/advice-rest.txt"
wait $TESTS
rm -rf "$OUT/advice/tmp"
tar czf "$OUT/advice-logs.tgz" -C "$OUT/advice" logs && rm -rf "$OUT/advice/logs" "$OUT/advice/runs"
echo "== tune gpu tests"; grep -E "PASSED|FAILED|ERROR|passed|failed|rc=" "$OUT/gpu-tests-tune.log" | tail -8
echo "== advice (10 unseen files)"; tail -22 "$OUT/advice-rest.txt"
