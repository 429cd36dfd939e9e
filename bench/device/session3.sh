#!/usr/bin/env bash
# GPU session 3: the one-pass NHWC conversion in ModelNew (timing vs torch.compile, correctness), the improved
# example run re-recorded, a run of the autotuned fault variant (NA205 fixture), the GPU fault test again.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=$PATH:/usr/local/cuda/bin
mkdir -p $OUT/runs
python3 - <<'PY' 2>&1 | tee $OUT/transpose.log
import torch, triton, triton.testing as tt, sys
sys.path.insert(0, ".")
from ncu_advisor.collect.profile.child import load_module
m = load_module(__import__("pathlib").Path("kernels/fused.py"))
x = torch.randn(64, 64, 256, 256, device="cuda")
ref = x.permute(0, 2, 3, 1).to(torch.float16).contiguous()
print("torch permute+to+contiguous ms", tt.do_bench(lambda: x.permute(0, 2, 3, 1).to(torch.float16).contiguous(), return_mode="median"))
for bp in (32, 64, 128, 256):
    for nw in (2, 4, 8):
        y = torch.empty(64, 256, 256, 64, device="cuda", dtype=torch.float16)
        f = lambda: m.nchw_to_nhwc_fp16_kernel[(triton.cdiv(65536, bp), 64)](x, y, 65536, C=64, BLOCK_P=bp, num_warps=nw)
        f(); torch.cuda.synchronize(); ok = torch.equal(y, ref)
        ms = tt.do_bench(f, return_mode="median")
        print(f"transpose BLOCK_P={bp} warps={nw}: {ms:.3f} ms, {(x.numel()*6)/ms/1e9:.2f} TB/s, exact={ok}")
PY
timeout 200 python3 bench/bench_kernels.py $OUT/kb --files kernels/fused.py --reps 5 > $OUT/kb.log 2>&1; tail -9 $OUT/kb.log
timeout 150 python3 -m ncu_advisor profile kernels/fused.py --variant ModelNew_seed000 --variant ModelNew_seed001 --variant ModelNew --runs-dir $OUT/runs/improved-tmp 2>&1 | tail -12
timeout 100 python3 -m ncu_advisor profile tests/fixtures/kernels/faults.py --variant ModelNew_tuned --variant ModelNew_good --runs-dir $OUT/runs/faults-tmp 2>&1 | tail -8
timeout 250 python3 -m pytest -q -m gpu tests/gpu -k faults -p no:cacheprovider > $OUT/gpu-tests.log 2>&1; echo "gpu tests rc=$?"; tail -5 $OUT/gpu-tests.log
cd $OUT && tar czf runs.tgz runs kb && rm -rf runs kb && ls
