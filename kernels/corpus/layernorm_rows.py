"""LayerNorm with weight and bias over short rows: x (131072, 1024) fp32, as in a transformer with hidden size
1024 and 128k tokens.

Each program normalises ``BLOCK_M`` whole rows held in registers (``BLOCK_N = next_power_of_2(n_cols)``, not
tuned): mean, variance of the centred values, then ``(x - mean) * rstd * weight + bias``. The grid is a
callable of ``meta``: ``lambda meta: (triton.cdiv(n_rows, meta["BLOCK_M"]),)``.

Roofline floor: 512 MB read + 512 MB written = 1.07 GB of DRAM traffic (0.25 ms at ~4.3 TB/s); about
8 FLOP per element (1.1 GFLOP): memory-bound.

Variants:
- ``ModelNew`` (the start): the kernel under ``@triton.autotune`` with a short tutorial-style list (one or
  two rows per program, 4 or 8 warps), keyed on the sizes. Autotuning picks the best of four configs that
  all keep only 4-8 KB per program in flight.
- ``ModelNew_best``: the same kernel launched through ``layernorm_fwd_kernel.fn`` (the undecorated
  ``@triton.jit`` function) with the sweep's best config from its class attribute ``config``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ROWS = 131072
N_COLS = 1024
EPS = 1e-5

INTERPRET_SHAPES = dict(N_ROWS=37, N_COLS=100)
RTOL = 1e-5
# 5 x 6 = 30 configs; no loop, so num_stages is not swept.
SWEEP_SPACE = dict(
    BLOCK_M=[1, 2, 4, 8, 16],
    num_warps=[1, 2, 4, 8, 16, 32],
)


class Model(nn.Module):
    """Reference: ``torch.nn.functional.layer_norm`` over the last dimension."""

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(hidden_size))
        self.bias = nn.Parameter(0.1 * torch.randn(hidden_size))
        self.eps = eps

    def forward(self, x):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


def get_inputs():
    return [torch.randn(N_ROWS, N_COLS)]


def get_init_inputs():
    return [N_COLS, EPS]


def roofline():
    """DRAM bytes (x read once, y written once, weight and bias) and FLOPs of one call."""
    return dict(bytes=2 * N_ROWS * N_COLS * 4 + 8 * N_COLS, flops=8 * N_ROWS * N_COLS)


@triton.autotune(
    configs=[
        triton.Config({"BLOCK_M": 1}, num_warps=4),
        triton.Config({"BLOCK_M": 1}, num_warps=8),
        triton.Config({"BLOCK_M": 2}, num_warps=4),
        triton.Config({"BLOCK_M": 2}, num_warps=8),
    ],
    key=["n_rows", "n_cols"],
)
@triton.jit
def layernorm_fwd_kernel(
    x_ptr, w_ptr, b_ptr, out_ptr,
    n_rows, n_cols, stride_x, stride_out, eps,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    col_mask = cols < n_cols
    mask = (rows < n_rows)[:, None] & col_mask[None, :]
    rows64 = rows.to(tl.int64)
    x = tl.load(x_ptr + rows64[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=1) / n_cols
    centred = tl.where(mask, x - mean[:, None], 0.0)
    var = tl.sum(centred * centred, axis=1) / n_cols
    rstd = tl.rsqrt(var + eps)
    w = tl.load(w_ptr + cols, mask=col_mask, other=0.0)
    b = tl.load(b_ptr + cols, mask=col_mask, other=0.0)
    y = centred * rstd[:, None] * w[None, :] + b[None, :]
    out_ptrs = out_ptr + rows64[:, None] * stride_out + cols[None, :]
    tl.store(out_ptrs, y.to(out_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    """Start: ``@triton.autotune`` over a tutorial-style list of four configs."""

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.eps = eps

    def forward(self, x):
        x = x.contiguous()
        n_rows, n_cols = x.shape
        out = torch.empty_like(x)
        grid = lambda meta: (triton.cdiv(n_rows, meta["BLOCK_M"]),)  # noqa: E731
        layernorm_fwd_kernel[grid](
            x, self.weight, self.bias, out, n_rows, n_cols, x.stride(0), out.stride(0), self.eps,
            BLOCK_N=triton.next_power_of_2(n_cols),
        )
        return out


class ModelNew_best(nn.Module):
    """The sweep's best config, launched on the undecorated kernel (``config`` is rewritten by --fill)."""

    config = dict(BLOCK_M=1, num_warps=4)  # FILLED FROM SWEEP: 0.2566 ms (H200 2026-11-30)

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.eps = eps

    def forward(self, x):
        x = x.contiguous()
        n_rows, n_cols = x.shape
        out = torch.empty_like(x)
        grid = lambda meta: (triton.cdiv(n_rows, meta["BLOCK_M"]),)  # noqa: E731
        layernorm_fwd_kernel.fn[grid](
            x, self.weight, self.bias, out, n_rows, n_cols, x.stride(0), out.stride(0), self.eps,
            BLOCK_N=triton.next_power_of_2(n_cols), **self.config,
        )
        return out
