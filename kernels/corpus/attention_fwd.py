"""Attention forward, flash style: ``softmax(q k^T / sqrt(d)) v`` for q, k, v (4, 16, 2048, 64) bf16,
non-causal, no dropout, output bf16.

Each program owns ``BLOCK_M`` query rows of one (batch, head) and streams the keys and values in blocks of
``BLOCK_N``: ``tl.dot`` for the scores (fp32 accumulation on the tensor cores), an online softmax (running
row max and row sum in base 2, the accumulator rescaled when the max grows) and a second ``tl.dot`` of the
bf16 probabilities with the value block. The grid is a fixed tuple computed from the config,
``(cdiv(seq_len, BLOCK_M), batch * heads)``, so it changes with ``BLOCK_M``.

Roofline floor: 4 * B * H * S^2 * D = 68.7 GFLOP on the bf16 tensor cores (about 0.09 ms at the ~790 TFLOP/s
measured on the H200), plus 2 * B * H * S^2 = 537 M exponentials; 67 MB of q, k, v and output, read from L2
many times over. Compute-bound.

Variants:
- ``ModelNew`` (the start): ``BLOCK_M=64, BLOCK_N=32``, 4 warps, ``num_stages=1`` (no pipelining of the
  key/value loads), through the shared wrapper with the class attribute ``config``, as the zoo does.
- ``ModelNew_best``: the same wrapper and kernel with the sweep's best config.
"""

import math

import torch
import torch.nn as nn
import triton
import triton.language as tl

BATCH = 4
HEADS = 16
SEQ_LEN = 2048
HEAD_DIM = 64

INTERPRET_SHAPES = dict(BATCH=1, HEADS=2, SEQ_LEN=70, HEAD_DIM=16)
RTOL = 1e-2
# 3 x 3 x 2 x 4 = 72 configs.
SWEEP_SPACE = dict(
    BLOCK_M=[32, 64, 128],
    BLOCK_N=[32, 64, 128],
    num_warps=[4, 8],
    num_stages=[1, 2, 3, 4],
)


class Model(nn.Module):
    """Reference: ``scaled_dot_product_attention`` (math path in float64)."""

    def __init__(self):
        super().__init__()

    def forward(self, q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def get_inputs():
    shape = (BATCH, HEADS, SEQ_LEN, HEAD_DIM)
    return [torch.randn(shape).to(torch.bfloat16) for _ in range(3)]


def get_init_inputs():
    return []


def roofline():
    """DRAM bytes (q, k, v read once, out written once) and tensor-core FLOPs of one call."""
    return dict(bytes=4 * BATCH * HEADS * SEQ_LEN * HEAD_DIM * 2,
                flops=4 * BATCH * HEADS * SEQ_LEN**2 * HEAD_DIM)


@triton.jit
def attention_fwd_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr,
    seq_len, n_heads, qk_scale,
    stride_b, stride_h, stride_s,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    head_offset = (pid_bh // n_heads).to(tl.int64) * stride_b + (pid_bh % n_heads).to(tl.int64) * stride_h
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(q_ptr + head_offset + offs_m[:, None] * stride_s + offs_d[None, :],
                mask=offs_m[:, None] < seq_len, other=0.0)
    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, HEAD_DIM), dtype=tl.float32)
    for start_n in range(0, seq_len, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        valid_n = offs_n < seq_len
        k_t = tl.load(k_ptr + head_offset + offs_n[None, :] * stride_s + offs_d[:, None],
                      mask=valid_n[None, :], other=0.0)
        scores = tl.dot(q, k_t) * qk_scale  # log2 domain: qk_scale includes log2(e)
        scores = tl.where(valid_n[None, :], scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, axis=1))
        p = tl.exp2(scores - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(v_ptr + head_offset + offs_n[:, None] * stride_s + offs_d[None, :],
                    mask=valid_n[:, None], other=0.0)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None])
        m_i = m_new
    out = acc / l_i[:, None]
    tl.store(o_ptr + head_offset + offs_m[:, None] * stride_s + offs_d[None, :],
             out.to(o_ptr.dtype.element_ty), mask=offs_m[:, None] < seq_len)


def attention_forward(q, k, v, *, BLOCK_M=64, BLOCK_N=32, num_warps=4, num_stages=1):
    """Non-causal attention of contiguous (batch, heads, seq, head_dim) tensors."""
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    batch, heads, seq_len, head_dim = q.shape
    out = torch.empty_like(q)
    qk_scale = 1.4426950408889634 / math.sqrt(head_dim)  # log2(e) / sqrt(d)
    grid = (triton.cdiv(seq_len, BLOCK_M), batch * heads)
    attention_fwd_kernel[grid](
        q, k, v, out, seq_len, heads, qk_scale, q.stride(0), q.stride(1), q.stride(2),
        HEAD_DIM=head_dim, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, num_warps=num_warps, num_stages=num_stages,
    )
    return out


class ModelNew(nn.Module):
    """Start: 64 x 32 tiles, 4 warps, one stage."""

    config = dict(BLOCK_M=64, BLOCK_N=32, num_warps=4, num_stages=1)

    def forward(self, q, k, v):
        return attention_forward(q, k, v, **self.config)


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_M=128, BLOCK_N=64, num_warps=8, num_stages=3)  # FILLED FROM SWEEP: 0.1858 ms (H200 2026-11-30)

    def forward(self, q, k, v):
        return attention_forward(q, k, v, **self.config)
