"""RMSNorm over long rows: ``y = x / sqrt(mean(x^2) + eps) * weight``, x (16384, 8192) bf16, weight fp32.

One program per row (grid ``(n_rows,)``, a fixed tuple that does not depend on the block size). A row of
8,192 bf16 values is walked twice in chunks of ``BLOCK_SIZE`` columns: the first pass accumulates the sum of
squares in fp32, the second normalises, scales by the weight and stores bf16. The second pass re-reads the
row (16 KB), mostly from L2.

Roofline floor: 256 MB read + 256 MB written = 512 MB of DRAM traffic (0.12 ms at the H200's ~4.3 TB/s
copy bandwidth); 4 FLOP per element (67 MFLOP), so the kernel is memory-bound at any sane config.

Variants:
- ``ModelNew`` (the start, as an author writes it first): ``BLOCK_SIZE=128`` as a literal keyword at the
  launch site, Triton's defaults for everything else (num_warps 4, num_stages 3). 64 chunks per row per pass,
  each only 256 bytes: too little in flight per program to cover DRAM latency.
- ``ModelNew_best``: the same kernel with the best config of the exhaustive sweep over ``SWEEP_SPACE``
  (``bench/sweep_corpus.py``), read from its class attribute ``config``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ROWS = 16384
N_COLS = 8192
EPS = 1e-6

# Small odd shapes for the CPU interpreter (tests, the sweep's --interpret-smoke).
INTERPRET_SHAPES = dict(N_ROWS=5, N_COLS=300)
# Relative L2 error allowed against the reference evaluated in float64 (bf16 output).
RTOL = 1e-2
# The exhaustive sweep's space: 7 x 4 x 2 = 56 configs.
SWEEP_SPACE = dict(
    BLOCK_SIZE=[128, 256, 512, 1024, 2048, 4096, 8192],
    num_warps=[2, 4, 8, 16],
    num_stages=[1, 3],
)


class Model(nn.Module):
    """Reference: RMSNorm in fp32 (or float64), cast back to the input dtype."""

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(hidden_size))
        self.eps = eps

    def forward(self, x):
        h = x.to(torch.promote_types(x.dtype, torch.float32))
        y = h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight
        return y.to(x.dtype)


def get_inputs():
    return [torch.randn(N_ROWS, N_COLS).to(torch.bfloat16)]


def get_init_inputs():
    return [N_COLS, EPS]


def roofline():
    """DRAM bytes (x read once, y written once, the weight) and FLOPs of one call."""
    return dict(bytes=2 * N_ROWS * N_COLS * 2 + 4 * N_COLS, flops=4 * N_ROWS * N_COLS)


@triton.jit
def rmsnorm_fwd_kernel(x_ptr, w_ptr, out_ptr, n_cols, stride_x, stride_out, eps, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_x
    out_row = out_ptr + row * stride_out
    # Pass 1: sum of squares, lane-wise in fp32, reduced once at the end.
    acc = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        x = tl.load(x_row + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
        acc += x * x
    rstd = tl.rsqrt(tl.sum(acc, axis=0) / n_cols + eps)
    # Pass 2: normalise and scale.
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        w = tl.load(w_ptr + cols, mask=mask, other=0.0)
        tl.store(out_row + cols, (x * rstd * w).to(out_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    """Start: 128-column chunks, Triton's default warps and stages."""

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x):
        x = x.contiguous()
        n_rows, n_cols = x.shape
        out = torch.empty_like(x)
        rmsnorm_fwd_kernel[(n_rows,)](
            x, self.weight, out, n_cols, x.stride(0), out.stride(0), self.eps, BLOCK_SIZE=128,
        )
        return out


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_SIZE=8192, num_warps=8, num_stages=1)  # FILLED FROM SWEEP: 0.1332 ms (H200 2026-11-30)

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x):
        x = x.contiguous()
        n_rows, n_cols = x.shape
        out = torch.empty_like(x)
        rmsnorm_fwd_kernel[(n_rows,)](
            x, self.weight, out, n_cols, x.stride(0), out.stride(0), self.eps, **self.config,
        )
        return out
