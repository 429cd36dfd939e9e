"""Memory-bound fusion of three inputs: ``out = gelu_tanh(a * b + c) * scale``, 64M fp32 elements each.

Four tensors of 256 MB each (three read, one written) are far larger than the 50-60 MB L2 of an H100/H200,
so every byte comes from DRAM once: the kernel can only be as fast as the memory system.

Rules each variant is designed to trigger (and why):
- ``ModelNew_block64_w8`` (BLOCK_SIZE 64, num_warps 8): 64 elements spread over 256 threads, so most
  threads replicate the work of others, each warp issues tiny 8-byte-per-thread loads and the grid has
  1M programs of which each does almost nothing: DRAM throughput stays far below the copy bandwidth while
  the SM is busy with index math and block launches. Designed to make the *memory-bound* rule stay quiet
  (DRAM % low) and to show *low L2 hit rate with heavy DRAM traffic* and *multi-input fusion* still firing:
  the fix is the block size, not the fusion.
- ``ModelNew`` (BLOCK_SIZE 1024, num_warps 4): 8 contiguous floats per thread (two 16-byte vector loads),
  65536 programs. Designed to trigger *memory-bound* (DRAM throughput near peak, SM throughput low),
  *low L2 hit rate with heavy DRAM traffic* (streaming data used once, 1 GB moved) and *multi-input fusion*
  (3 distinct ``tl.load`` bases), and to keep *register pressure*, *spills*, *grid smaller than SM count*
  and *tail effect* quiet (few registers, 65536 programs = many waves).

The GELU uses the tanh approximation with ``tanh(z) = 1 - 2 / (exp(2 z) + 1)`` because Triton 3.6 has no
``tl.tanh``; it is exact at both ends (exp overflow gives 1, underflow gives -1).
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ELEMENTS = 64 * 1024 * 1024  # 256 MB per fp32 tensor, >> L2
SCALE = 0.5


class Model(nn.Module):
    """Reference: ``gelu_tanh(a * b + c) * scale`` in plain PyTorch (three separate kernels or more)."""

    def __init__(self, scale):
        super().__init__()
        self.scale = float(scale)

    def forward(self, a, b, c):
        return torch.nn.functional.gelu(a * b + c, approximate="tanh") * self.scale


def get_inputs():
    return [torch.randn(N_ELEMENTS), torch.randn(N_ELEMENTS), torch.randn(N_ELEMENTS)]


def get_init_inputs():
    return [SCALE]


@triton.jit
def fma_gelu_scale_kernel(
    a_ptr, b_ptr, c_ptr, out_ptr,
    n_elements,
    scale,
    BLOCK_SIZE: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n_elements
    a = tl.load(a_ptr + offs, mask=mask, other=0.0)
    b = tl.load(b_ptr + offs, mask=mask, other=0.0)
    c = tl.load(c_ptr + offs, mask=mask, other=0.0)
    x = a * b + c
    z = 0.7978845608028654 * (x + 0.044715 * x * x * x)  # sqrt(2/pi) * (x + 0.044715 x^3)
    tanh_z = 1.0 - 2.0 / (tl.exp(2.0 * z) + 1.0)
    y = 0.5 * x * (1.0 + tanh_z) * scale
    tl.store(out_ptr + offs, y, mask=mask)


def fma_gelu_scale(a, b, c, scale, *, BLOCK_SIZE=1024, num_warps=4):
    """Launch the fused kernel on flat views of ``a``, ``b``, ``c``; returns a tensor shaped like ``a``."""
    a, b, c = a.contiguous(), b.contiguous(), c.contiguous()
    out = torch.empty_like(a)
    n_elements = a.numel()
    grid = (triton.cdiv(n_elements, BLOCK_SIZE),)
    fma_gelu_scale_kernel[grid](
        a, b, c, out, n_elements, float(scale), BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps,
    )
    return out


class ModelNew_block64_w8(nn.Module):
    """Mistuned: BLOCK_SIZE 64 with 8 warps (poor coalescing, replicated threads, 1M tiny programs)."""

    config = dict(BLOCK_SIZE=64, num_warps=8)

    def __init__(self, scale):
        super().__init__()
        self.scale = float(scale)

    def forward(self, a, b, c):
        return fma_gelu_scale(a, b, c, self.scale, **self.config)


class ModelNew(nn.Module):
    """Tuned: BLOCK_SIZE 1024 with 4 warps (8 contiguous floats per thread, vectorised loads)."""

    config = dict(BLOCK_SIZE=1024, num_warps=4)

    def __init__(self, scale):
        super().__init__()
        self.scale = float(scale)

    def forward(self, a, b, c):
        return fma_gelu_scale(a, b, c, self.scale, **self.config)
