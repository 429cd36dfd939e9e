#!/usr/bin/env bash
# Device call of 2026-11-30 (second session), on nvidia-h200-x2, ~8 min:
#  1. at once: the "not profiled" recordings on GPU 0 and the profile GPU tests on GPU 1;
#  2. bench_scale part d (tune's measurement workers, 1 then 2 GPUs).
# Carry .whl. Outputs under $OUT; a short table last.
set -u
export PYTHONUNBUFFERED=1 NCU_ADVISOR_UNITS=catalogue PATH=$PATH:/usr/local/cuda/bin
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
( CUDA_VISIBLE_DEVICES=1 timeout 300 python3 -m pytest -m gpu tests/gpu -v -p no:cacheprovider \
    > $OUT/gpu-tests-profile.log 2>&1; echo "gpu tests rc=$?" >> $OUT/gpu-tests-profile.log ) &
TESTS=$!
CUDA_VISIBLE_DEVICES=0 bash bench/device/notprofiled.sh > $OUT/notprofiled.txt 2>&1
wait $TESTS
nvidia-smi --query-gpu=index,name,uuid,driver_version --format=csv,noheader > $OUT/gpus.txt
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" > $OUT/versions.txt 2>&1
timeout 300 python3 bench/bench_scale.py $OUT --part d --max-seconds 270 > $OUT/log-d.txt 2>&1
echo "bench d rc=$?"
echo "== not profiled"; cat $OUT/notprofiled.txt | tail -12
echo "== gpu tests"; grep -E "PASSED|FAILED|ERROR|passed|failed|rc=" $OUT/gpu-tests-profile.log | tail -8
echo "== scale d"; grep -v "^INFO\|^[0-9-]* [0-9:,]* - distributed" $OUT/log-d.txt | tail -12
