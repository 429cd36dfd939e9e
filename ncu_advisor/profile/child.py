"""Runs one variant of a kernel file in its own process: the part of ``profile`` that executes user code.

Invoked as ``python -m ncu_advisor.profile.child FILE VARIANT --mode {ncu,time,check} --out RESULT.json``,
either bare (timing, correctness) or under ncu (``--mode ncu``: warm up, then one call inside the NVTX
range ``ncu_advisor`` so that ncu profiles only that call). torch and triton are imported here only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

NVTX_RANGE = "ncu_advisor"


def load_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"ncu_advisor_kernel_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def copy_parameters(reference: Any, variant: Any) -> str:
    """Give ``variant`` the reference's parameter values: by name where all names match, else by shape
    and order. Returns how it was done ("by-name", "by-shape", "none", or "partial: ...")."""
    import torch

    ref = dict(reference.named_parameters())
    var = dict(variant.named_parameters())
    if not var:
        return "none"
    with torch.no_grad():
        if set(var) <= set(ref) and all(ref[k].shape == v.shape for k, v in var.items()):
            for k, v in var.items():
                v.copy_(ref[k])
            return "by-name"
        ref_list = list(ref.values())
        var_list = list(var.values())
        if len(ref_list) == len(var_list) and all(a.shape == b.shape for a, b in zip(ref_list, var_list)):
            for a, b in zip(ref_list, var_list):
                b.copy_(a)
            return "by-shape"
        copied = []
        for name, v in var.items():
            match = next((r for r in ref_list if r.shape == v.shape), None)
            if match is not None:
                v.copy_(match)
                copied.append(name)
        return "partial: " + ",".join(copied)


def build(module: Any, variant: str, seed: int) -> tuple[Any, Any, list[Any], str]:
    import torch

    init = module.get_init_inputs()
    torch.manual_seed(seed)
    reference = module.Model(*init).cuda().eval()
    torch.manual_seed(seed + 1)
    model = getattr(module, variant)(*init).cuda().eval()
    how = copy_parameters(reference, model)
    torch.manual_seed(seed + 2)
    inputs = [t.cuda() if hasattr(t, "cuda") else t for t in module.get_inputs()]
    return reference, model, inputs, how


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("variant")
    parser.add_argument("--mode", choices=["ncu", "time", "check"], default="ncu")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import torch

    module = load_module(args.file)
    reference, model, inputs, how = build(module, args.variant, args.seed)
    result: dict[str, Any] = {"variant": args.variant, "parameters": how}
    with torch.no_grad():
        for _ in range(args.warmup):
            model(*inputs)
        torch.cuda.synchronize()
        if args.mode == "ncu":
            torch.cuda.nvtx.range_push(NVTX_RANGE)
            model(*inputs)
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_pop()
        elif args.mode == "time":
            import triton.testing

            t0 = time.perf_counter()
            result["median_ms"] = triton.testing.do_bench(lambda: model(*inputs), return_mode="median")
            result["bench_s"] = time.perf_counter() - t0
        else:
            ref = reference(*inputs).double()
            out = model(*inputs).double()
            result["rel_err"] = float((out - ref).norm() / ref.norm())
            result["max_abs_err"] = float((out - ref).abs().max())
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
