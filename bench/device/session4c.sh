#!/usr/bin/env bash
# GPU session 4c: the GPU test suites (profile end to end, faults, tune) after the direct reader and NA311-NA313.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=$PATH:/usr/local/cuda/bin
timeout 560 python3 -m pytest -v -m gpu tests/gpu tests/test_tune_gpu.py -p no:cacheprovider > $OUT/gpu-tests.log 2>&1
echo "gpu tests rc=$?"; grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed" $OUT/gpu-tests.log | tail -12
