#!/usr/bin/env bash
# Smoke run of `ncu-advisor profile` on the GPU machine. Carry .whl (pydantic wheels: the image lacks pydantic).
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=$PATH:/usr/local/cuda/bin
mkdir -p $OUT/runs
for f in "$@"; do
  echo "=== $f"; timeout 280 python3 -m ncu_advisor -v profile $f --runs-dir $OUT/runs --reps 3 2>&1 | tail -40
done
cd $OUT && tar czf runs.tgz runs && rm -rf runs && ls -la
