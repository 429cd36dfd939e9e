"""Prefetch with real Triton compiles on the CPU (sm_90a target, no GPU): configurations handed to the pool
as a prefetch before they are requested are found compiled ("ready") when the batch asks for them, the
launch then loads them from Triton's cache, and a prefetch held before the first launch goes to the pool at
that launch. Needs a Python with torch and triton (this one, or NCU_ADVISOR_TORCH_PYTHON), as
tests/test_tune_compile_pool.py (whose stand-in driver this reuses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_tune_compile_pool import KERNEL

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys, time
from pathlib import Path

def main(path):
    import torch
    from triton.backends.compiler import GPUTarget
    from triton.runtime.driver import driver
    from ncu_advisor.collect.profile.child import load_module
    from ncu_advisor.collect.tune.ahead import AheadCompiler
    from ncu_advisor.collect.tune.compile_pool import CompilePool
    from ncu_advisor.collect.tune.pin import _jit_function

    class StandIn:
        def get_current_device(self): return 0
        def get_current_stream(self, device=None): return 0
        def get_current_target(self): return GPUTarget("cuda", 90, 32)
        def get_active_torch_device(self): return torch.device("cpu")
        def get_benchmarker(self): return None

    driver.set_active(StandIn())
    jit = _jit_function(load_module(path).mm)
    a, b, c = (torch.empty(256, 256, dtype=torch.float16) for _ in range(3))
    args = (a, b, c, 256, 256, 256)
    start = dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=64, num_warps=4, num_stages=3)
    pool = CompilePool(2, warm=str(path))
    ahead = AheadCompiler(pool, jit, path, "mm")
    def cfg(bn, bk):
        return {"params": {"BLOCK_M": 64, "BLOCK_N": bn, "BLOCK_K": bk}, "num_warps": 4, "num_stages": 3}
    guesses = [cfg(128, 64), cfg(32, 64), cfg(64, 32)]
    ahead.prefetch(guesses)  # before the first launch: held
    out = {"held": len(ahead.pending or [])}
    jit.run(*args, grid=None, warmup=True, **start)  # the start compiles in this process
    ahead.set_captured((args, {}))  # what the worker's first launch does: the held list goes to the pool
    out["started_at_capture"] = pool.stats["prefetch_started"]
    t0 = time.perf_counter()
    for key in list(pool.entries):
        pool.entries[key].future.result(300)
    out["prefetch_wall_s"] = time.perf_counter() - t0
    batch = [{"id": "1", "config": cfg(128, 64)}, {"id": "2", "config": cfg(128, 32)}]
    ahead.request(batch)
    states = [ahead.wait(c["id"]) for c in batch]
    out["states"] = [s for _, s in states]
    t0 = time.perf_counter()
    jit.run(*args, grid=None, warmup=True, BLOCK_M=64, BLOCK_N=128, BLOCK_K=64, num_warps=4, num_stages=3)
    out["prefetched_launch_s"] = time.perf_counter() - t0
    out["stats"] = dict(pool.stats)
    pool.close()
    print(json.dumps(out))

if __name__ == "__main__":
    main(Path(sys.argv[1]))
"""


def test_prefetched_configs_are_ready_when_requested_and_load_from_the_cache(tmp_path):
    python = os.environ.get("NCU_ADVISOR_TORCH_PYTHON") or sys.executable
    probe = subprocess.run([python, "-c", "import torch, triton, pandas"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("needs torch and triton (or NCU_ADVISOR_TORCH_PYTHON naming a Python that has them)")
    (tmp_path / "kern.py").write_text(KERNEL)
    (tmp_path / "check.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRITON_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run(
        [python, str(tmp_path / "check.py"), str(tmp_path / "kern.py")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(out)
    assert out["held"] == 3 and out["started_at_capture"] == 2  # two processes: two in flight, one queued
    assert out["states"][0] == "ready"  # prefetched: compiled before it was asked for
    assert out["states"][1] in ("waited", "own")  # not guessed: compiled on request, as before
    stats = out["stats"]
    assert stats["prefetch_started"] == 3 and stats["prefetch_used"] == 1 and stats["requested"] == 2
    assert out["prefetched_launch_s"] < 0.05  # loaded from Triton's cache, not compiled
