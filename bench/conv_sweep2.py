"""Second sweep: TMA candidates (bench/conv_candidates.py) against torch.compile, in one run.

Usage: python bench/conv_sweep2.py OUT.jsonl
"""

import json
import sys
import time
from pathlib import Path

import torch
import triton.testing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from conv_candidates import conv_min_tma, conv_min_tma_persistent  # noqa: E402

from ncu_advisor.collect.profile.child import load_module  # noqa: E402

fused = load_module(ROOT / "kernels" / "fused.py")


def bench(fn, reps=3):
    fn()
    torch.cuda.synchronize()
    return sorted(triton.testing.do_bench(fn, warmup=50, rep=200, return_mode="median") for _ in range(reps))


def main():
    out_path = Path(sys.argv[1])
    torch.manual_seed(0)
    init = fused.get_init_inputs()
    ref_model = fused.Model(*init).cuda().eval()
    x = fused.get_inputs()[0].cuda()
    w, b, s = ref_model.conv.weight.detach(), ref_model.conv.bias.detach(), float(init[3])
    with torch.no_grad():
        ref = (torch.nn.functional.conv2d(x.double(), w.double(), b.double()) * s).min(dim=1, keepdim=True)[0]
    rows = []

    def record(name, fn, check=True, **extra):
        t0 = time.time()
        try:
            with torch.no_grad():
                out = fn()
                torch.cuda.synchronize()
                rel = float((out.double() - ref).norm() / ref.norm()) if check else float('nan')
                t = bench(fn)
            rec = dict(name=name, median_ms=t[1], min_ms=t[0], max_ms=t[2], rel_err=rel, **extra)
        except Exception as exc:
            rec = dict(name=name, error=f"{type(exc).__name__}: {str(exc)[:300]}", **extra)
        rec["wall_s"] = round(time.time() - t0, 1)
        rows.append(rec)
        print(json.dumps(rec), flush=True)
        with out_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")

    compiled = torch.compile(ref_model)
    record("torch.compile", lambda: compiled(x))
    record("prepass_nhwc_fp16", lambda: x.permute(0, 2, 3, 1).to(torch.float16), check=False)
    for cfg in (dict(BLOCK_M=128, BLOCK_K=32, num_warps=4, num_stages=3), dict(BLOCK_M=256, BLOCK_K=64, num_warps=8, num_stages=3)):
        record("tma_nhwc_m{BLOCK_M}_k{BLOCK_K}_w{num_warps}_s{num_stages}".format(**cfg), lambda cfg=cfg: conv_min_tma(x, w, b, s, **cfg), **cfg)
    for flatten in (False, True):
        for bm, bk, nw, ns, pps in ((128, 32, 4, 3, 1), (128, 32, 4, 4, 1), (128, 32, 4, 3, 2), (128, 64, 4, 3, 1),
                                    (128, 64, 4, 4, 1), (128, 64, 8, 3, 1), (256, 32, 8, 3, 1), (256, 64, 8, 3, 1),
                                    (128, 32, 8, 4, 1), (128, 64, 4, 3, 2)):
            cfg = dict(BLOCK_M=bm, BLOCK_K=bk, num_warps=nw, num_stages=ns, progs_per_sm=pps, flatten=flatten)
            record(f"persist_{'flat' if flatten else 'nest'}_m{bm}_k{bk}_w{nw}_s{ns}_p{pps}",
                   lambda cfg=cfg: conv_min_tma_persistent(x, w, b, s, **cfg), **cfg)
    print(f"\n{'candidate':40s} {'ms':>8s} {'rel_err':>9s}")
    for r in rows:
        print(f"{r['name']:40s} " + (f"{r['median_ms']:8.3f} {r['rel_err']:9.2e}" if "error" not in r else "ERR " + r["error"][:70]))


if __name__ == "__main__":
    main()
