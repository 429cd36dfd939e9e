"""GEMM with a decode shape: ``y = x @ W^T`` for 16 tokens, x (16, 4096) bf16, W (28672, 4096) bf16 in
``nn.Linear`` layout (a fused gate/up projection of a 7-8B model), y (16, 28672) bf16.

A tiled ``tl.dot`` GEMM (fp32 accumulation) over a 2-D grid of ``meta``:
``(cdiv(M, BLOCK_M), cdiv(N, BLOCK_N))``; W is read through its strides as the (K, N) operand, so each tile
load is contiguous along K.

Roofline floor: the weight, 235 MB read once (0.055 ms at ~4.3 TB/s); 3.8 GFLOP, negligible for the tensor
cores. Memory-bound: the config has to keep enough weight bytes in flight with only 16 rows of x, and a
BLOCK_M above 16 only multiplies padded rows.

Variants:
- ``ModelNew`` (the start): the kernel under ``@triton.autotune`` with a list in the style of the Triton
  matmul tutorial (square-ish tiles of 64-128 rows, BLOCK_K 32, 3-5 stages), keyed on M, N, K: every config
  pads the 16 rows of x to 64 or 128 and moves little of W per stage.
- ``ModelNew_best``: the same kernel launched through ``matmul_decode_kernel.fn`` (the undecorated
  ``@triton.jit`` function) with the sweep's best config from its class attribute ``config``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

M_TOKENS = 16
IN_FEATURES = 4096
OUT_FEATURES = 28672

INTERPRET_SHAPES = dict(M_TOKENS=5, IN_FEATURES=80, OUT_FEATURES=100)
RTOL = 1e-2
# 2 x 3 x 3 x 2 x 2 = 72 configs.
SWEEP_SPACE = dict(
    BLOCK_M=[16, 64],
    BLOCK_N=[32, 64, 128],
    BLOCK_K=[64, 128, 256],
    num_warps=[4, 8],
    num_stages=[3, 5],
)


class Model(nn.Module):
    """Reference: ``nn.functional.linear(x, weight)``, no bias."""

    def __init__(self, in_features, out_features):
        super().__init__()
        weight = torch.randn(out_features, in_features) * in_features**-0.5
        self.weight = nn.Parameter(weight.to(torch.bfloat16))

    def forward(self, x):
        return torch.nn.functional.linear(x, self.weight)


def get_inputs():
    return [torch.randn(M_TOKENS, IN_FEATURES).to(torch.bfloat16)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]


def roofline():
    """DRAM bytes (W and x read once, y written once) and tensor-core FLOPs of one call."""
    n_bytes = (OUT_FEATURES * IN_FEATURES + M_TOKENS * IN_FEATURES + M_TOKENS * OUT_FEATURES) * 2
    return dict(bytes=n_bytes, flops=2 * M_TOKENS * IN_FEATURES * OUT_FEATURES)


@triton.autotune(
    configs=[
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=4, num_stages=4),
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4, num_stages=4),
        triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=4, num_stages=4),
        triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4, num_stages=5),
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64}, num_warps=8, num_stages=3),
        triton.Config({"BLOCK_M": 64, "BLOCK_N": 32, "BLOCK_K": 32}, num_warps=2, num_stages=5),
    ],
    key=["M", "N", "K"],
)
@triton.jit
def matmul_decode_kernel(
    x_ptr, w_ptr, y_ptr, M, N, K,
    stride_xm, stride_xk, stride_wn, stride_wk, stride_ym, stride_yn,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    x_ptrs = x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk
    w_ptrs = w_ptr + offs_n[None, :].to(tl.int64) * stride_wn + offs_k[:, None] * stride_wk
    m_mask = offs_m[:, None] < M
    n_mask = offs_n[None, :] < N
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_left = K - k0
        x_tile = tl.load(x_ptrs, mask=m_mask & (offs_k[None, :] < k_left), other=0.0)
        w_tile = tl.load(w_ptrs, mask=n_mask & (offs_k[:, None] < k_left), other=0.0)
        acc = tl.dot(x_tile, w_tile, acc)
        x_ptrs += BLOCK_K * stride_xk
        w_ptrs += BLOCK_K * stride_wk
    y_ptrs = y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :] * stride_yn
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=m_mask & n_mask)


def _launch(kernel, x, weight, **config):
    x = x.contiguous()
    M, K = x.shape
    N = weight.shape[0]
    y = torch.empty((M, N), device=x.device, dtype=x.dtype)
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"]))  # noqa: E731
    kernel[grid](
        x, weight, y, M, N, K,
        x.stride(0), x.stride(1), weight.stride(0), weight.stride(1), y.stride(0), y.stride(1),
        **config,
    )
    return y


class ModelNew(nn.Module):
    """Start: ``@triton.autotune`` over a tutorial-style list of six square-ish tiles."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=torch.bfloat16))

    def forward(self, x):
        return _launch(matmul_decode_kernel, x, self.weight)


class ModelNew_best(nn.Module):
    """The sweep's best config, launched on the undecorated kernel (``config`` is rewritten by --fill)."""

    config = dict(BLOCK_M=16, BLOCK_N=128, BLOCK_K=128, num_warps=4, num_stages=3)  # FILLED FROM SWEEP: 0.0676 ms (H200 2026-11-30)

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=torch.bfloat16))

    def forward(self, x):
        return _launch(matmul_decode_kernel.fn, x, self.weight, **self.config)
