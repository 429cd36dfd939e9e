"""tune's measurement worker when its first command is already a pinned config (the bench's exhaustive
sweep, a sweep spread over GPUs): a module constant feeding the launch (``ROPE_BLOCK_H = 1`` passed as
``BLOCK_H=ROPE_BLOCK_H`` beside a grid computed from it) must follow the pin, so the grid follows too.

On the H200 (bench/results/2026-11-30-tune-h200x2-s3, shards.tgz: gpu1/rotary_embedding-sweep.log) the sweep
never measured the start first, the constant stayed at 1 and every BLOCK_H > 1 ran under the one-head grid
with masked-off programs (BLOCK_H 32: 1.04 ms; tune, which measures the start first, 0.14 ms). Run by
Triton's CPU interpreter in a Python with torch and triton (this one, or ``NCU_ADVISOR_TORCH_PYTHON``);
else it skips. Run as a script it prints the JSON the test reads.
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

N_TOKENS, N_HEADS, DIM = 3, 8, 16
HEADS_BLOCK_H = 1


@triton.jit
def scale_heads_kernel(x_ptr, out_ptr, n_heads, DIM: tl.constexpr, BLOCK_H: tl.constexpr):
    token = tl.program_id(0)
    heads = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    dims = tl.arange(0, DIM)
    mask = (heads < n_heads)[:, None]
    offs = token * n_heads * DIM + heads[:, None] * DIM + dims[None, :]
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2.0, mask=mask)


class Model(nn.Module):
    def forward(self, x):
        return x * 2.0


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        n_tokens, n_heads, dim = x.shape
        grid = (n_tokens, triton.cdiv(n_heads, HEADS_BLOCK_H))
        scale_heads_kernel[grid](x, out, n_heads, DIM=dim, BLOCK_H=HEADS_BLOCK_H)
        return out


def get_inputs():
    return [torch.randn(N_TOKENS, N_HEADS, DIM)]


def get_init_inputs():
    return []
'''


def measure_main(work: Path) -> dict:
    from ncu_advisor.collect.tune.session import plan_tune
    from ncu_advisor.collect.tune.worker import MeasureWorker, WorkerOptions, worker_command

    path = work / "scale_heads.py"
    path.write_text(KERNEL)
    plan = plan_tune(path, "ModelNew")
    options = WorkerOptions(reps=1, device="cpu", timeout_s=300)
    worker = MeasureWorker(worker_command(path, plan.variant, plan.kernel, options), options, work / "w.log")
    worker.start()
    try:
        for i, block_h in enumerate((4, 2)):  # never the start first
            worker.submit(str(i), plan.start.replace({"BLOCK_H": block_h}).as_dict())
        events = list(worker.results())
    finally:
        worker.stop()
    keep = ("id", "status", "correct", "launched_with", "fixed_grid_changed")
    return {"results": [{k: e.get(k) for k in keep} for e in events]}


def test_a_first_pinned_config_moves_the_module_constant_and_its_grid(tmp_path: Path) -> None:
    results_json = run_interpreted(Path(__file__).resolve(), str(tmp_path), timeout=600)
    results = sorted(results_json["results"], key=lambda r: r["id"])
    assert [(r["status"], r["correct"]) for r in results] == [("ok", True), ("ok", True)], results
    # the call site itself passed the pinned value: the constant moved, so the grid was computed from it
    assert [r["launched_with"]["BLOCK_H"] for r in results] == [4, 2], results
    assert all(not r["fixed_grid_changed"] for r in results), results


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(measure_main(Path(sys.argv[1]))))
