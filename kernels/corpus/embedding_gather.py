"""Embedding lookup (a row gather): ``weight[ids]`` for a (32000, 4096) bf16 table and 32768 int64 token ids,
out (32768, 4096) bf16.

Each program copies ``BLOCK_T`` tokens' rows, ``BLOCK_D`` columns of each: it loads the ids, then gathers
``weight[ids, cols]`` and stores the tile. A 2-D grid of ``meta``: ``(cdiv(n_tokens, BLOCK_T),
cdiv(dim, BLOCK_D))``.

Roofline floor: 268 MB of gathered rows read (the table is 262 MB; random ids repeat rows, some reads hit
L2) + 268 MB written = 537 MB (0.125 ms at ~4.3 TB/s); no arithmetic.

Variants:
- ``ModelNew`` (the start): the launch helper's defaults (``embedding_lookup(ids, weight)`` with
  ``BLOCK_T=1, BLOCK_D=64, num_warps=4`` in its signature): 2 million programs that each move 128 bytes
  with 128 threads.
- ``ModelNew_best``: the same helper and kernel with the sweep's best config from its class attribute
  ``config``.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

N_TOKENS = 32768
VOCAB = 32000
DIM = 4096

INTERPRET_SHAPES = dict(N_TOKENS=37, VOCAB=50, DIM=100)
RTOL = 0.0  # a copy: exact
# 3 x 4 x 4 = 48 configs; no loop, so num_stages is not swept.
SWEEP_SPACE = dict(
    BLOCK_T=[1, 4, 16],
    BLOCK_D=[64, 256, 1024, 4096],
    num_warps=[1, 2, 4, 8],
)


class Model(nn.Module):
    """Reference: ``nn.functional.embedding(ids, weight)``."""

    def __init__(self, vocab, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab, dim).to(torch.bfloat16))

    def forward(self, ids):
        return torch.nn.functional.embedding(ids, self.weight)


def get_inputs():
    return [torch.randint(0, VOCAB, (N_TOKENS,))]


def get_init_inputs():
    return [VOCAB, DIM]


def roofline():
    """DRAM bytes (one gathered row per token read, out written, the ids) of one call; no arithmetic."""
    return dict(bytes=2 * N_TOKENS * DIM * 2 + N_TOKENS * 8, flops=0)


@triton.jit
def embedding_gather_kernel(ids_ptr, w_ptr, out_ptr, n_tokens, dim, stride_w, stride_out,
                            BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    toks = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    tok_mask = toks < n_tokens
    mask = tok_mask[:, None] & (cols < dim)[None, :]
    ids = tl.load(ids_ptr + toks, mask=tok_mask, other=0).to(tl.int64)
    rows = tl.load(w_ptr + ids[:, None] * stride_w + cols[None, :], mask=mask)
    tl.store(out_ptr + toks.to(tl.int64)[:, None] * stride_out + cols[None, :], rows, mask=mask)


def embedding_lookup(ids, weight, *, BLOCK_T=1, BLOCK_D=64, num_warps=4):
    """Gather ``weight[ids]`` for a 1-D tensor of ids."""
    n_tokens = ids.shape[0]
    dim = weight.shape[1]
    out = torch.empty((n_tokens, dim), device=weight.device, dtype=weight.dtype)
    grid = lambda meta: (triton.cdiv(n_tokens, meta["BLOCK_T"]), triton.cdiv(dim, meta["BLOCK_D"]))  # noqa: E731
    embedding_gather_kernel[grid](
        ids, weight, out, n_tokens, dim, weight.stride(0), out.stride(0),
        BLOCK_T=BLOCK_T, BLOCK_D=BLOCK_D, num_warps=num_warps,
    )
    return out


class ModelNew(nn.Module):
    """Start: the helper's defaults (one token, 64 columns, 4 warps per program)."""

    def __init__(self, vocab, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab, dim, dtype=torch.bfloat16))

    def forward(self, ids):
        return embedding_lookup(ids.contiguous(), self.weight)


class ModelNew_best(nn.Module):
    """The sweep's best config for the same kernel (``config`` is rewritten by ``sweep_corpus.py --fill``)."""

    config = dict(BLOCK_T=4, BLOCK_D=256, num_warps=2)  # FILLED FROM SWEEP: 0.1190 ms (H200 2026-11-30)

    def __init__(self, vocab, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab, dim, dtype=torch.bfloat16))

    def forward(self, ids):
        return embedding_lookup(ids.contiguous(), self.weight, **self.config)
