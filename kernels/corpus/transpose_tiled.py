"""Tiled out-of-place transpose: ``x.t().contiguous()`` for x (16384, 8192) fp32.

Each program loads a ``(BLOCK_M, BLOCK_N)`` tile of x with coalesced reads along its rows and stores it at
the transposed position; the store's contiguous dimension is the tile's first, so the compiler moves the
tile through shared memory to coalesce the writes too. A 2-D grid of ``meta``:
``(cdiv(n_rows, BLOCK_M), cdiv(n_cols, BLOCK_N))``.

Roofline floor: a pure copy, 512 MB read + 512 MB written = 1.07 GB (0.25 ms at the ~4.3 TB/s the H200's
device-to-device copy reaches); no arithmetic.

Variants:
- ``ModelNew`` (the start): 32 x 32 tiles and 4 warps from module constants (``TILE_M``, ``TILE_N``,
  ``TILE_WARPS``): 131,072 programs of 4 KB each.
- ``ModelNew_best``: the same kernel with the sweep's best config from its class attribute ``config``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ROWS = 16384
N_COLS = 8192

# The start's launch configuration (used by ModelNew only).
TILE_M = 32
TILE_N = 32
TILE_WARPS = 4

INTERPRET_SHAPES = dict(N_ROWS=70, N_COLS=50)
RTOL = 0.0  # a copy: exact
# 4 x 4 x 4 = 64 configs; no loop, so num_stages is not swept.
SWEEP_SPACE = dict(
    BLOCK_M=[16, 32, 64, 128],
    BLOCK_N=[16, 32, 64, 128],
    num_warps=[1, 2, 4, 8],
)


class Model(nn.Module):
    """Reference: ``x.t().contiguous()``."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x.t().contiguous()


def get_inputs():
    return [torch.randn(N_ROWS, N_COLS)]


def get_init_inputs():
    return []


def roofline():
    """DRAM bytes (x read once, out written once) of one call; no arithmetic."""
    return dict(bytes=2 * N_ROWS * N_COLS * 4, flops=0)


@triton.jit
def transpose_kernel(x_ptr, out_ptr, n_rows, n_cols, stride_x, stride_out,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]
    tile = tl.load(x_ptr + rows.to(tl.int64)[:, None] * stride_x + cols[None, :], mask=mask)
    tl.store(out_ptr + cols.to(tl.int64)[None, :] * stride_out + rows[:, None], tile, mask=mask)


def transpose(x, **config):
    n_rows, n_cols = x.shape
    x = x.contiguous()
    out = torch.empty((n_cols, n_rows), device=x.device, dtype=x.dtype)
    grid = lambda meta: (triton.cdiv(n_rows, meta["BLOCK_M"]), triton.cdiv(n_cols, meta["BLOCK_N"]))  # noqa: E731
    transpose_kernel[grid](x, out, n_rows, n_cols, x.stride(0), out.stride(0), **config)
    return out


class ModelNew(nn.Module):
    """Start: 32 x 32 tiles, 4 warps, from module constants."""

    def forward(self, x):
        return transpose(x, BLOCK_M=TILE_M, BLOCK_N=TILE_N, num_warps=TILE_WARPS)


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_M=128, BLOCK_N=64, num_warps=2)  # FILLED FROM SWEEP: 0.2625 ms (H200 2026-11-30)

    def forward(self, x):
        return transpose(x, **self.config)
