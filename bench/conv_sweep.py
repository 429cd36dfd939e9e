"""Time the conv-scale-min candidates on the GPU in one run (do_bench medians, correctness vs float64).

Usage: python bench/conv_sweep.py OUT.jsonl
Prints one JSON record per candidate and a table last. It sweeps the pointer-load implicit GEMM
(``conv_min_igemm``) of the first fused candidate, which lives on in examples/baseline/fused.py (kernels/fused.py
as it was when bench/results/2026-11-21-conv-sweep-h200.* were recorded).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import triton
import triton.testing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ncu_advisor.collect.profile.child import load_module  # noqa: E402

fused = load_module(Path(__file__).resolve().parent.parent / "examples" / "baseline" / "fused.py")


def bench(fn, reps=3):
    fn()
    torch.cuda.synchronize()
    return sorted(triton.testing.do_bench(fn, warmup=50, rep=200, return_mode="median") for _ in range(reps))


def main() -> None:
    out_path = Path(sys.argv[1])
    torch.manual_seed(0)
    init = fused.get_init_inputs()
    ref_model = fused.Model(*init).cuda().eval()
    x = fused.get_inputs()[0].cuda()
    w, b, s = ref_model.conv.weight.detach(), ref_model.conv.bias.detach(), float(init[3])
    with torch.no_grad():
        ref = torch.nn.functional.conv2d(x.double(), w.double(), b.double()) * s
        ref = ref.min(dim=1, keepdim=True)[0]
    records = []

    def record(name, fn, **extra):
        t0 = time.time()
        try:
            with torch.no_grad():
                out = fn()
                torch.cuda.synchronize()
                rel = float((out.double() - ref).norm() / ref.norm())
                times = bench(fn)
            rec = dict(name=name, median_ms=times[1], min_ms=times[0], max_ms=times[2], rel_err=rel, **extra)
        except Exception as exc:  # a candidate that fails to compile is recorded, not fatal
            rec = dict(name=name, error=f"{type(exc).__name__}: {str(exc)[:300]}", **extra)
        rec["wall_s"] = round(time.time() - t0, 1)
        records.append(rec)
        print(json.dumps(rec), flush=True)
        with out_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")

    # copy bandwidth ceiling (bytes read + written)
    src = torch.empty(512 * 1024 * 1024, dtype=torch.float32, device="cuda").uniform_()
    dst = torch.empty_like(src)
    t = bench(lambda: dst.copy_(src))[1]
    record_bw = 2 * src.numel() * 4 / (t * 1e-3) / 1e12
    rec = dict(name="d2d_copy_2GiB", median_ms=t, tb_per_s=record_bw)
    print(json.dumps(rec)); records.append(rec)
    with out_path.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    del src, dst

    record("eager", lambda: ref_model(x))
    compiled = torch.compile(ref_model)
    record("torch.compile", lambda: compiled(x))
    for cls in ("ModelNew_seed000", "ModelNew_seed001"):
        m = getattr(fused, cls)(*init).cuda().eval()
        with torch.no_grad():
            for (pn, p) in m.named_parameters():
                src_name = pn if pn.startswith("conv.") else {"weight": "conv.weight", "bias": "conv.bias"}[pn]
                p.copy_(dict(ref_model.named_parameters())[src_name])
        record(cls, lambda m=m: m(x))

    cands = [
        # (channels_last, fp16, BM, BK, warps, stages)
        (False, False, 128, 32, 4, 3), (False, False, 128, 32, 8, 3), (False, False, 256, 32, 8, 3),
        (False, False, 128, 64, 8, 3), (False, False, 256, 64, 8, 2), (False, False, 128, 32, 8, 4),
        (False, True, 128, 32, 8, 3), (False, True, 128, 64, 8, 3), (False, True, 256, 32, 8, 3),
        (False, True, 256, 64, 8, 3), (False, True, 128, 64, 4, 4),
        (True, False, 128, 32, 8, 3), (True, False, 256, 32, 8, 3), (True, False, 128, 64, 4, 3),
        (True, True, 128, 64, 8, 3), (True, True, 256, 64, 8, 3), (True, True, 128, 32, 4, 4),
    ]
    for cl, fp16, bm, bk, nw, ns in cands:
        name = f"igemm{'_nhwc' if cl else ''}{'_fp16' if fp16 else '_tf32'}_m{bm}_k{bk}_w{nw}_s{ns}"
        record(name, lambda cl=cl, fp16=fp16, bm=bm, bk=bk, nw=nw, ns=ns: fused.conv_min_igemm(
            x, w, b, s, channels_last=cl, fp16=fp16, BLOCK_M=bm, BLOCK_K=bk, num_warps=nw, num_stages=ns),
            channels_last=cl, fp16=fp16, BLOCK_M=bm, BLOCK_K=bk, num_warps=nw, num_stages=ns)

    print(f"\n{'candidate':44s} {'ms':>8s} {'rel_err':>9s}")
    for r in records:
        if "error" in r:
            print(f"{r['name']:44s} {'ERR':>8s} {r['error'][:60]}")
        elif "rel_err" in r:
            print(f"{r['name']:44s} {r['median_ms']:8.3f} {r['rel_err']:9.2e}")
        else:
            print(f"{r['name']:44s} {r['median_ms']:8.3f} {r.get('tb_per_s', 0):.2f} TB/s")


if __name__ == "__main__":
    main()
