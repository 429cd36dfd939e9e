"""Launch one small kernel N times inside the NVTX range ``ncu_advisor`` (for the 10,000-launch report).

Usage: ncu ... python bench/many_launches.py [N]
"""

import sys

import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
x = torch.ones(4096, device="cuda")
x.add_(1.0)
torch.cuda.synchronize()
torch.cuda.nvtx.range_push("ncu_advisor")
for _ in range(n):
    x.add_(1.0)
torch.cuda.synchronize()
torch.cuda.nvtx.range_pop()
print("value", float(x[0]))
