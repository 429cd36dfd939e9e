"""Softmax cross-entropy over a 128k vocabulary: per-row loss ``logsumexp(logits) - logits[target]``,
logits (2048, 131072) bf16, targets int64, loss fp32 (``reduction="none"``, no ignore index).

One program per row (grid ``(n_rows,)``, fixed, independent of the block size) streams its 256 KB row once in
chunks of ``BLOCK_SIZE``, keeping an online logsumexp: a running maximum ``m`` and a running sum ``s`` of
``exp(x - m)``, rescaled by ``exp(m_old - m_new)`` whenever a chunk raises the maximum. The target's logit is
one extra load.

Roofline floor: 512 MB read once (0.12 ms at ~4.3 TB/s), 8 KB written; about 4 FLOP and one exponential per
element: memory-bound, though the exponentials keep the SM busier than a plain reduction.

Variants:
- ``ModelNew`` (the start): launch values kept as module constants (``BLOCK_SIZE = 1024``,
  ``NUM_WARPS = 4``, ``NUM_STAGES = 1``), as an author who "tunes" by editing the top of the file does:
  128 chunks per row, one reduction and one rescale per chunk, no software pipelining.
- ``ModelNew_best``: the same kernel with the sweep's best config from its class attribute ``config``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_ROWS = 2048
VOCAB = 131072

# The start's launch configuration (used by ModelNew only).
BLOCK_SIZE = 1024
NUM_WARPS = 4
NUM_STAGES = 1

INTERPRET_SHAPES = dict(N_ROWS=6, VOCAB=1000)
RTOL = 1e-5
# 6 x 4 x 3 = 72 configs.
SWEEP_SPACE = dict(
    BLOCK_SIZE=[512, 1024, 2048, 4096, 8192, 16384],
    num_warps=[4, 8, 16, 32],
    num_stages=[1, 2, 3],
)


class Model(nn.Module):
    """Reference: ``cross_entropy(logits, target, reduction="none")`` in fp32 (or float64)."""

    def __init__(self):
        super().__init__()

    def forward(self, logits, target):
        h = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return torch.nn.functional.cross_entropy(h, target, reduction="none")


def get_inputs():
    logits = (2.0 * torch.randn(N_ROWS, VOCAB)).to(torch.bfloat16)
    target = torch.randint(0, VOCAB, (N_ROWS,))
    return [logits, target]


def get_init_inputs():
    return []


def roofline():
    """DRAM bytes (logits read once, targets, losses) and FLOPs of one call (an exponential counted as 1)."""
    return dict(bytes=N_ROWS * VOCAB * 2 + N_ROWS * 12, flops=4 * N_ROWS * VOCAB)


@triton.jit
def cross_entropy_fwd_kernel(logits_ptr, target_ptr, loss_ptr, n_cols, stride_row, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = logits_ptr + row * stride_row
    # The first chunk seeds the running max and sum, so both are finite from the start.
    cols = tl.arange(0, BLOCK_SIZE)
    x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
    m_run = tl.max(x, axis=0)
    s_run = tl.sum(tl.exp(x - m_run), axis=0)
    for start in range(BLOCK_SIZE, n_cols, BLOCK_SIZE):
        cols = start + tl.arange(0, BLOCK_SIZE)
        x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m_run, tl.max(x, axis=0))
        s_run = s_run * tl.exp(m_run - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m_run = m_new
    target = tl.load(target_ptr + row)
    x_target = tl.load(base + target).to(tl.float32)
    tl.store(loss_ptr + row, m_run + tl.log(s_run) - x_target)


class ModelNew(nn.Module):
    """Start: module-constant launch configuration (1024-element chunks, 4 warps, 1 stage)."""

    def forward(self, logits, target):
        logits = logits.contiguous()
        n_rows, n_cols = logits.shape
        loss = torch.empty(n_rows, device=logits.device, dtype=torch.float32)
        cross_entropy_fwd_kernel[(n_rows,)](
            logits, target, loss, n_cols, logits.stride(0),
            BLOCK_SIZE=BLOCK_SIZE, num_warps=NUM_WARPS, num_stages=NUM_STAGES,
        )
        return loss


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_SIZE=8192, num_warps=4, num_stages=2)  # FILLED FROM SWEEP: 0.1463 ms (H200 2026-11-30)

    def forward(self, logits, target):
        logits = logits.contiguous()
        n_rows, n_cols = logits.shape
        loss = torch.empty(n_rows, device=logits.device, dtype=torch.float32)
        cross_entropy_fwd_kernel[(n_rows,)](logits, target, loss, n_cols, logits.stride(0), **self.config)
        return loss
