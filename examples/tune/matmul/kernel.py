"""Matmul with a fused epilogue: ``out = gelu_tanh(x @ W + bias) * scale``, 4096 x 4096 x 4096, fp16 in/out.

fp16 operands, fp32 accumulation on the tensor cores, bias + GELU + scale applied to the fp32 accumulator
before the single fp16 store: 137 GFLOP against 100 MB of operands, so a good tiling is compute-bound.

Rules each variant is designed to trigger (and why; register and shared-memory figures are ptxas -v for
sm_90a from Triton 3.6, compiled without a GPU; the ncu runs on the GPU machine are the ground truth):
- ``ModelNew_tile16_w1_s1`` (BLOCK 16 x 16 x 16, num_warps 1, num_stages 1; ptxas: 47 registers, 1 KB
  shared): 65536 one-warp programs, each a 256-step K loop of tiny dots with no software pipelining, every
  operand fetched 256 times over from L2. Designed to trigger *latency-bound* (neither the tensor pipes
  nor DRAM get near peak: the warps wait on loads that no stage hides); *compute-bound* must stay quiet
  here, and the L2 hit rate is high (no *low L2 hit rate* finding).
- ``ModelNew`` (BLOCK 128 x 128 x 64, num_warps 8, num_stages 3, grouped tile order GROUP_M 8): designed
  to trigger *compute-bound* (SM / tensor throughput high, DRAM low, L2 hit rate high) and to keep
  memory-bound, spills, grid-size and tail-effect rules quiet (ptxas: 128 registers, no spills, 96 KB
  shared, so 2 blocks per SM; 1024 programs = 3.9 waves on 132 SMs).

GELU uses ``tanh(z) = 1 - 2 / (exp(2 z) + 1)`` because Triton 3.6 has no ``tl.tanh``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

M_ROWS = 4096
IN_FEATURES = 4096
OUT_FEATURES = 4096
SCALE = 0.5


class Model(nn.Module):
    """Reference: ``gelu_tanh(x @ weight + bias) * scale`` with fp16 parameters."""

    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features).mul_(in_features**-0.5).half())
        self.bias = nn.Parameter(torch.randn(out_features).half())
        self.scale = float(scale)

    def forward(self, x):
        return torch.nn.functional.gelu(x @ self.weight + self.bias, approximate="tanh") * self.scale


def get_inputs():
    return [torch.randn(M_ROWS, IN_FEATURES).half()]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES, SCALE]


@triton.jit
def matmul_bias_gelu_kernel(
    x_ptr, w_ptr, bias_ptr, out_ptr,
    M, N, K,
    stride_xm, stride_xk, stride_wk, stride_wn, stride_om, stride_on,
    scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    # Grouped tile order: GROUP_M row-tiles share each column-tile while it is in L2.
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    num_pid_in_group = GROUP_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # Wrap rows/columns past the edge onto valid ones so loads need no M/N mask; the store masks them.
    offs_m_load = offs_m % M
    offs_n_load = offs_n % N
    x_ptrs = x_ptr + offs_m_load[:, None] * stride_xm + offs_k[None, :] * stride_xk
    w_ptrs = w_ptr + offs_k[:, None] * stride_wk + offs_n_load[None, :] * stride_wn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_left = K - k0
        x_tile = tl.load(x_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
        w_tile = tl.load(w_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
        acc = tl.dot(x_tile, w_tile, acc)
        x_ptrs += BLOCK_K * stride_xk
        w_ptrs += BLOCK_K * stride_wk

    bias = tl.load(bias_ptr + offs_n_load).to(tl.float32)
    y = acc + bias[None, :]
    z = 0.7978845608028654 * (y + 0.044715 * y * y * y)  # sqrt(2/pi) * (y + 0.044715 y^3)
    y = 0.5 * y * (2.0 - 2.0 / (tl.exp(2.0 * z) + 1.0)) * scale  # 0.5 y (1 + tanh z) * scale
    out_ptrs = out_ptr + offs_m[:, None] * stride_om + offs_n[None, :] * stride_on
    tl.store(out_ptrs, y.to(out_ptr.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def matmul_bias_gelu(x, weight, bias, scale, *, BLOCK_M=128, BLOCK_N=128, BLOCK_K=64, GROUP_M=8,
                     num_warps=8, num_stages=3):
    """``gelu_tanh(x @ weight + bias) * scale`` in one kernel; x (M, K), weight (K, N), bias (N,)."""
    M, K = x.shape
    K_w, N = weight.shape
    if K != K_w:
        raise ValueError(f"x has {K} columns but weight has {K_w} rows")
    out = torch.empty((M, N), device=x.device, dtype=x.dtype)
    grid = (triton.cdiv(M, BLOCK_M) * triton.cdiv(N, BLOCK_N),)
    matmul_bias_gelu_kernel[grid](
        x, weight, bias, out, M, N, K,
        x.stride(0), x.stride(1), weight.stride(0), weight.stride(1), out.stride(0), out.stride(1),
        float(scale),
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, GROUP_M=GROUP_M,
        num_warps=num_warps, num_stages=num_stages,
    )
    return out


class ModelNew_tile16_w1_s1(nn.Module):
    """Mistuned: 16 x 16 x 16 tiles, one warp, no pipelining (latency-bound, 65536 tiny programs)."""

    config = dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=16, GROUP_M=8, num_warps=1, num_stages=1)

    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features, dtype=torch.float16))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=torch.float16))
        self.scale = float(scale)

    def forward(self, x):
        return matmul_bias_gelu(x, self.weight, self.bias, self.scale, **self.config)


class ModelNew(nn.Module):
    """Tuned: 128 x 128 x 64 tiles, 8 warps, 3 stages, grouped tile order (compute-bound)."""

    config = dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=64, GROUP_M=8, num_warps=8, num_stages=3)

    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features, dtype=torch.float16))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=torch.float16))
        self.scale = float(scale)

    def forward(self, x):
        return matmul_bias_gelu(x, self.weight, self.bias, self.scale, **self.config)
