"""A small Triton program for recording every ncu output format from one run (bench/device/formats.sh).

Three kernels of different kinds, each launched twice (the first launch compiles): a row softmax
(memory-bound), a tl.dot matmul (tensor cores) and a tiny elementwise add on a grid smaller than the SM count.
It prints a few lines of its own, as real programs do, so direct ncu runs interleave program output with ncu's.
"""

import torch
import triton
import triton.language as tl


@triton.jit
def softmax_kernel(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < n_cols
    x = tl.load(x_ptr + row * n_cols + offs, mask=mask, other=-float("inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    tl.store(y_ptr + row * n_cols + offs, e / tl.sum(e, axis=0), mask=mask)


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    pm = tl.program_id(0)
    pn = tl.program_id(1)
    rm = pm * BM + tl.arange(0, BM)
    rn = pn * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, K, BK):
        a = tl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        b = tl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :])
        acc += tl.dot(a, b)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc.to(tl.float16))


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


def main() -> None:
    torch.manual_seed(0)
    print("formats_app: building inputs", flush=True)
    x = torch.randn(16384, 4096, device="cuda")
    y = torch.empty_like(x)
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
    b = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
    c = torch.empty(4096, 4096, device="cuda", dtype=torch.float16)
    u = torch.randn(64 * 1024, device="cuda")
    v = torch.randn_like(u)
    w = torch.empty_like(u)
    for i in range(2):
        softmax_kernel[(x.shape[0],)](x, y, x.shape[1], BLOCK=4096, num_warps=8)
        matmul_kernel[(4096 // 128, 4096 // 128)](a, b, c, 4096, 4096, 4096, BM=128, BN=128, BK=32,
                                                  num_warps=4, num_stages=3)
        add_kernel[(triton.cdiv(u.numel(), 1024),)](u, v, w, u.numel(), BLOCK=1024, num_warps=4)
        torch.cuda.synchronize()
        print(f"formats_app: iteration {i} done", flush=True)
    err = (y - torch.softmax(x, dim=-1)).abs().max().item()
    print(f"formats_app: softmax max abs error {err:.3e}", flush=True)


if __name__ == "__main__":
    main()
