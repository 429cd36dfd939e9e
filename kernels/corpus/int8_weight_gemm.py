"""Weight-only int8 GEMM: ``y = (x @ Wq^T) * scale`` for x (128, 8192) bf16, an int8 weight Wq (28672, 8192)
with one fp32 scale per output channel, y (128, 28672) bf16 (prefill of a short batch through a quantised
gate/up projection).

The int8 weight and its scales are buffers (``register_buffer``), not parameters, as quantised checkpoints
store them. They are built from a seeded generator of their own, so every instance of the file holds the
same weight whatever the global seed (a runner that copies only parameters still compares like with like).

Each program loads an int8 ``(BLOCK_K, BLOCK_N)`` tile of Wq^T, converts it to bf16 (exact for |q| <= 127),
runs ``tl.dot`` with the bf16 x tile (fp32 accumulation) and applies the per-channel scale to the
accumulator once, before the bf16 store. A 2-D grid of ``meta``: ``(cdiv(M, BLOCK_M), cdiv(N, BLOCK_N))``.

Roofline floor: 235 MB of int8 weight read once (0.055 ms at ~4.3 TB/s) and 60 GFLOP on the bf16 tensor
cores (0.076 ms at ~790 TFLOP/s): about balanced, leaning compute-bound.

Variants:
- ``ModelNew`` (the start): ``BLOCK_M=64, BLOCK_N=64, BLOCK_K=64``, 4 warps, ``num_stages=1`` through the
  shared wrapper with the class attribute ``config``: the dequantised tile is recomputed for each of the two
  row tiles and nothing hides the weight loads.
- ``ModelNew_best``: the same wrapper and kernel with the sweep's best config.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

M_TOKENS = 128
IN_FEATURES = 8192
OUT_FEATURES = 28672
WEIGHT_SEED = 1234

INTERPRET_SHAPES = dict(M_TOKENS=20, IN_FEATURES=80, OUT_FEATURES=50)
RTOL = 1e-2
# 2 x 3 x 2 x 2 x 3 = 72 configs.
SWEEP_SPACE = dict(
    BLOCK_M=[64, 128],
    BLOCK_N=[64, 128, 256],
    BLOCK_K=[64, 128],
    num_warps=[4, 8],
    num_stages=[1, 3, 4],
)

_WEIGHTS = {}


def quantized_weight(out_features, in_features):
    """The file's int8 weight (out, in) and per-channel fp32 scales, from ``WEIGHT_SEED`` (built once)."""
    key = (out_features, in_features)
    if key not in _WEIGHTS:
        gen = torch.Generator(device="cpu").manual_seed(WEIGHT_SEED)
        q = torch.randint(-127, 128, key, generator=gen, device="cpu", dtype=torch.int8)
        scale = (torch.rand(out_features, generator=gen, device="cpu") + 0.5) / (127.0 * in_features**0.5)
        _WEIGHTS[key] = (q, scale)
    return _WEIGHTS[key]


class Model(nn.Module):
    """Reference: ``(x @ Wq^T) * scale`` with the int8 weight converted to the input's dtype."""

    def __init__(self, in_features, out_features):
        super().__init__()
        q, scale = quantized_weight(out_features, in_features)
        self.register_buffer("weight_q", q.clone())
        self.register_buffer("scale", scale.clone())

    def forward(self, x):
        return (x @ self.weight_q.to(x.dtype).t()) * self.scale.to(x.dtype)


def get_inputs():
    return [torch.randn(M_TOKENS, IN_FEATURES).to(torch.bfloat16)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]


def roofline():
    """DRAM bytes (int8 W, scales and x read once, y written once) and tensor-core FLOPs of one call."""
    n_bytes = OUT_FEATURES * (IN_FEATURES + 4) + (M_TOKENS * IN_FEATURES + M_TOKENS * OUT_FEATURES) * 2
    return dict(bytes=n_bytes, flops=2 * M_TOKENS * IN_FEATURES * OUT_FEATURES)


@triton.jit
def int8_weight_matmul_kernel(
    x_ptr, wq_ptr, scale_ptr, y_ptr, M, N, K,
    stride_xm, stride_wn, stride_ym,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_mask = offs_m < M
    n_mask = offs_n < N
    x_ptrs = x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :]
    w_ptrs = wq_ptr + offs_n[None, :].to(tl.int64) * stride_wn + offs_k[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_mask = offs_k < K - k0
        x_tile = tl.load(x_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
        w_tile = tl.load(w_ptrs, mask=n_mask[None, :] & k_mask[:, None], other=0)
        acc = tl.dot(x_tile, w_tile.to(x_tile.dtype), acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    scale = tl.load(scale_ptr + offs_n, mask=n_mask, other=0.0)
    y = acc * scale[None, :]
    y_ptrs = y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :]
    tl.store(y_ptrs, y.to(y_ptr.dtype.element_ty), mask=m_mask[:, None] & n_mask[None, :])


def int8_weight_linear(x, weight_q, scale, *, BLOCK_M=64, BLOCK_N=64, BLOCK_K=64, num_warps=4, num_stages=1):
    """``(x @ weight_q^T) * scale`` with weight_q (N, K) int8 and scale (N,) fp32."""
    x = x.contiguous()
    M, K = x.shape
    N = weight_q.shape[0]
    y = torch.empty((M, N), device=x.device, dtype=x.dtype)
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"]))  # noqa: E731
    int8_weight_matmul_kernel[grid](
        x, weight_q, scale, y, M, N, K, x.stride(0), weight_q.stride(0), y.stride(0),
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, num_warps=num_warps, num_stages=num_stages,
    )
    return y


class ModelNew(nn.Module):
    """Start: 64 x 64 x 64 tiles, 4 warps, one stage."""

    config = dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=64, num_warps=4, num_stages=1)

    def __init__(self, in_features, out_features):
        super().__init__()
        q, scale = quantized_weight(out_features, in_features)
        self.register_buffer("weight_q", q.clone())
        self.register_buffer("scale", scale.clone())

    def forward(self, x):
        return int8_weight_linear(x, self.weight_q, self.scale, **self.config)


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=64, num_warps=4, num_stages=4)  # FILLED FROM SWEEP: 0.1477 ms (H200 2026-11-30)

    def __init__(self, in_features, out_features):
        super().__init__()
        q, scale = quantized_weight(out_features, in_features)
        self.register_buffer("weight_q", q.clone())
        self.register_buffer("scale", scale.clone())

    def forward(self, x):
        return int8_weight_linear(x, self.weight_q, self.scale, **self.config)
