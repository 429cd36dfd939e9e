"""A gated recurrence over three inputs, 16M fp32 elements each:
``h = a; s = 0; repeat STEPS times: h = tanh(h * b + c); s += h``, output ``a + s``.

Every element needs ``a`` (the residual), ``b``, ``c`` and the loop-carried ``h`` and ``s`` live for the
whole loop, so the registers a thread needs grow with the elements it owns: BLOCK_SIZE / (32 x num_warps)
of each of the five.
That makes the block size and warp count directly decide registers, occupancy and spilling, with the
same arithmetic in every variant.

Rules each variant is designed to trigger (and why; register figures are ptxas -v for sm_90a from
Triton 3.6, compiled without a GPU; the ncu runs on the GPU machine are the ground truth):
- ``ModelNew_block8192_w1`` (BLOCK_SIZE 8192, num_warps 1): 256 elements of each live tensor per thread,
  about 1280 live values against a 255-register ceiling. Designed to trigger *spills* (ptxas: 64
  registers, 13.6 KB of spill stores and 14.0 KB of spill loads per thread; ncu: local-memory bytes
  ``l1tex__t_bytes_pipe_lsu_mem_local_op_ld/st.sum`` far above zero). Note that ptxas keeps the register
  count low here, so a "> 128 registers" proxy would miss this spill: only the local-memory traffic shows it.
  Side effect: 2048 one-warp programs fill 0.48 of one wave (32 blocks per SM), so a "less than one wave"
  grid rule may fire too.
- ``ModelNew_block1024_w1`` (BLOCK_SIZE 1024, num_warps 1): 32 elements of each tensor per thread,
  168 registers (ptxas) with a token 4-byte spill. Designed to trigger *register pressure* (> 128
  registers) and *register-limited occupancy* (65536 / (168 x 32) = 12 one-warp blocks per SM, 19%
  theoretical occupancy), with local-memory traffic tiny next to the 8192 variant: a test of where a
  spill rule puts its threshold. The fix is more warps for the same tile, not a smaller tile.
- ``ModelNew`` (BLOCK_SIZE 1024, num_warps 8): 4 elements per thread, 30 registers (ptxas), no spills,
  full occupancy (8 blocks of 8 warps per SM: registers and warps allow the same). Designed to keep
  register pressure, spills and occupancy rules quiet and to trigger *memory-bound* and *multi-input
  fusion* (3 distinct ``tl.load`` bases).

``tanh(z) = 1 - 2 / (exp(2 z) + 1)`` because Triton 3.6 has no ``tl.tanh``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ELEMENTS = 16 * 1024 * 1024  # 64 MB per fp32 tensor, more than L2
STEPS = 8


class Model(nn.Module):
    """Reference: the recurrence in plain PyTorch (two kernels per step)."""

    def __init__(self, steps):
        super().__init__()
        self.steps = int(steps)

    def forward(self, a, b, c):
        h = a
        total = torch.zeros_like(a)
        for _ in range(self.steps):
            h = torch.tanh(h * b + c)
            total = total + h
        return a + total


def get_inputs():
    return [torch.randn(N_ELEMENTS), torch.randn(N_ELEMENTS), torch.randn(N_ELEMENTS)]


def get_init_inputs():
    return [STEPS]


@triton.jit
def gated_recurrence_kernel(
    a_ptr, b_ptr, c_ptr, out_ptr,
    n_elements,
    steps,
    BLOCK_SIZE: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n_elements
    a = tl.load(a_ptr + offs, mask=mask, other=0.0)
    b = tl.load(b_ptr + offs, mask=mask, other=0.0)
    c = tl.load(c_ptr + offs, mask=mask, other=0.0)
    h = a
    total = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    # A runtime loop (steps is not constexpr): h and total are loop-carried, a stays live for the residual.
    for _ in range(steps):
        z = h * b + c
        h = 1.0 - 2.0 / (tl.exp(2.0 * z) + 1.0)
        total += h
    tl.store(out_ptr + offs, a + total, mask=mask)


def gated_recurrence(a, b, c, steps, *, BLOCK_SIZE=1024, num_warps=8):
    """Launch the recurrence on flat views of ``a``, ``b``, ``c``; returns a tensor shaped like ``a``."""
    a, b, c = a.contiguous(), b.contiguous(), c.contiguous()
    out = torch.empty_like(a)
    n_elements = a.numel()
    grid = (triton.cdiv(n_elements, BLOCK_SIZE),)
    gated_recurrence_kernel[grid](
        a, b, c, out, n_elements, int(steps), BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps,
    )
    return out


class ModelNew_block8192_w1(nn.Module):
    """Mistuned: 8192 elements in one warp (about 1280 live values per thread: spills to local memory)."""

    config = dict(BLOCK_SIZE=8192, num_warps=1)

    def __init__(self, steps):
        super().__init__()
        self.steps = int(steps)

    def forward(self, a, b, c):
        return gated_recurrence(a, b, c, self.steps, **self.config)


class ModelNew_block1024_w1(nn.Module):
    """Mistuned: 1024 elements in one warp (168 registers, occupancy limited by registers)."""

    config = dict(BLOCK_SIZE=1024, num_warps=1)

    def __init__(self, steps):
        super().__init__()
        self.steps = int(steps)

    def forward(self, a, b, c):
        return gated_recurrence(a, b, c, self.steps, **self.config)


class ModelNew(nn.Module):
    """Tuned: 1024 elements over 8 warps (4 per thread), no spills, full occupancy."""

    config = dict(BLOCK_SIZE=1024, num_warps=8)

    def __init__(self, steps):
        super().__init__()
        self.steps = int(steps)

    def forward(self, a, b, c):
        return gated_recurrence(a, b, c, self.steps, **self.config)
