"""Fused residual add + RMSNorm, as between transformer blocks: ``h = x + residual`` (kept as the next
residual, bf16) and ``y = h / sqrt(mean(h^2) + eps) * weight``, for x and residual (16384, 5120) bf16 and a
5120-wide fp32 weight. Returns ``(y, h)``. 5120 is not a power of two, so every config masks a tail.

One program per row (grid ``(n_rows,)``, fixed, independent of the block size), two passes in chunks of
``BLOCK_SIZE``: the first adds, stores h (bf16) and accumulates the sum of squares in fp32; the second
re-reads x and residual (20 KB per row, mostly from L2; reading h back instead would need a barrier between
the threads that stored it and those that load it), recomputes h, normalises, scales and stores y.

Roofline floor: 2 x 168 MB read + 2 x 168 MB written = 671 MB (0.16 ms at ~4.3 TB/s); a few FLOP per
element: memory-bound.

Variants:
- ``ModelNew`` (the start): 256-column chunks, 4 warps, ``num_stages=1``, through the shared wrapper with
  the class attribute ``config``: 20 chunks per pass, 512 bytes in flight per program and tensor.
- ``ModelNew_best``: the same wrapper and kernel with the sweep's best config.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ROWS = 16384
HIDDEN = 5120
EPS = 1e-5

INTERPRET_SHAPES = dict(N_ROWS=5, HIDDEN=300)
RTOL = 1e-2
# 6 x 5 x 2 = 60 configs.
SWEEP_SPACE = dict(
    BLOCK_SIZE=[256, 512, 1024, 2048, 4096, 8192],
    num_warps=[1, 2, 4, 8, 16],
    num_stages=[1, 2],
)


class Model(nn.Module):
    """Reference: the add in the input dtype, then RMSNorm of h in fp32 (or float64)."""

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(hidden_size))
        self.eps = eps

    def forward(self, x, residual):
        h = x + residual
        hf = h.to(torch.promote_types(h.dtype, torch.float32))
        y = hf * torch.rsqrt(hf.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight
        return y.to(x.dtype), h


def get_inputs():
    return [torch.randn(N_ROWS, HIDDEN).to(torch.bfloat16), torch.randn(N_ROWS, HIDDEN).to(torch.bfloat16)]


def get_init_inputs():
    return [HIDDEN, EPS]


def roofline():
    """DRAM bytes (x and residual read once, y and h written once) and FLOPs of one call."""
    return dict(bytes=4 * N_ROWS * HIDDEN * 2 + HIDDEN * 4, flops=5 * N_ROWS * HIDDEN)


@triton.jit
def add_rmsnorm_kernel(x_ptr, res_ptr, w_ptr, y_ptr, h_ptr, n_cols, stride_row, eps,
                       BLOCK_SIZE: tl.constexpr):
    # All four (rows, n_cols) tensors are contiguous with the same row stride.
    row_offset = tl.program_id(0).to(tl.int64) * stride_row
    acc = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        mask = cols < n_cols
        x = tl.load(x_ptr + row_offset + cols, mask=mask, other=0.0).to(tl.float32)
        r = tl.load(res_ptr + row_offset + cols, mask=mask, other=0.0).to(tl.float32)
        h = (x + r).to(h_ptr.dtype.element_ty)
        tl.store(h_ptr + row_offset + cols, h, mask=mask)
        hf = h.to(tl.float32)
        acc += hf * hf
    rstd = tl.rsqrt(tl.sum(acc, axis=0) / n_cols + eps)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        mask = cols < n_cols
        x = tl.load(x_ptr + row_offset + cols, mask=mask, other=0.0).to(tl.float32)
        r = tl.load(res_ptr + row_offset + cols, mask=mask, other=0.0).to(tl.float32)
        h = (x + r).to(h_ptr.dtype.element_ty).to(tl.float32)
        w = tl.load(w_ptr + cols, mask=mask, other=0.0)
        tl.store(y_ptr + row_offset + cols, (h * rstd * w).to(y_ptr.dtype.element_ty), mask=mask)


def add_rmsnorm(x, residual, weight, eps, *, BLOCK_SIZE=256, num_warps=4, num_stages=1):
    """``(rmsnorm(x + residual) * weight, x + residual)`` for contiguous 2-D tensors of one shape."""
    x, residual = x.contiguous(), residual.contiguous()
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    h = torch.empty_like(x)
    add_rmsnorm_kernel[(n_rows,)](
        x, residual, weight, y, h, n_cols, x.stride(0), eps,
        BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps, num_stages=num_stages,
    )
    return y, h


class ModelNew(nn.Module):
    """Start: 256-column chunks, 4 warps, one stage."""

    config = dict(BLOCK_SIZE=256, num_warps=4, num_stages=1)

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x, residual):
        return add_rmsnorm(x, residual, self.weight, self.eps, **self.config)


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_SIZE=4096, num_warps=16, num_stages=2)  # FILLED FROM SWEEP: 0.1710 ms (H200 2026-11-30)

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x, residual):
        return add_rmsnorm(x, residual, self.weight, self.eps, **self.config)
