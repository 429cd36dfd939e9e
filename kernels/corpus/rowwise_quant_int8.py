"""Row-wise symmetric int8 quantisation (absmax per row), as for dynamic activation quantisation:
x (65536, 4096) bf16 -> q (65536, 4096) int8 and scale (65536,) fp32 with ``x ~= q * scale``,
``scale = max(absmax(row), 1e-8) / 127`` and ``q = clamp(floor(x * 127 / absmax + 0.5), -127, 127)``.

Each program takes ``BLOCK_M`` rows and walks them twice in chunks of ``BLOCK_N`` columns: the first pass
finds each row's absolute maximum, the second quantises and stores int8 (the second read of each 8 KB row
mostly hits L2). A 1-D grid of ``meta``: ``(cdiv(n_rows, BLOCK_M),)``.

Roofline floor: 512 MB read + 256 MB of int8 written + 256 KB of scales = 768 MB (0.18 ms at ~4.3 TB/s);
a few FLOP per element: memory-bound.

Variants:
- ``ModelNew`` (the start): one row per program in 512-column chunks with 4 warps, through the shared
  wrapper with the class attribute ``config``: 8 chunks per pass, 1 KB in flight per program.
- ``ModelNew_best``: the same wrapper and kernel with the sweep's best config.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ROWS = 65536
N_COLS = 4096

INTERPRET_SHAPES = dict(N_ROWS=37, N_COLS=300)
RTOL = 1e-3  # q may differ by one step where x * 127 / absmax lands within rounding of a half
# 4 x 4 x 4 = 64 configs; num_stages stays at Triton's default 3.
SWEEP_SPACE = dict(
    BLOCK_M=[1, 2, 4, 8],
    BLOCK_N=[512, 1024, 2048, 4096],
    num_warps=[2, 4, 8, 16],
)


class Model(nn.Module):
    """Reference: the same rounding rule in fp32 (or float64); returns ``(q, scale)``."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        h = x.to(torch.promote_types(x.dtype, torch.float32))
        absmax = h.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8)
        q = torch.floor(h * (127.0 / absmax) + 0.5).clamp(-127, 127).to(torch.int8)
        return q, (absmax / 127.0).squeeze(-1)


def get_inputs():
    return [torch.randn(N_ROWS, N_COLS).to(torch.bfloat16)]


def get_init_inputs():
    return []


def roofline():
    """DRAM bytes (x read once, int8 q and the scales written once) and FLOPs of one call."""
    return dict(bytes=N_ROWS * N_COLS * (2 + 1) + N_ROWS * 4, flops=4 * N_ROWS * N_COLS)


@triton.jit
def rowwise_quant_kernel(x_ptr, q_ptr, scale_ptr, n_rows, n_cols, stride_x, stride_q,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < n_rows
    rows64 = rows.to(tl.int64)
    absmax = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        mask = row_mask[:, None] & (cols < n_cols)[None, :]
        x = tl.load(x_ptr + rows64[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        absmax = tl.maximum(absmax, tl.max(tl.abs(x), axis=1))
    absmax = tl.maximum(absmax, 1e-8)
    inv = 127.0 / absmax
    for start in range(0, n_cols, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        mask = row_mask[:, None] & (cols < n_cols)[None, :]
        x = tl.load(x_ptr + rows64[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        q = tl.minimum(tl.maximum(tl.floor(x * inv[:, None] + 0.5), -127.0), 127.0)
        tl.store(q_ptr + rows64[:, None] * stride_q + cols[None, :], q.to(tl.int8), mask=mask)
    tl.store(scale_ptr + rows, absmax / 127.0, mask=row_mask)


def quantize_rows(x, *, BLOCK_M=1, BLOCK_N=512, num_warps=4):
    """Row-wise int8 quantisation of a 2-D tensor; returns ``(q, scale)``."""
    x = x.contiguous()
    n_rows, n_cols = x.shape
    q = torch.empty((n_rows, n_cols), device=x.device, dtype=torch.int8)
    scale = torch.empty(n_rows, device=x.device, dtype=torch.float32)
    grid = lambda meta: (triton.cdiv(n_rows, meta["BLOCK_M"]),)  # noqa: E731
    rowwise_quant_kernel[grid](
        x, q, scale, n_rows, n_cols, x.stride(0), q.stride(0),
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, num_warps=num_warps,
    )
    return q, scale


class ModelNew(nn.Module):
    """Start: one row per program, 512-column chunks, 4 warps."""

    config = dict(BLOCK_M=1, BLOCK_N=512, num_warps=4)

    def forward(self, x):
        return quantize_rows(x, **self.config)


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_M=1, BLOCK_N=2048, num_warps=4)  # FILLED FROM SWEEP: 0.1918 ms (H200 2026-11-30)

    def forward(self, x):
        return quantize_rows(x, **self.config)
