"""tune's measurement worker on an ``@triton.autotune`` kernel whose call site also passes a tuned constexpr
as a keyword (``BLOCK_N=next_power_of_2(n_cols)``, as kernels/corpus/layernorm_rows.py does).

On the H200 (bench/results/2026-11-30-tune-h200x2-s3, shards.tgz: layernorm_rows-sweep.log) every pinned
config that set BLOCK_N failed with "got multiple values for keyword argument 'BLOCK_N'": the pinned Config
and the call site both passed it. The pin now drops the call site's value of a keyword the pinned Config
sets. Run by Triton's CPU interpreter in a Python with torch and triton (this one, or
``NCU_ADVISOR_TORCH_PYTHON``); else it skips. Run as a script it prints the JSON the test reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.test_tune_interpret import run_interpreted

ROOT = Path(__file__).resolve().parents[1]

KERNEL = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ROWS, N_COLS = 6, 50


@triton.autotune(
    configs=[triton.Config({"BLOCK_M": 1}, num_warps=4), triton.Config({"BLOCK_M": 2}, num_warps=4)],
    key=["n_rows", "n_cols"],
)
@triton.jit
def row_scale_kernel(x_ptr, out_ptr, n_rows, n_cols, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offs = rows[:, None] * n_cols + cols[None, :]
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2.0, mask=mask)


class Model(nn.Module):
    def forward(self, x):
        return x * 2.0


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        n_rows, n_cols = x.shape
        grid = lambda meta: (triton.cdiv(n_rows, meta["BLOCK_M"]),)  # noqa: E731
        row_scale_kernel[grid](x, out, n_rows, n_cols, BLOCK_N=triton.next_power_of_2(n_cols))
        return out


def get_inputs():
    return [torch.randn(N_ROWS, N_COLS)]


def get_init_inputs():
    return []
'''


def measure_main(work: Path) -> dict:
    from ncu_advisor.collect.tune.backend import WorkerBackend
    from ncu_advisor.collect.tune.session import plan_tune
    from ncu_advisor.collect.tune.worker import MeasureWorker, WorkerOptions, worker_command

    path = work / "row_scale.py"
    path.write_text(KERNEL)
    plan = plan_tune(path, "ModelNew")
    options = WorkerOptions(reps=1, device="cpu", timeout_s=300)
    argv = worker_command(path, plan.variant, plan.kernel, options)
    worker = MeasureWorker(argv, options, log_path=work / "w.log")
    backend = WorkerBackend(worker, plan.kernel, work)
    try:
        start = plan.start
        configs = [start, start.replace({"BLOCK_M": 2, "BLOCK_N": 64}), start.replace({"BLOCK_N": 128})]
        return {"results": [[m.status, m.reason] for m in backend.measure_many(configs)]}
    finally:
        backend.stop()


def test_autotuned_kernel_with_a_call_site_keyword_is_pinned(tmp_path: Path) -> None:
    results_json = run_interpreted(Path(__file__).resolve(), str(tmp_path), timeout=600)
    results = results_json["results"]
    assert [status for status, _ in results] == ["ok", "ok", "ok"], results


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(measure_main(Path(sys.argv[1]))))
