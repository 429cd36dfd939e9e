"""Seed 000's Triton scale + channel-min kernel alone, against the device-to-device copy bandwidth, same run.

Usage: python bench/bench_scale_min.py OUT.json
Bytes counted: the conv output read once (N*C*H*W fp32) plus the result written (N*H*W fp32); the copy counts
bytes read + written. Issue 6's target: the kernel reaches >= 93% of the copy's bandwidth.
"""

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch
import triton
import triton.testing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ncu_advisor.collect.profile.child import load_module  # noqa: E402

fused = load_module(ROOT / "kernels" / "fused.py")


def median_of(fn, reps=5):
    fn()
    torch.cuda.synchronize()
    runs = sorted(triton.testing.do_bench(fn, warmup=50, rep=300, return_mode="median") for _ in range(reps))
    return runs[len(runs) // 2], runs


def main() -> None:
    torch.manual_seed(0)
    conv_out = torch.randn(64, 128, 254, 254, device="cuda")  # the seed problem's conv output
    ref = (conv_out.double() * 2.0).min(dim=1, keepdim=True)[0]
    out = fused.scale_min_triton(conv_out, 2.0)
    rel = float((out.double() - ref).norm() / ref.norm())
    kernel_ms, kernel_runs = median_of(lambda: fused.scale_min_triton(conv_out, 2.0))
    kernel_bytes = conv_out.numel() * 4 + out.numel() * 4
    src = torch.empty(conv_out.numel(), device="cuda").uniform_()
    dst = torch.empty_like(src)
    copy_ms, copy_runs = median_of(lambda: dst.copy_(src))
    copy_bytes = 2 * src.numel() * 4
    kernel_tbs = kernel_bytes / (kernel_ms * 1e-3) / 1e12
    copy_tbs = copy_bytes / (copy_ms * 1e-3) / 1e12
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "autotune_choice": str(fused.scale_channel_min_kernel.best_config),
        "kernel_ms": kernel_ms, "kernel_runs_ms": kernel_runs, "kernel_tb_per_s": kernel_tbs,
        "copy_ms": copy_ms, "copy_runs_ms": copy_runs, "copy_tb_per_s": copy_tbs,
        "fraction_of_copy": kernel_tbs / copy_tbs, "target": 0.93, "rel_err": rel,
    }
    Path(sys.argv[1]).write_text(json.dumps(result, indent=2))
    print(f"scale/min kernel {kernel_ms:.3f} ms = {kernel_tbs:.2f} TB/s; copy {copy_tbs:.2f} TB/s; "
          f"{100 * kernel_tbs / copy_tbs:.1f}% of copy (target 93%); rel err {rel:.1e}; {result['autotune_choice']}")


if __name__ == "__main__":
    main()
