"""Prefetch with real Triton compiles on the CPU (sm_90a target, no GPU): configurations handed to the pool
as a prefetch before they are requested are found compiled ("ready") when the batch asks for them, the
launch then loads them from Triton's cache, and a prefetch held before the first launch goes to the pool at
that launch. Needs a Python with torch and triton (this one, or NCU_ADVISOR_TORCH_PYTHON), as
tests/test_tune_compile_pool.py (whose stand-in driver this reuses)."""

from __future__ import annotations

from tests.test_tune_compile_pool import run_compile_script

BODY = """
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
    for key in list(pool.entries):
        pool.entries[key].future.result(300)
    batch = [{"id": "1", "config": cfg(128, 64)}, {"id": "2", "config": cfg(128, 32)}]
    ahead.request(batch)
    states = [ahead.wait(c["id"]) for c in batch]
    out["states"] = [s for _, s in states]
    before = cache_entries()
    jit.run(*args, grid=None, warmup=True, BLOCK_M=64, BLOCK_N=128, BLOCK_K=64, num_warps=4, num_stages=3)
    out["prefetched_new_entries"] = cache_entries() - before
    out["stats"] = dict(pool.stats)
    pool.close()
    print(json.dumps(out))
"""


def test_prefetched_configs_are_ready_when_requested_and_load_from_the_cache(tmp_path):
    out = run_compile_script(tmp_path, BODY)
    print(out)
    assert out["held"] == 3 and out["started_at_capture"] == 2  # two processes: two in flight, one queued
    assert out["states"][0] == "ready"  # prefetched: compiled before it was asked for
    assert out["states"][1] in ("waited", "own")  # not guessed: compiled on request, as before
    stats = out["stats"]
    assert stats["prefetch_started"] == 3 and stats["prefetch_used"] == 1 and stats["requested"] == 2
    assert out["prefetched_new_entries"] == 0  # loaded from Triton's cache, not compiled (no new entry)
