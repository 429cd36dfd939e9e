"""Candidate fused conv-scale-min kernels using TMA tensor descriptors (Hopper), swept by bench/conv_sweep2.py.

Both compute out[n, 0, oh, ow] = min_co(scale * (bias[co] + sum_{kh,kw,ci} x[n,ci,oh+kh,ow+kw] * w[co,ci,kh,kw]))
for stride 1, no padding, as an implicit GEMM: M = output pixels of one output row (BLOCK_M of them), N = all C_out
channels, K = (kh, kw, ci) in BLOCK_K slices.

- nhwc: x is first converted to NHWC fp16 (one pass); each A tile is then a contiguous [BLOCK_M, BLOCK_K] box of the
  [N*H*W, C_in] matrix starting at pixel (n, oh+kh, ow0+kw), loaded by TMA. Rows past the image row wrap into the next
  row: they only feed output pixels ow >= W_out, which are masked at the store.
- nchw: x stays NCHW fp32; each A tile is a [BLOCK_K, BLOCK_M] box of the [N*C_in, H*W] matrix, converted to fp16 (or
  kept fp32 for TF32) in registers and transposed.
"""

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor


@triton.jit
def conv_min_tma_nhwc_kernel(a_desc, b_desc, b_ptr, out_ptr, H, W, H_out, W_out, scale,
                             C_IN: tl.constexpr, C_OUT: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                             BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_w = tl.program_id(0)
    row = tl.program_id(1)
    n = row // H_out
    oh = row % H_out
    ow0 = pid_w * BLOCK_M
    STEPS: tl.constexpr = C_IN // BLOCK_K
    acc = tl.zeros((BLOCK_M, C_OUT), dtype=tl.float32)
    for ks in range(0, KH * KW * STEPS):
        tap = ks // STEPS
        c0 = (ks % STEPS) * BLOCK_K
        r0 = (n * H + oh + tap // KW) * W + ow0 + tap % KW
        a = a_desc.load([r0, c0])
        b = b_desc.load([ks * BLOCK_K, 0])
        acc = tl.dot(a, b, acc)
    offs_n = tl.arange(0, C_OUT)
    bias = tl.load(b_ptr + offs_n)
    res = tl.min((acc + bias[None, :]) * scale, axis=1)
    offs_m = ow0 + tl.arange(0, BLOCK_M)
    tl.store(out_ptr + row.to(tl.int64) * W_out + offs_m, res, mask=offs_m < W_out)


@triton.jit
def conv_min_tma_nchw_kernel(a_desc, b_desc, b_ptr, out_ptr, H, W, H_out, W_out, scale,
                             C_IN: tl.constexpr, C_OUT: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                             FP16: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_w = tl.program_id(0)
    row = tl.program_id(1)
    n = row // H_out
    oh = row % H_out
    ow0 = pid_w * BLOCK_M
    STEPS: tl.constexpr = C_IN // BLOCK_K
    acc = tl.zeros((BLOCK_M, C_OUT), dtype=tl.float32)
    for ks in range(0, KH * KW * STEPS):
        tap = ks // STEPS
        c0 = (ks % STEPS) * BLOCK_K
        a = a_desc.load([n * C_IN + c0, (oh + tap // KW) * W + ow0 + tap % KW])  # [BLOCK_K, BLOCK_M]
        if FP16:
            a = a.to(tl.float16)
        b = b_desc.load([ks * BLOCK_K, 0])
        acc = tl.dot(tl.trans(a), b, acc)
    offs_n = tl.arange(0, C_OUT)
    bias = tl.load(b_ptr + offs_n)
    res = tl.min((acc + bias[None, :]) * scale, axis=1)
    offs_m = ow0 + tl.arange(0, BLOCK_M)
    tl.store(out_ptr + row.to(tl.int64) * W_out + offs_m, res, mask=offs_m < W_out)


def pack_weight(weight, dtype):
    C_out, C_in, KH, KW = weight.shape
    return weight.permute(2, 3, 1, 0).reshape(KH * KW * C_in, C_out).to(dtype).contiguous()


def conv_min_tma(x, weight, bias, scale, *, layout="nhwc", fp16=True, BLOCK_M=128, BLOCK_K=64,
                 num_warps=8, num_stages=3):
    N, C_in, H, W = x.shape
    C_out, _, KH, KW = weight.shape
    H_out, W_out = H - KH + 1, W - KW + 1
    wdt = torch.float16 if fp16 else torch.float32
    w2d = pack_weight(weight, wdt)
    b_desc = TensorDescriptor.from_tensor(w2d, [BLOCK_K, C_out])
    out = torch.empty((N, 1, H_out, W_out), device=x.device, dtype=torch.float32)
    grid = (triton.cdiv(W_out, BLOCK_M), N * H_out)
    if layout == "nhwc":
        x2d = x.permute(0, 2, 3, 1).to(wdt).reshape(N * H * W, C_in)
        a_desc = TensorDescriptor.from_tensor(x2d, [BLOCK_M, BLOCK_K])
        conv_min_tma_nhwc_kernel[grid](a_desc, b_desc, bias, out, H, W, H_out, W_out, float(scale),
                                       C_IN=C_in, C_OUT=C_out, KH=KH, KW=KW, BLOCK_M=BLOCK_M, BLOCK_K=BLOCK_K,
                                       num_warps=num_warps, num_stages=num_stages)
    else:
        x2d = x.contiguous().view(N * C_in, H * W)
        a_desc = TensorDescriptor.from_tensor(x2d, [BLOCK_K, BLOCK_M])
        conv_min_tma_nchw_kernel[grid](a_desc, b_desc, bias, out, H, W, H_out, W_out, float(scale),
                                       C_IN=C_in, C_OUT=C_out, KH=KH, KW=KW, FP16=fp16, BLOCK_M=BLOCK_M,
                                       BLOCK_K=BLOCK_K, num_warps=num_warps, num_stages=num_stages)
    return out


@triton.jit
def conv_min_tma_nhwc_persistent_kernel(a_desc, b_desc, b_ptr, out_ptr, H, W, H_out, W_out, scale, num_tiles,
                                        C_IN: tl.constexpr, C_OUT: tl.constexpr, KH: tl.constexpr,
                                        KW: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
                                        NUM_PROGS: tl.constexpr, FLATTEN: tl.constexpr):
    STEPS: tl.constexpr = C_IN // BLOCK_K
    K_ITERS: tl.constexpr = KH * KW * STEPS
    tiles_per_row = tl.cdiv(W_out, BLOCK_M)
    offs_n = tl.arange(0, C_OUT)
    bias = tl.load(b_ptr + offs_n)
    for tile in tl.range(tl.program_id(0), num_tiles, NUM_PROGS, flatten=FLATTEN):
        row = tile // tiles_per_row
        ow0 = (tile % tiles_per_row) * BLOCK_M
        n = row // H_out
        oh = row % H_out
        acc = tl.zeros((BLOCK_M, C_OUT), dtype=tl.float32)
        for ks in range(0, K_ITERS):
            tap = ks // STEPS
            r0 = (n * H + oh + tap // KW) * W + ow0 + tap % KW
            a = a_desc.load([r0, (ks % STEPS) * BLOCK_K])
            b = b_desc.load([ks * BLOCK_K, 0])
            acc = tl.dot(a, b, acc)
        res = tl.min((acc + bias[None, :]) * scale, axis=1)
        offs_m = ow0 + tl.arange(0, BLOCK_M)
        tl.store(out_ptr + row.to(tl.int64) * W_out + offs_m, res, mask=offs_m < W_out)


def conv_min_tma_persistent(x, weight, bias, scale, *, BLOCK_M=128, BLOCK_K=32, num_warps=4, num_stages=3,
                            progs_per_sm=1, flatten=True):
    N, C_in, H, W = x.shape
    C_out, _, KH, KW = weight.shape
    H_out, W_out = H - KH + 1, W - KW + 1
    w2d = pack_weight(weight, torch.float16)
    b_desc = TensorDescriptor.from_tensor(w2d, [BLOCK_K, C_out])
    x2d = x.permute(0, 2, 3, 1).to(torch.float16).reshape(N * H * W, C_in)
    a_desc = TensorDescriptor.from_tensor(x2d, [BLOCK_M, BLOCK_K])
    out = torch.empty((N, 1, H_out, W_out), device=x.device, dtype=torch.float32)
    num_tiles = triton.cdiv(W_out, BLOCK_M) * N * H_out
    progs = min(num_tiles, progs_per_sm * torch.cuda.get_device_properties(x.device).multi_processor_count)
    conv_min_tma_nhwc_persistent_kernel[(progs,)](
        a_desc, b_desc, bias, out, H, W, H_out, W_out, float(scale), num_tiles,
        C_IN=C_in, C_OUT=C_out, KH=KH, KW=KW, BLOCK_M=BLOCK_M, BLOCK_K=BLOCK_K, NUM_PROGS=progs,
        FLATTEN=flatten, num_warps=num_warps, num_stages=num_stages)
    return out
