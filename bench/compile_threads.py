"""Does compiling ahead in threads buy anything? Compile 8 configs of a tl.dot kernel for sm_90a without a
GPU (a stand-in driver gives the target), each run in a fresh process with a fresh Triton cache:
``python bench/compile_threads.py T`` with T = 0 (plain loop), 1 or 2 threads under Triton 3.6's
``AsyncCompileMode`` (the worker's compile-ahead). Results: bench/results/2026-11-30-compile-threads-cpu.txt.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp()  # before triton is imported: nothing cached

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.runtime.driver import driver  # noqa: E402


class StandInDriver:
    """Just enough of a driver for the JIT to compile for sm_90a on a machine without a GPU."""

    def get_current_device(self) -> int:
        return 0

    def get_current_stream(self, device: int | None = None) -> int:
        return 0

    def get_current_target(self) -> Any:
        return GPUTarget("cuda", 90, 32)

    def get_active_torch_device(self) -> Any:
        return torch.device("cpu")

    def get_benchmarker(self) -> Any:
        return None


@triton.jit
def mm(a, b, c, M, N, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        x = tl.load(a + rm[:, None] * K + (k + rk)[None, :])
        y = tl.load(b + (k + rk)[:, None] * N + rn[None, :])
        acc += tl.dot(x, y)
    tl.store(c + rm[:, None] * N + rn[None, :], acc.to(tl.float16))


def main() -> None:
    threads = int(sys.argv[1])
    driver.set_active(StandInDriver())
    a, b, c = (torch.empty(256, 256, dtype=torch.float16) for _ in range(3))
    configs = [(bm, bn, bk) for bm in (64, 128) for bn in (64, 128) for bk in (32, 64)]

    def compile_all() -> None:
        for bm, bn, bk in configs:
            mm.run(
                a,
                b,
                c,
                256,
                256,
                256,
                BLOCK_M=bm,
                BLOCK_N=bn,
                BLOCK_K=bk,
                num_warps=4,
                num_stages=3,
                grid=None,
                warmup=True,
            )

    t0 = time.perf_counter()
    if threads <= 0:
        compile_all()
    else:
        from concurrent.futures import ThreadPoolExecutor

        from triton.runtime._async_compile import AsyncCompileMode

        with ThreadPoolExecutor(threads) as pool, AsyncCompileMode(pool):
            compile_all()
    seconds = round(time.perf_counter() - t0, 2)
    print(
        json.dumps({"threads": threads, "configs": len(configs), "seconds": seconds, "cpus": os.cpu_count()})
    )


if __name__ == "__main__":
    main()
