#!/usr/bin/env bash
# GPU session 4b: tune with ncu and --write on a copy of the matmul zoo file, profile of the written class with
# --profile-reference, then the GPU test suites (profile and tune).
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=$PATH:/usr/local/cuda/bin
mkdir -p $OUT/w && cp kernels/matmul_epilogue.py $OUT/w/matmul_epilogue.py
timeout 240 python3 -m ncu_advisor tune $OUT/w/matmul_epilogue.py --variant ModelNew_tile16_w1_s1 --budget 5 --write \
  --runs-dir $OUT/w/runs > $OUT/w/tune.log 2>&1; echo "tune rc=$?"; tail -25 $OUT/w/tune.log | cut -c1-200
grep -n "class ModelNew_tile16_w1_s1_tuned" -A4 $OUT/w/matmul_epilogue.py
timeout 150 python3 -m ncu_advisor profile $OUT/w/matmul_epilogue.py --variant ModelNew_tile16_w1_s1_tuned \
  --profile-reference --runs-dir $OUT/w/runs > $OUT/w/profile.log 2>&1; echo "profile rc=$?"; tail -12 $OUT/w/profile.log | cut -c1-200
timeout 170 python3 -m pytest -q -m gpu tests/gpu tests/test_tune_gpu.py -p no:cacheprovider > $OUT/gpu-tests.log 2>&1
echo "gpu tests rc=$?"; tail -4 $OUT/gpu-tests.log
tar czf $OUT/w.tgz -C $OUT w && rm -rf $OUT/w; ls $OUT
