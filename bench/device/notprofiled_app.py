"""A program with launches ncu cannot profile, for the "not profiled" fixtures (issue 11).

Modes (argv[1]):
- ``fault``: one good Triton kernel launch, then one that stores far outside its buffer (illegal address).
- ``replay``: launches whose grid differs from run to run (random), for ``--replay-mode application``, which
  re-runs the program once per pass and must match the launches across runs.
"""

import os
import random
import sys

import torch
import triton
import triton.language as tl


@triton.jit
def scale_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2.0, mask=mask)


@triton.jit
def stray_store_kernel(y_ptr, stride, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(y_ptr + offs * stride, offs.to(tl.float32))  # no mask: far past the end of y


def main() -> None:
    mode = sys.argv[1]
    x = torch.randn(1 << 20, device="cuda")
    y = torch.empty_like(x)
    if mode == "fault":
        scale_kernel[(x.numel() // 1024,)](x, y, x.numel(), BLOCK=1024)
        torch.cuda.synchronize()
        stray_store_kernel[(1,)](y, 1 << 34, BLOCK=128)
        torch.cuda.synchronize()
    else:
        rng = random.Random(int.from_bytes(os.urandom(4), "little"))
        for _ in range(3):
            n = rng.choice([1 << 16, 1 << 18, 1 << 20])
            scale_kernel[(n // 1024,)](x, y, n, BLOCK=1024)
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
