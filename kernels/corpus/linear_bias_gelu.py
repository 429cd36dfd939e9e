"""A skinny, odd-shaped linear layer with a fused bias + GELU epilogue: ``y = gelu(x @ W^T + b)`` for
x (100000, 320) bf16, W (1000, 320) bf16 in ``nn.Linear`` layout, b (1000,) fp32, y (100000, 1000) bf16,
as in a classification head over many positions. GELU is the sigmoid approximation
``z * sigmoid(1.702 z) = z / (1 + exp(-1.702 z))``, written with ``tl.exp``.

Tiled ``tl.dot`` (fp32 accumulation) with K = 320 in a few steps, N = 1000 not a multiple of any tile, and the
bias and GELU applied to the fp32 accumulator before the single bf16 store. The grid is a fixed tuple
``(cdiv(M, BLOCK_M), cdiv(N, BLOCK_N))`` computed at the launch site from the same literals as the block
keywords.

Roofline floor: 2 * M * N * K = 64 GFLOP (0.08 ms at ~790 TFLOP/s) against 64 MB of x and 200 MB of output
(0.06 ms at ~4.3 TB/s): close to balanced, so both the tile shape (tensor-core efficiency) and the output
stream matter.

Variants:
- ``ModelNew`` (the start): 32 x 32 x 32 tiles and ``num_stages=1`` as literal keywords at the launch site,
  default 4 warps: 100,000 small programs, each re-reading its x rows 32 times over.
- ``ModelNew_best``: the same kernel with the sweep's best config from its class attribute ``config``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

M_ROWS = 100000
IN_FEATURES = 320
OUT_FEATURES = 1000

INTERPRET_SHAPES = dict(M_ROWS=70, IN_FEATURES=40, OUT_FEATURES=50)
RTOL = 1e-2
# 3 x 3 x 2 x 2 x 2 = 72 configs.
SWEEP_SPACE = dict(
    BLOCK_M=[32, 64, 128],
    BLOCK_N=[32, 64, 128],
    BLOCK_K=[32, 64],
    num_warps=[4, 8],
    num_stages=[1, 3],
)


class Model(nn.Module):
    """Reference: ``linear`` then the sigmoid-approximated GELU, in fp32 (or float64)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        weight = torch.randn(out_features, in_features) * in_features**-0.5
        self.weight = nn.Parameter(weight.to(torch.bfloat16))
        self.bias = nn.Parameter(0.1 * torch.randn(out_features))

    def forward(self, x):
        dtype = torch.promote_types(x.dtype, torch.float32)
        z = torch.nn.functional.linear(x.to(dtype), self.weight.to(dtype), self.bias.to(dtype))
        return (z * torch.sigmoid(1.702 * z)).to(x.dtype)


def get_inputs():
    return [torch.randn(M_ROWS, IN_FEATURES).to(torch.bfloat16)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]


def roofline():
    """DRAM bytes (x and W read once, y written once) and tensor-core FLOPs of one call."""
    n_bytes = (M_ROWS * IN_FEATURES + OUT_FEATURES * IN_FEATURES + M_ROWS * OUT_FEATURES) * 2
    return dict(bytes=n_bytes, flops=2 * M_ROWS * IN_FEATURES * OUT_FEATURES)


@triton.jit
def linear_bias_gelu_kernel(
    x_ptr, w_ptr, b_ptr, y_ptr, M, N, K,
    stride_xm, stride_wn, stride_ym,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_mask = offs_m < M
    n_mask = offs_n < N
    x_ptrs = x_ptr + offs_m[:, None].to(tl.int64) * stride_xm + offs_k[None, :]
    w_ptrs = w_ptr + offs_n[None, :] * stride_wn + offs_k[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_mask = offs_k < K - k0
        x_tile = tl.load(x_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
        w_tile = tl.load(w_ptrs, mask=n_mask[None, :] & k_mask[:, None], other=0.0)
        acc = tl.dot(x_tile, w_tile, acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    z = acc + tl.load(b_ptr + offs_n, mask=n_mask, other=0.0)[None, :]
    y = z / (1.0 + tl.exp(-1.702 * z))
    y_ptrs = y_ptr + offs_m[:, None].to(tl.int64) * stride_ym + offs_n[None, :]
    tl.store(y_ptrs, y.to(y_ptr.dtype.element_ty), mask=m_mask[:, None] & n_mask[None, :])


class ModelNew(nn.Module):
    """Start: 32 x 32 x 32 tiles, one stage, literal launch keywords."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=torch.bfloat16))
        self.bias = nn.Parameter(torch.empty(out_features))

    def forward(self, x):
        x = x.contiguous()
        M, K = x.shape
        N = self.weight.shape[0]
        y = torch.empty((M, N), device=x.device, dtype=x.dtype)
        grid = (triton.cdiv(M, 32), triton.cdiv(N, 32))
        linear_bias_gelu_kernel[grid](
            x, self.weight, self.bias, y, M, N, K, x.stride(0), self.weight.stride(0), y.stride(0),
            BLOCK_M=32, BLOCK_N=32, BLOCK_K=32, num_stages=1,
        )
        return y


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_M=64, BLOCK_N=128, BLOCK_K=64, num_warps=8, num_stages=3)  # FILLED FROM SWEEP: 0.2903 ms (H200 2026-11-30)

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=torch.bfloat16))
        self.bias = nn.Parameter(torch.empty(out_features))

    def forward(self, x):
        x = x.contiguous()
        M, K = x.shape
        N = self.weight.shape[0]
        y = torch.empty((M, N), device=x.device, dtype=x.dtype)
        cfg = self.config
        grid = (triton.cdiv(M, cfg["BLOCK_M"]), triton.cdiv(N, cfg["BLOCK_N"]))
        linear_bias_gelu_kernel[grid](
            x, self.weight, self.bias, y, M, N, K, x.stride(0), self.weight.stride(0), y.stride(0), **cfg,
        )
        return y
