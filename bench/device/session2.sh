#!/usr/bin/env bash
# GPU session 2: record the example runs (baseline/improved fused, zoo), run the GPU tests.
# Carry .whl (pydantic wheels). Results come back as $OUT/runs.tgz, $OUT/gpu-tests.log.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=$PATH:/usr/local/cuda/bin
R=$OUT/runs; mkdir -p $R
t0=$(date +%s)
prof() { local name=$1; shift; echo "=== $name: $*"; timeout 240 python3 -m ncu_advisor profile "$@" --runs-dir $R/tmp-$name 2>&1 | tail -25
         mv $R/tmp-$name/* $R/$name 2>/dev/null; rmdir $R/tmp-$name 2>/dev/null; echo "[$(( $(date +%s) - t0 )) s]"; }
prof baseline examples/baseline/fused.py --variant ModelNew_seed000 --variant ModelNew_seed001 --variant ModelNew
prof improved kernels/fused.py --variant ModelNew_seed000 --variant ModelNew_seed001 --variant ModelNew
prof fused-steps kernels/fused.py --variant ModelNew_seed001_bm64 --variant ModelNew_seed001_bn128
for k in elementwise softmax matmul_epilogue spill; do prof $k kernels/$k.py; done
echo "=== gpu tests"
timeout $(( 560 - ($(date +%s) - t0) )) python3 -m pytest -q -m gpu tests/gpu -p no:cacheprovider > $OUT/gpu-tests.log 2>&1; echo "gpu tests rc=$?"; tail -15 $OUT/gpu-tests.log
cd $OUT && tar czf runs.tgz runs && rm -rf runs && ls -la
