#!/usr/bin/env bash
# The GPU tests on nvidia-h200-x2 in one device call (< 5 min): tests/gpu (profile end to end, faults) on
# GPU 0 and tests/test_tune_gpu.py on GPU 1 at once (227 s and 80 s in their last runs). Carry .whl.
# Writes $OUT/gpu-tests-profile.log, $OUT/gpu-tests-tune.log, $OUT/gpus.txt, $OUT/versions.txt; the verdicts last.
set -u
export PYTHONUNBUFFERED=1 NCU_ADVISOR_UNITS=catalogue PATH=$PATH:/usr/local/cuda/bin
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=index,name,uuid,driver_version --format=csv,noheader > "$OUT/gpus.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" > "$OUT/versions.txt" 2>&1
( CUDA_VISIBLE_DEVICES=1 TRITON_CACHE_DIR=/tmp/tc1 timeout 400 python3 -m pytest -m gpu tests/test_tune_gpu.py -v \
    -p no:cacheprovider > "$OUT/gpu-tests-tune.log" 2>&1; echo "gpu tests rc=$?" >> "$OUT/gpu-tests-tune.log" ) &
TUNE=$!
CUDA_VISIBLE_DEVICES=0 TRITON_CACHE_DIR=/tmp/tc0 timeout 400 python3 -m pytest -m gpu tests/gpu -v -p no:cacheprovider \
  > "$OUT/gpu-tests-profile.log" 2>&1
echo "gpu tests rc=$?" >> "$OUT/gpu-tests-profile.log"
wait $TUNE
for f in profile tune; do
  echo "== $f"; grep -E "PASSED|FAILED|ERROR|passed|failed|rc=" "$OUT/gpu-tests-$f.log" | tail -8
done
