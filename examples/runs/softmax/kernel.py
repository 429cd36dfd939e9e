"""Row softmax over a (32768, 4096) fp32 matrix: one read and one write of 512 MB each.

Each row (16 KB) fits in the registers of one program, so the tuned kernel reads every element once and
runs at the DRAM roofline. The mistuned variants break it in four different ways.

Rules each variant is designed to trigger (and why):
- ``ModelNew_w1`` (one row per program, BLOCK_SIZE = next_pow2(n_cols) = 4096, num_warps 1): 4096 floats
  over 32 threads = 128 live values per thread plus their exponentials. Designed to trigger *register
  pressure* (> 128 registers per thread; ptxas for sm_90a: 177, no spills) and *register-limited
  occupancy*: 65536 registers / (184 x 32) = 11 one-warp blocks per SM, 11 of 64 warps = 17% theoretical
  occupancy, with registers as the smallest ``launch__occupancy_limit_*``.
- ``ModelNew_grid16`` (16 programs, each loops over 2048 rows, BLOCK 4096, num_warps 8): only 16 of the
  132 SMs get work. Designed to trigger *grid smaller than SM count* and *latency-bound* (both SM and
  memory throughput far below peak) and *achieved occupancy << theoretical* (one 8-warp block on an SM
  that could hold 6 of them: 38 registers x 256 threads).
- ``ModelNew_tail`` (persistent grid of 304 programs, each loops over about 108 rows, BLOCK 4096,
  num_warps 32): with 1024-thread blocks at most 2 fit on an SM (ptxas: 27 registers, so threads are
  the limit), so the GPU holds 264 programs at once and 304 programs make 1.15 waves: the last 40
  programs run alone, each as long as a whole wave. Designed to trigger *tail effect* (waves per SM
  just above an integer).
- ``ModelNew`` (one row per program, BLOCK 4096, num_warps 16, 32768 programs): designed to trigger
  *memory-bound* (DRAM near peak) and *low L2 hit rate with heavy DRAM traffic*, and to keep register
  pressure, spills, grid-size and tail-effect rules quiet (ptxas: 25 registers, no spills; 4 blocks of
  16 warps per SM, registers and warps allowing the same, 100% theoretical occupancy). With 8 warps
  (38 registers) registers would allow 6 blocks against 8 by warps: register-limited, though only
  mildly.

Register counts above are ptxas -v figures for sm_90a from Triton 3.6 (compiled without a GPU); the
ncu runs on the GPU machine are the ground truth.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ROWS = 32768
N_COLS = 4096
TAIL_GRID = 304  # 1.15 x (132 SMs x 2 blocks of 1024 threads)


class Model(nn.Module):
    """Reference: ``torch.softmax(x, dim=-1)``."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.softmax(x, dim=-1)


def get_inputs():
    return [torch.randn(N_ROWS, N_COLS)]


def get_init_inputs():
    return []


@triton.jit
def softmax_rows_kernel(
    x_ptr, out_ptr,
    n_rows, n_cols,
    stride_x_row, stride_out_row,
    BLOCK_SIZE: tl.constexpr,
):
    # Programs stride over the rows: with grid == n_rows this is one row per program.
    row_start = tl.program_id(0)
    row_step = tl.num_programs(0)
    offs = tl.arange(0, BLOCK_SIZE)
    mask = offs < n_cols
    for row in range(row_start, n_rows, row_step):
        x = tl.load(x_ptr + tl.cast(row, tl.int64) * stride_x_row + offs, mask=mask, other=-float("inf"))
        x = x - tl.max(x, axis=0)
        e = tl.exp(x)
        y = e / tl.sum(e, axis=0)
        tl.store(out_ptr + tl.cast(row, tl.int64) * stride_out_row + offs, y, mask=mask)


def softmax_rows(x, *, grid_size=None, BLOCK_SIZE=None, num_warps=8):
    """Softmax over the last dimension of a 2-D tensor.

    Args:
        x: (rows, cols) tensor.
        grid_size: number of programs (each loops over rows); default one program per row.
        BLOCK_SIZE: columns loaded per row; default ``triton.next_power_of_2(cols)`` (must be >= cols).
        num_warps: warps per program.
    """
    x = x.contiguous()
    n_rows, n_cols = x.shape
    block_size = BLOCK_SIZE or triton.next_power_of_2(n_cols)
    if block_size < n_cols:
        raise ValueError(f"BLOCK_SIZE {block_size} < n_cols {n_cols}: one program must hold a whole row")
    out = torch.empty_like(x)
    grid = (min(grid_size or n_rows, n_rows),)
    softmax_rows_kernel[grid](
        x, out, n_rows, n_cols, x.stride(0), out.stride(0), BLOCK_SIZE=block_size, num_warps=num_warps,
    )
    return out


class ModelNew_w1(nn.Module):
    """Mistuned: one row per program in a single warp (128 values per thread: 177 registers)."""

    config = dict(num_warps=1)

    def forward(self, x):
        return softmax_rows(x, **self.config)


class ModelNew_grid16(nn.Module):
    """Mistuned: 16 programs loop over all rows (grid far smaller than the 132 SMs)."""

    config = dict(grid_size=16, num_warps=8)

    def forward(self, x):
        return softmax_rows(x, **self.config)


class ModelNew_tail(nn.Module):
    """Mistuned: a persistent grid of 1.15 waves (304 programs of 1024 threads, 2 fit per SM)."""

    config = dict(grid_size=TAIL_GRID, num_warps=32)

    def forward(self, x):
        return softmax_rows(x, **self.config)


class ModelNew(nn.Module):
    """Tuned: one row per program, BLOCK_SIZE = next_pow2(n_cols), 16 warps."""

    config = dict(num_warps=16)

    def forward(self, x):
        return softmax_rows(x, **self.config)
