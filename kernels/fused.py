"""KernelBench level 2 #32: Conv2d -> x * scale -> min over channels, as Triton variants.

Conventions (read by ``ncu-advisor profile``):
- ``Model`` is the reference; every class named ``ModelNew`` or ``ModelNew_<name>`` is a variant.
- ``get_init_inputs()`` gives the constructor arguments shared by all classes; ``get_inputs()`` the forward inputs.

Variants:
- ``ModelNew_seed000``: seed 000 verbatim (cuDNN conv, then a Triton scale + channel-min kernel).
- ``ModelNew_seed001``: seed 001 verbatim (fully fused Triton conv, BLOCK 128/32/32, 4 warps, 2 stages).
- ``ModelNew_seed001_bm64`` / ``ModelNew_seed001_bn128``: seed 001's kernel unchanged, launched with the two
  changes the advice leads to (halve BLOCK_M under register pressure; widen BLOCK_N to all output channels so
  the input gather is done once instead of once per BLOCK_N tile).
- ``ModelNew``: the fastest fully fused variant: implicit GEMM on the tensor cores (fp16 operands, fp32
  accumulate, TMA loads) with bias, scale and the channel minimum in the epilogue; the 2.1 GB conv output is
  never written.

The two seed sections below are the seeds' code as given, only their class names changed so that both fit
in one file.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl



# ---------------------------------------------------------------------------------------------------
# Reference (KernelBench level2/32_Conv2d_Scaling_Min.py)
# ---------------------------------------------------------------------------------------------------
class Model(nn.Module):
    """Conv2d, scale, then the minimum over the channel dimension."""

    def __init__(self, in_channels, out_channels, kernel_size, scale_factor):
        super(Model, self).__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        self.scale_factor = scale_factor

    def forward(self, x):
        x = self.conv(x)
        x = x * self.scale_factor
        x = torch.min(x, dim=1, keepdim=True)[0]  # Minimum along channel dimension
        return x


batch_size = 64
in_channels = 64
out_channels = 128
height = width = 256
kernel_size = 3
scale_factor = 2.0


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, scale_factor]



# ---------------------------------------------------------------------------------------------------
# Seed 000 (verbatim): cuDNN conv + Triton scale/channel-min
# ---------------------------------------------------------------------------------------------------
@triton.autotune(
    configs=[
        triton.Config({'BLOCK_M': 128, 'BLOCK_C': 32}, num_warps=4, num_stages=2),
        triton.Config({'BLOCK_M': 128, 'BLOCK_C': 64}, num_warps=4, num_stages=2),
        triton.Config({'BLOCK_M': 256, 'BLOCK_C': 32}, num_warps=8, num_stages=3),
    ],
    key=['M', 'C'],
)
@triton.jit
def scale_channel_min_kernel(
    x_ptr,  # *const T, (N, C, H, W)
    y_ptr,  # *T,       (N, 1, H, W)
    N, C, H, W, M,      # M = N * H * W
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_yn, stride_yc, stride_yh, stride_yw,
    scale,              # float scalar
    IS_POS: tl.constexpr,          # True: use min, False: use max
    BLOCK_M: tl.constexpr,         # number of (n, h, w) elements per program
    BLOCK_C: tl.constexpr,         # channel tile size
):
    # Program id along the flattened (N, H, W) dimension
    pid = tl.program_id(0)
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_m = offs_m < M  # (BLOCK_M,)

    # Decode offs_m -> (n, h, w)
    hw = H * W
    n_idx = offs_m // hw
    rem = offs_m % hw
    h_idx = rem // W
    w_idx = rem % W

    # Base offset for each (n, h, w) pixel in x and y
    base_x = (
        n_idx * stride_xn
        + h_idx * stride_xh
        + w_idx * stride_xw
    )
    base_y = (
        n_idx * stride_yn
        + h_idx * stride_yh
        + w_idx * stride_yw
    )

    # Initialize accumulator with +/- inf in fp32
    pos_inf = 3.402823e38
    neg_inf = -3.402823e38
    if IS_POS:
        acc = tl.full((BLOCK_M,), pos_inf, dtype=tl.float32)
        other = pos_inf
    else:
        acc = tl.full((BLOCK_M,), neg_inf, dtype=tl.float32)
        other = neg_inf

    # Loop over channel dimension in BLOCK_C tiles
    # All loads share the same (offs_m, mask_m) and broadcasted channel offsets.
    for c_start in range(0, C, BLOCK_C):
        offs_c = c_start + tl.arange(0, BLOCK_C)          # (BLOCK_C,)
        mask_c = offs_c < C                               # (BLOCK_C,)

        # 2D pointer matrix: [BLOCK_M, BLOCK_C]
        x_ptrs = x_ptr + base_x[:, None] + offs_c[None, :] * stride_xc
        mask = mask_m[:, None] & mask_c[None, :]          # (BLOCK_M, BLOCK_C)

        vals = tl.load(x_ptrs, mask=mask, other=other)
        vals = vals.to(tl.float32)

        if IS_POS:
            tile_red = tl.min(vals, axis=1)               # (BLOCK_M,)
            acc = tl.minimum(acc, tile_red)
        else:
            tile_red = tl.max(vals, axis=1)               # (BLOCK_M,)
            acc = tl.maximum(acc, tile_red)

    # Apply scale after reduction (handles negative scale correctly)
    acc = acc * scale

    # Store result at channel 0: y[n, 0, h, w]
    y_ptrs = y_ptr + base_y
    tl.store(y_ptrs, acc, mask=mask_m)


def scale_min_triton(conv_out: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """
    Fused scale + channel-wise min over Conv2d output using Triton.

    Args:
        conv_out: (N, C, H, W) CUDA tensor
        scale_factor: float scalar

    Returns:
        y: (N, 1, H, W) where
           y[n, 0, h, w] = min_c(conv_out[n, c, h, w] * scale_factor)
    """
    assert conv_out.is_cuda, "Triton kernel requires CUDA tensor"
    conv_out = conv_out.contiguous()

    N, C, H, W = conv_out.shape
    M = N * H * W

    y = torch.empty((N, 1, H, W), device=conv_out.device, dtype=conv_out.dtype)

    stride_xn, stride_xc, stride_xh, stride_xw = conv_out.stride()
    stride_yn, stride_yc, stride_yh, stride_yw = y.stride()

    is_pos = float(scale_factor) >= 0.0

    # 1D grid over flattened (N, H, W) dimension
    def grid(meta):
        return (triton.cdiv(M, meta["BLOCK_M"]),)

    scale_channel_min_kernel[grid](
        conv_out,
        y,
        N, C, H, W, M,
        stride_xn, stride_xc, stride_xh, stride_xw,
        stride_yn, stride_yc, stride_yh, stride_yw,
        float(scale_factor),
        IS_POS=is_pos,
    )
    return y


class ModelNew_seed000(nn.Module):
    """
    Optimized model:
    - Uses cuDNN (torch.nn.Conv2d) for convolution
    - Uses a Triton kernel to fuse scaling and channel-wise minimum:
        y[n, 0, h, w] = min_c( conv(x)[n, c, h, w] * scale_factor )
    """
    def __init__(self, in_channels, out_channels, kernel_size, scale_factor):
        super(ModelNew_seed000, self).__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        self.scale_factor = float(scale_factor)

    def forward(self, x):
        x = self.conv(x)
        if x.is_cuda:
            return scale_min_triton(x, self.scale_factor)
        else:
            x = x * self.scale_factor
            return torch.min(x, dim=1, keepdim=True)[0]


# ---------------------------------------------------------------------------------------------------
# Seed 001 (verbatim): fully fused Triton conv + scale + channel-min
# ---------------------------------------------------------------------------------------------------
@triton.jit
def conv2d_scale_min_kernel(
    x_ptr, w_ptr, b_ptr, out_ptr,
    N, C_in, H, W, C_out,
    KH, KW,
    H_out, W_out,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_wn, stride_wc, stride_wkh, stride_wkw,
    stride_on, stride_oc, stride_oh, stride_ow,
    scale,
    BLOCK_M: tl.constexpr,  # tile over P = N * H_out * W_out
    BLOCK_N: tl.constexpr,  # tile over C_out (reduced)
    BLOCK_K: tl.constexpr,  # tile over K = C_in * KH * KW
):
    # Program id over flattened spatial positions P = N * H_out * W_out
    pid_m = tl.program_id(0)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)

    P = N * H_out * W_out
    K = C_in * KH * KW
    HW_out = H_out * W_out

    # Mask for valid P
    mask_m = offs_m < P

    # Decode flattened M index -> (n, oh, ow)
    n_idx = offs_m // HW_out
    rem = offs_m % HW_out
    oh_idx = rem // W_out
    ow_idx = rem % W_out

    # Initialize running minimum over C_out for each position in BLOCK_M
    INF = 1e30
    curr_min = tl.full((BLOCK_M,), INF, dtype=tl.float32)

    # Loop over output-channel tiles (reduction dimension)
    for oc0 in range(0, C_out, BLOCK_N):
        offs_n = oc0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < C_out

        # Accumulator for this [M, BLOCK_N] tile (FP32)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)

        # Loop over K dimension
        for k0 in range(0, K, BLOCK_K):
            offs_k = k0 + tl.arange(0, BLOCK_K)
            mask_k = offs_k < K

            # Map flattened K index -> (ic, kh, kw)
            ic = offs_k // (KH * KW)
            rem_k = offs_k % (KH * KW)
            kh = rem_k // KW
            kw = rem_k % KW

            # -------- Load input tile A: [BLOCK_M, BLOCK_K] --------
            ih = oh_idx[:, None] + kh[None, :]
            iw = ow_idx[:, None] + kw[None, :]

            x_offsets = (
                n_idx[:, None] * stride_xn
                + ic[None, :] * stride_xc
                + ih * stride_xh
                + iw * stride_xw
            )
            x_ptrs = x_ptr + x_offsets
            mask_x = mask_m[:, None] & mask_k[None, :]
            x_vals = tl.load(x_ptrs, mask=mask_x, other=0.0)

            # -------- Load weight tile B: [BLOCK_K, BLOCK_N] --------
            w_offsets = (
                offs_n[None, :] * stride_wn
                + ic[:, None] * stride_wc
                + kh[:, None] * stride_wkh
                + kw[:, None] * stride_wkw
            )
            w_ptrs = w_ptr + w_offsets
            mask_w = mask_k[:, None] & mask_n[None, :]
            w_vals = tl.load(w_ptrs, mask=mask_w, other=0.0)

            # Matrix multiply accumulate: [M,K] x [K,N] -> [M,N]
            acc += tl.dot(x_vals, w_vals)

        # -------- Fuse bias add & scale, then reduce over BLOCK_N --------
        bias = tl.load(b_ptr + offs_n, mask=mask_n, other=0.0)
        bias = bias.to(acc.dtype)
        acc = acc + bias[None, :]
        acc = acc * scale

        # Mask out invalid channels in this tile with +INF so they don't affect min
        acc = tl.where(mask_n[None, :], acc, INF)

        # Row-wise min over BLOCK_N -> shape [BLOCK_M]
        tile_min = tl.min(acc, axis=1)
        curr_min = tl.minimum(curr_min, tile_min)

    # -------- Store final per-position minimum (single output store) --------
    out_offsets = (
        n_idx * stride_on
        + oh_idx * stride_oh
        + ow_idx * stride_ow
    )
    out_ptrs = out_ptr + out_offsets
    tl.store(out_ptrs, curr_min, mask=mask_m)


def conv_scale_min_triton(x, weight, bias, scale_factor):
    """
    Fused Triton implementation of:
        y = Conv2d(x, weight, bias)
        y = y * scale_factor
        out = y.min(dim=1, keepdim=True)

    x:      [N, C_in, H, W]
    weight: [C_out, C_in, KH, KW]
    bias:   [C_out]
    out:    [N, 1, H_out, W_out]
    """
    x = x.contiguous()
    weight = weight.contiguous()
    bias = bias.contiguous()

    N, C_in, H, W = x.shape
    C_out, C_in_w, KH, KW = weight.shape
    assert C_in == C_in_w, "Input channels mismatch between x and weight"

    # No padding, stride=1
    H_out = H - KH + 1
    W_out = W - KW + 1

    # Final output has single channel (min over C_out)
    out = torch.empty((N, 1, H_out, W_out), device=x.device, dtype=x.dtype)

    # Strides
    stride_xn, stride_xc, stride_xh, stride_xw = x.stride()
    stride_wn, stride_wc, stride_wkh, stride_wkw = weight.stride()
    stride_on, stride_oc, stride_oh, stride_ow = out.stride()

    P = N * H_out * W_out

    def grid(meta):
        return (triton.cdiv(P, meta["BLOCK_M"]),)

    # Tuned for Ada (4090); BLOCK_M large to amortize per-tile overhead
    conv2d_scale_min_kernel[grid](
        x, weight, bias, out,
        N, C_in, H, W, C_out,
        KH, KW,
        H_out, W_out,
        stride_xn, stride_xc, stride_xh, stride_xw,
        stride_wn, stride_wc, stride_wkh, stride_wkw,
        stride_on, stride_oc, stride_oh, stride_ow,
        scale_factor,
        BLOCK_M=128,
        BLOCK_N=32,
        BLOCK_K=32,
        num_warps=4,
        num_stages=2,
    )
    return out


class ModelNew_seed001(nn.Module):
    """
    Fused Triton model:
        y = Conv2d(x, weight, bias)
        y = y * scale_factor
        out = y.min(dim=1, keepdim=True)
    Implemented in a single kernel with only one global store of the final result.
    """
    def __init__(self, in_channels, out_channels, kernel_size, scale_factor):
        super(ModelNew_seed001, self).__init__()
        if isinstance(kernel_size, int):
            kh = kw = kernel_size
        else:
            kh, kw = kernel_size
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kh, kw)
        )
        self.bias = nn.Parameter(torch.randn(out_channels))
        self.scale_factor = float(scale_factor)

    def forward(self, x):
        # Expect x: [N, C_in, H, W] on CUDA
        return conv_scale_min_triton(x, self.weight, self.bias, self.scale_factor)


# ---------------------------------------------------------------------------------------------------
# Advisor-guided steps from seed 001: the seed's kernel, other launch parameters
# ---------------------------------------------------------------------------------------------------
def conv_scale_min_triton_cfg(x, weight, bias, scale_factor, BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages):
    """Seed 001's kernel with explicit launch parameters (the seed's wrapper hard-codes them)."""
    x, weight, bias = x.contiguous(), weight.contiguous(), bias.contiguous()
    N, C_in, H, W = x.shape
    C_out, _, KH, KW = weight.shape
    H_out, W_out = H - KH + 1, W - KW + 1
    out = torch.empty((N, 1, H_out, W_out), device=x.device, dtype=x.dtype)
    grid = (triton.cdiv(N * H_out * W_out, BLOCK_M),)
    conv2d_scale_min_kernel[grid](
        x, weight, bias, out, N, C_in, H, W, C_out, KH, KW, H_out, W_out,
        *x.stride(), *weight.stride(), *out.stride(), scale_factor,
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, num_warps=num_warps, num_stages=num_stages,
    )
    return out


class ModelNew_seed001_bm64(ModelNew_seed001):
    """Seed 001 after "registers > 128: reduce BLOCK_* by half" (BLOCK_M 128 -> 64)."""

    def forward(self, x):
        return conv_scale_min_triton_cfg(x, self.weight, self.bias, self.scale_factor, 64, 32, 32, 4, 2)


class ModelNew_seed001_bn128(ModelNew_seed001):
    """Seed 001 with BLOCK_N = C_out = 128: the x gather inside the BLOCK_N loop no longer repeats 4 times."""

    def forward(self, x):
        return conv_scale_min_triton_cfg(x, self.weight, self.bias, self.scale_factor, 128, 128, 32, 4, 2)


# ---------------------------------------------------------------------------------------------------
# ModelNew: fully fused implicit GEMM on the tensor cores, bias + scale + channel-min in the epilogue
# ---------------------------------------------------------------------------------------------------
# x is converted once to NHWC fp16 by one Triton transpose kernel (nchw_to_nhwc_fp16). One
# program computes BLOCK_M output pixels of one output row (n, oh) for all C_OUT channels, so the channel minimum
# is finished inside the program and only N*H_out*W_out floats are written. K runs over (kh, kw, c_in) in BLOCK_K
# slices. For a fixed tap (kh, kw), the A tile is a contiguous [BLOCK_M, BLOCK_K] box of the [N*H*W, C_in] matrix
# starting at pixel (n, oh+kh, kw+ow0), loaded by TMA; rows past the end of the image row wrap into the next row
# but only feed output pixels ow >= W_out, which the store masks. The weights are repacked to [KH*KW*C_in, C_out]
# so that each K slice is one [BLOCK_K, C_OUT] box. fp16 has the same 10-bit mantissa as TF32, and rounds to
# nearest like cuDNN's TF32 path: the error against float64 equals eager PyTorch's (1.16e-4 in the sweeps).
from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: E402


def _set_tma_block_shapes(nargs):
    """Autotune pre-hook: the TMA boxes follow the config being run."""
    nargs["a_desc"].block_shape = [nargs["BLOCK_M"], nargs["BLOCK_K"]]
    nargs["b_desc"].block_shape = [nargs["BLOCK_K"], nargs["C_OUT"]]


@triton.autotune(
    configs=[
        triton.Config({"BLOCK_M": 128, "BLOCK_K": 32}, num_warps=4, num_stages=3, pre_hook=_set_tma_block_shapes),
        triton.Config({"BLOCK_M": 256, "BLOCK_K": 64}, num_warps=8, num_stages=3, pre_hook=_set_tma_block_shapes),
        triton.Config({"BLOCK_M": 128, "BLOCK_K": 64}, num_warps=4, num_stages=2, pre_hook=_set_tma_block_shapes),
    ],
    key=["W_out", "C_IN", "C_OUT"],
)
@triton.jit
def conv_min_tma_kernel(
    a_desc, b_desc, b_ptr, out_ptr,
    H, W, H_out, W_out,
    scale,
    C_IN: tl.constexpr, C_OUT: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_w = tl.program_id(0)
    row = tl.program_id(1)  # n * H_out + oh
    n = row // H_out
    oh = row % H_out
    ow0 = pid_w * BLOCK_M
    STEPS: tl.constexpr = C_IN // BLOCK_K
    acc = tl.zeros((BLOCK_M, C_OUT), dtype=tl.float32)
    for ks in range(0, KH * KW * STEPS):
        tap = ks // STEPS
        r0 = (n * H + oh + tap // KW) * W + ow0 + tap % KW
        a = a_desc.load([r0, (ks % STEPS) * BLOCK_K])
        b = b_desc.load([ks * BLOCK_K, 0])
        acc = tl.dot(a, b, acc)
    offs_n = tl.arange(0, C_OUT)
    bias = tl.load(b_ptr + offs_n)
    res = tl.min((acc + bias[None, :]) * scale, axis=1)
    offs_m = ow0 + tl.arange(0, BLOCK_M)
    tl.store(out_ptr + row.to(tl.int64) * W_out + offs_m, res, mask=offs_m < W_out)


@triton.jit
def nchw_to_nhwc_fp16_kernel(x_ptr, y_ptr, HW, C: tl.constexpr, BLOCK_P: tl.constexpr):
    """One pass: x[n, c, p] (fp32) -> y[n, p, c] (fp16), a [C, BLOCK_P] tile transposed in the program."""
    pid_p = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_c = tl.arange(0, C)
    mask = offs_p[None, :] < HW
    tile = tl.load(x_ptr + n * C * HW + offs_c[:, None] * HW + offs_p[None, :], mask=mask)
    tl.store(y_ptr + n * HW * C + offs_p[:, None] * C + offs_c[None, :],
             tl.trans(tile).to(tl.float16), mask=tl.trans(mask))


def nchw_to_nhwc_fp16(x):
    """NCHW fp32 -> NHWC fp16 in one kernel (PyTorch's permute + cast takes two passes, one of them a slow
    strided copy: 0.36 + 1.16 ms under ncu on the H200, examples/runs/improved)."""
    N, C, H, W = x.shape
    x = x.contiguous()
    y = torch.empty((N, H, W, C), device=x.device, dtype=torch.float16)
    BLOCK_P = 64
    nchw_to_nhwc_fp16_kernel[(triton.cdiv(H * W, BLOCK_P), N)](x, y, H * W, C=C, BLOCK_P=BLOCK_P, num_warps=4)
    return y


def conv_min_fused(x, weight, bias, scale_factor):
    """Fused conv (stride 1, no padding) + bias + scale + min over output channels; fp32 in and out."""
    N, C_in, H, W = x.shape
    C_out, _, KH, KW = weight.shape
    assert C_in % 64 == 0 and (C_in & (C_in - 1)) == 0 and C_out in (16, 32, 64, 128, 256), "tiles assume C_in = 2^k >= 64, C_out = 2^k"
    H_out, W_out = H - KH + 1, W - KW + 1
    x2d = nchw_to_nhwc_fp16(x).view(N * H * W, C_in)
    w2d = weight.permute(2, 3, 1, 0).reshape(KH * KW * C_in, C_out).to(torch.float16).contiguous()
    out = torch.empty((N, 1, H_out, W_out), device=x.device, dtype=torch.float32)
    # Placeholder boxes: the autotune pre-hook sets them for the config being run.
    a_desc = TensorDescriptor(x2d, list(x2d.shape), list(x2d.stride()), [64, 32])
    b_desc = TensorDescriptor(w2d, list(w2d.shape), list(w2d.stride()), [32, C_out])

    def grid(meta):
        return (triton.cdiv(W_out, meta["BLOCK_M"]), N * H_out)

    conv_min_tma_kernel[grid](
        a_desc, b_desc, bias.contiguous(), out, H, W, H_out, W_out, float(scale_factor),
        C_IN=C_in, C_OUT=C_out, KH=KH, KW=KW,
    )
    return out


class ModelNew(nn.Module):
    """Fully fused conv + scale + channel-min; same parameters as ``Model`` (``conv.weight``, ``conv.bias``)."""

    def __init__(self, in_channels, out_channels, kernel_size, scale_factor):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        self.scale_factor = float(scale_factor)

    def forward(self, x):
        return conv_min_fused(x, self.conv.weight, self.conv.bias, self.scale_factor)
