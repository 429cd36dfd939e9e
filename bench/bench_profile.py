"""Benchmark of `ncu-advisor profile` (GPU machine): wall time against the floor done by hand, replay passes.

1. Wall time of ``ncu-advisor profile FILE --variant ...`` (one process, everything it does).
2. The floor: the same work done by hand with the least machinery: for the reference and each variant
   one plain Python process (build, check against float64, ``do_bench`` ``--reps`` times), and for each
   variant one bare ``ncu`` call with the same metrics, on the same launches (NVTX range after warm-up).
   Target: profile <= 1.3 x floor.
3. Replay passes per kernel: the profile run's default metric set (rules + core) against ``--set full`` on
   the same variant. Target: <= 10 passes (``--set full`` took 38 on the seed kernel).

Usage (on the GPU machine, from the repository root):
    python bench/bench_profile.py [--file kernels/fused.py] [--variant NAME ...] [--reps 5]
        [--full-variant ModelNew_seed001] [--out bench/results/profile-<gpu>.json]
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ncu_advisor import rundir  # noqa: E402
from ncu_advisor.collect.profile import ncu as ncu_module  # noqa: E402

FLOOR_SCRIPT = r"""
import copy, importlib.util, sys
import torch, triton.testing
path, cls, mode, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
spec = importlib.util.spec_from_file_location("k", path)
mod = importlib.util.module_from_spec(spec); sys.modules["k"] = mod; spec.loader.exec_module(mod)
torch.set_grad_enabled(False)
init = mod.get_init_inputs()
ref = mod.Model(*init).cuda().eval()
model = ref if cls == "Model" else getattr(mod, cls)(*init).cuda().eval()
if model is not ref:
    named = dict(ref.named_parameters())
    own = list(model.named_parameters())
    by_name = all(n in named and named[n].shape == p.shape for n, p in own)
    for (n, p), q in zip(own, named.values()):
        p.copy_(named[n] if by_name else q)
x = [t.cuda() for t in mod.get_inputs()]
if mode == "plain":
    if model is not ref:
        expected = copy.deepcopy(ref).double()(*[t.double() for t in x])
        out = model(*x).double()
        print("rel_err", float((out - expected).norm() / expected.norm()))
    else:
        model(*x)
    for _ in range(2):
        model(*x)
    torch.cuda.synchronize()
    print("ms", [triton.testing.do_bench(lambda: model(*x), return_mode="median") for _ in range(reps)])
else:
    for _ in range(2):
        model(*x)
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_push("ncu_advisor")
    model(*x)
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_pop()
"""


def timed(argv: list[str], log: Path) -> float:
    """Run a command, output to ``log``; return its wall time (raise when it fails)."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # profile exits 1 when a variant is incorrect; that is still a run
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}; see {log}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, default=ROOT / "kernels" / "fused.py")
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        help="variants (default: ModelNew_seed000, ModelNew_seed001, ModelNew)",
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--full-variant", default="ModelNew_seed001", help="variant profiled with --set full")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    variants = args.variant or ["ModelNew_seed000", "ModelNew_seed001", "ModelNew"]
    ncu = ncu_module.find_ncu()
    metrics = ncu_module.metric_set()
    work = Path(tempfile.mkdtemp(prefix="bench_profile_"))
    env_python = sys.executable

    # 1. ncu-advisor profile
    runs = work / "runs"
    argv = [
        env_python,
        "-m",
        "ncu_advisor",
        "profile",
        str(args.file),
        "--runs-dir",
        str(runs),
        "--reps",
        str(args.reps),
    ]
    for name in variants:
        argv += ["--variant", name]
    profile_s = timed(argv, work / "profile.log")
    run_dir = rundir.latest_run(runs)
    assert run_dir is not None, f"no run written; see {work / 'profile.log'}"
    run = rundir.load_run(run_dir, allow_incomplete=True)

    # 2. the floor by hand
    script = work / "floor.py"
    script.write_text(FLOOR_SCRIPT)
    floor: dict[str, float] = {}
    floor["Model plain"] = timed(
        [env_python, str(script), str(args.file), "Model", "plain", str(args.reps)], work / "floor_Model.log"
    )
    floor_passes: dict[str, int | None] = {}
    for name in variants:
        floor[f"{name} plain"] = timed(
            [env_python, str(script), str(args.file), name, "plain", str(args.reps)],
            work / f"floor_{name}.log",
        )
        ncu_log = work / f"floor_{name}_ncu.log"
        floor[f"{name} ncu"] = timed(
            [
                str(ncu),
                "--clock-control",
                "none",
                "--nvtx",
                "--nvtx-include",
                "ncu_advisor/",
                "--metrics",
                ",".join(metrics),
                "-o",
                str(work / f"floor_{name}"),
                "-f",
                env_python,
                str(script),
                str(args.file),
                name,
                "ncu",
                "0",
            ],
            ncu_log,
        )
        parsed = ncu_module.parse_ncu_log(ncu_log.read_text())
        floor_passes[name] = max((p for _, p in parsed.passes), default=None)
    floor_s = sum(floor.values())

    # 3. replay passes: default set (from the run) vs --set full on one variant
    full_log = work / "full_ncu.log"
    full_s = timed(
        [
            str(ncu),
            "--clock-control",
            "none",
            "--set",
            "full",
            "--nvtx",
            "--nvtx-include",
            "ncu_advisor/",
            "-o",
            str(work / "full"),
            "-f",
            env_python,
            str(script),
            str(args.file),
            args.full_variant,
            "ncu",
            "0",
        ],
        full_log,
    )
    full_passes = ncu_module.parse_ncu_log(full_log.read_text()).passes

    per_kernel: list[dict[str, object]] = []
    table = run.table
    for name in variants:
        rows = table[table["variant"] == name] if "variant" in table else table.iloc[0:0]
        for _, row in rows.iterrows():
            per_kernel.append(
                {"variant": name, "kernel": row.get("kernel"), "passes": row.get("profiler__replayer_passes")}
            )
    ratio = profile_s / floor_s
    max_passes = max(
        (int(k["passes"]) for k in per_kernel if k["passes"] == k["passes"] and k["passes"] is not None),
        default=None,
    )
    result = {
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gpu": run.manifest.get("gpu"),
        "versions": run.manifest.get("versions"),
        "file": str(args.file),
        "variants": variants,
        "reps": args.reps,
        "metrics": len(metrics),
        "profile_wall_s": round(profile_s, 2),
        "floor_wall_s": round(floor_s, 2),
        "floor_parts_s": {k: round(v, 2) for k, v in floor.items()},
        "ratio": round(ratio, 3),
        "target_ratio": 1.3,
        "statuses": {k: v.get("status") for k, v in run.manifest.get("variants", {}).items()},
        "passes_default_max": max_passes,
        "passes_default_per_kernel": per_kernel,
        "passes_floor_ncu": floor_passes,
        "passes_set_full": [{"kernel": k, "passes": p} for k, p in full_passes],
        "set_full_variant": args.full_variant,
        "set_full_wall_s": round(full_s, 2),
        "target_passes": 10,
        "work_dir": str(work),
    }
    print(f"{'measure':<44}{'value':>12}")
    print(f"{'profile wall (s)':<44}{profile_s:>12.2f}")
    for key, value in floor.items():
        print(f"{'  floor: ' + key + ' (s)':<44}{value:>12.2f}")
    print(f"{'floor wall (s)':<44}{floor_s:>12.2f}")
    print(f"{'ratio profile / floor (target <= 1.3)':<44}{ratio:>12.3f}")
    print(f"{'max replay passes, default set (<= 10)':<44}{str(max_passes):>12}")
    for kernel, passes in full_passes:
        print(f"{'  --set full: ' + kernel[:28]:<44}{passes:>12}")
    gpu_name = str((run.manifest.get("gpu") or {}).get("name", "gpu")).replace(" ", "-").lower()
    out = (
        args.out
        or ROOT / "bench" / "results" / f"profile-{gpu_name}-{datetime.now(timezone.utc):%Y-%m-%d}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written: {out}")
    if os.environ.get("BENCH_KEEP") is None:
        shutil.rmtree(work / "runs", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
