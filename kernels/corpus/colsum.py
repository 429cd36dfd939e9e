"""Column sums of a tall matrix: ``x.sum(dim=0)``, x (32768, 4096) fp32, out (4096,) fp32.

A 2-D grid of ``meta``: axis 0 takes ``BLOCK_N`` columns, axis 1 splits the rows into ``SPLIT_M`` ranges.
Each program walks its row range ``BLOCK_M`` rows at a time into a ``(BLOCK_M, BLOCK_N)`` fp32 accumulator,
reduces it over the rows and adds its partial sums into the zero-initialised output with ``tl.atomic_add``
(one atomic per column per program; with ``SPLIT_M = 1`` each column has a single writer).

Roofline floor: 512 MB read once (0.12 ms at ~4.3 TB/s), 16 KB written; one FLOP per element: memory-bound.
The number of programs is ``cdiv(4096, BLOCK_N) * SPLIT_M``, so the split decides whether 132 SMs get work.

Variants:
- ``ModelNew`` (the start): ``BLOCK_M=32, BLOCK_N=32, SPLIT_M=1`` as literal keywords at the launch site,
  default warps and stages: 128 programs for 132 SMs, each streaming 32768 rows of 128-byte row segments.
- ``ModelNew_best``: the same kernel with the sweep's best config from its class attribute ``config``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ROWS = 32768
N_COLS = 4096

INTERPRET_SHAPES = dict(N_ROWS=300, N_COLS=70)
RTOL = 1e-4  # fp32 sums of 32768 values, in a config-dependent order
# 3 x 4 x 3 x 2 = 72 configs; num_stages stays at Triton's default 3.
SWEEP_SPACE = dict(
    BLOCK_M=[16, 32, 64],
    BLOCK_N=[32, 64, 128, 256],
    SPLIT_M=[1, 8, 32],
    num_warps=[4, 8],
)


class Model(nn.Module):
    """Reference: ``x.sum(dim=0)``."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x.sum(dim=0)


def get_inputs():
    return [torch.randn(N_ROWS, N_COLS)]


def get_init_inputs():
    return []


def roofline():
    """DRAM bytes (x read once, the sums written) and FLOPs of one call."""
    return dict(bytes=N_ROWS * N_COLS * 4 + N_COLS * 4, flops=N_ROWS * N_COLS)


@triton.jit
def colsum_kernel(
    x_ptr, out_ptr, n_rows, n_cols, stride_row,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, SPLIT_M: tl.constexpr,
):
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < n_cols
    rows_per_split = tl.cdiv(n_rows, SPLIT_M)
    row_begin = tl.program_id(1) * rows_per_split
    row_end = tl.minimum(row_begin + rows_per_split, n_rows)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for r in range(row_begin, row_end, BLOCK_M):
        rows = r + tl.arange(0, BLOCK_M)
        mask = (rows < row_end)[:, None] & col_mask[None, :]
        acc += tl.load(x_ptr + rows.to(tl.int64)[:, None] * stride_row + cols[None, :], mask=mask, other=0.0)
    tl.atomic_add(out_ptr + cols, tl.sum(acc, axis=0), mask=col_mask)


def _grid(n_cols):
    return lambda meta: (triton.cdiv(n_cols, meta["BLOCK_N"]), meta["SPLIT_M"])


class ModelNew(nn.Module):
    """Start: 32 x 32 tiles, no row split (128 programs), literal launch keywords."""

    def forward(self, x):
        x = x.contiguous()
        n_rows, n_cols = x.shape
        out = torch.zeros(n_cols, device=x.device, dtype=torch.float32)
        colsum_kernel[_grid(n_cols)](x, out, n_rows, n_cols, x.stride(0), BLOCK_M=32, BLOCK_N=32, SPLIT_M=1)
        return out


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_M=64, BLOCK_N=256, SPLIT_M=32, num_warps=4)  # FILLED FROM SWEEP: 0.1351 ms (H200 2026-11-30)

    def forward(self, x):
        x = x.contiguous()
        n_rows, n_cols = x.shape
        out = torch.zeros(n_cols, device=x.device, dtype=torch.float32)
        colsum_kernel[_grid(n_cols)](x, out, n_rows, n_cols, x.stride(0), **self.config)
        return out
