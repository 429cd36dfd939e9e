"""Every variant of every kernel file, run under Triton's interpreter on the CPU at small shapes.

The kernels run with ``TRITON_INTERPRET=1`` (numpy instead of a GPU) in a subprocess, because the
variable must be set before triton is imported. Each file's module-level size constants are shrunk
(``SMALL_SHAPES``), then every ``ModelNew*`` class gets the reference's parameters and its output is
compared with ``Model`` evaluated in float64 on the same inputs: an independent path, so a wrong mask,
stride or epilogue fails here.

A second test compiles each zoo variant's kernel for sm_90a (H100/H200) without a GPU and reads
``ptxas -v`` (the ptxas shipped in the triton wheel): the register counts, spills and shared memory that
each file's docstring designs its rules around must hold (``PTXAS_CLAIMS``).

The tests need a Python with torch and triton. They use this interpreter when both import, or the one
named by ``NCU_ADVISOR_TORCH_PYTHON`` (e.g. a private venv: ``python3 -m venv /tmp/zoo-venv &&
/tmp/zoo-venv/bin/pip install torch==2.13.0 triton==3.6.0 "numpy<2.4"``: Triton 3.6's interpreter
fails with numpy 2.4, which no longer converts 1-element arrays to scalars); otherwise they skip (CI has
neither).

Run as a script (``python tests/test_kernels_interpret.py kernels/softmax.py``, or with ``--ptxas``
before the file) it prints the JSON the tests read: one record per variant.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"

# Module constants to shrink per kernel file: odd sizes on purpose, so every mask is exercised.
SMALL_SHAPES: dict[str, dict[str, int]] = {
    "elementwise.py": {"N_ELEMENTS": 3001},
    "softmax.py": {"N_ROWS": 37, "N_COLS": 100, "TAIL_GRID": 5},
    "spill.py": {"N_ELEMENTS": 2500},
    "matmul_epilogue.py": {"M_ROWS": 70, "IN_FEATURES": 48, "OUT_FEATURES": 40},
    "fused.py": {"batch_size": 2, "in_channels": 64, "out_channels": 32, "height": 9, "width": 11},
}
# Relative L2 error allowed against float64: fp32 kernels near rounding; fp16 matmul output rounding.
TOLERANCE: dict[str, float] = {"matmul_epilogue.py": 3e-3}
DEFAULT_TOLERANCE = 1e-5
MIN_VARIANTS_PER_ZOO_FILE = 2
# Variants the interpreter cannot run, with the reason (they are checked on the GPU by bench_kernels.py).
GPU_ONLY: dict[tuple[str, str], str] = {
    ("fused.py", "ModelNew"): "host-side TMA tensor descriptors need a CUDA driver",
}


def _torch_python() -> str | None:
    """A Python executable that has torch and triton, or None."""
    named = os.environ.get("NCU_ADVISOR_TORCH_PYTHON")
    if named:
        return named
    if importlib.util.find_spec("torch") and importlib.util.find_spec("triton"):
        return sys.executable
    return None


def run_file_interpreted(path: Path) -> list[dict[str, Any]]:
    """Run every variant of ``path`` at small shapes under the interpreter (this process must import
    torch with ``TRITON_INTERPRET=1`` already set). Returns one record per variant."""
    import torch

    sys.path.insert(0, str(ROOT))
    from ncu_advisor.collect.profile.child import copy_parameters, load_module

    module = load_module(path)
    for name, value in SMALL_SHAPES.get(path.name, {}).items():
        if not hasattr(module, name):
            raise AttributeError(f"{path.name} has no size constant {name}")
        setattr(module, name, value)
    if path.name == "fused.py":  # its get_inputs reads `height = width = ...` as one name pair
        module.height, module.width = SMALL_SHAPES["fused.py"]["height"], SMALL_SHAPES["fused.py"]["width"]

    init = module.get_init_inputs()
    torch.manual_seed(0)
    reference = module.Model(*init).eval()
    torch.manual_seed(1)
    inputs = module.get_inputs()
    with torch.no_grad():
        reference64 = module.Model(*init).double().eval()
        copy_parameters(reference, reference64)
        expected = reference64(*[t.double() if t.is_floating_point() else t for t in inputs])

    records = []
    variants = sorted(n for n, v in vars(module).items() if n.startswith("ModelNew") and isinstance(v, type))
    for variant in variants:
        record: dict[str, Any] = {"variant": variant}
        try:
            torch.manual_seed(2)
            model = getattr(module, variant)(*init).eval()
            record["parameters"] = copy_parameters(reference, model)
            with torch.no_grad():
                out = model(*inputs)
            record["shape"] = list(out.shape)
            record["expected_shape"] = list(expected.shape)
            diff = (out.double() - expected).norm() / expected.norm()
            record["rel_err"] = float(diff)
        except Exception as exc:  # reported per variant; the test turns it into a failure
            record["error"] = f"{type(exc).__name__}: {exc}"
        records.append(record)
    return records


# Offline sm_90a compilation of each zoo variant's kernel (ptxas -v), to check the register, spill and
# shared-memory figures each docstring's rule design rests on. Signatures mirror the JIT's specialisation at
# the full shapes: pointers 16-byte aligned, ints divisible by 16 marked so, unit strides constexpr.
_FP32_3IN = {"a_ptr": "*fp32", "b_ptr": "*fp32", "c_ptr": "*fp32", "out_ptr": "*fp32", "n_elements": "i32"}
PTXAS_KERNELS: dict[str, dict[str, Any]] = {
    "elementwise.py": {
        "kernel": "fma_gelu_scale_kernel",
        "signature": {**_FP32_3IN, "scale": "fp32"},
        "div16": ["n_elements"],
    },
    "spill.py": {
        "kernel": "gated_recurrence_kernel",
        "signature": {**_FP32_3IN, "steps": "i32"},
        "div16": ["n_elements"],
    },
    "softmax.py": {
        "kernel": "softmax_rows_kernel",
        "signature": {"x_ptr": "*fp32", "out_ptr": "*fp32", "n_rows": "i32", "n_cols": "i32",
                      "stride_x_row": "i32", "stride_out_row": "i32"},
        "div16": ["n_rows", "n_cols", "stride_x_row", "stride_out_row"],
        "constexprs": {"BLOCK_SIZE": 4096},
    },
    "matmul_epilogue.py": {
        "kernel": "matmul_bias_gelu_kernel",
        "signature": {"x_ptr": "*fp16", "w_ptr": "*fp16", "bias_ptr": "*fp16", "out_ptr": "*fp16",
                      "M": "i32", "N": "i32", "K": "i32", "stride_xm": "i32", "stride_xk": "constexpr",
                      "stride_wk": "i32", "stride_wn": "constexpr", "stride_om": "i32",
                      "stride_on": "constexpr", "scale": "fp32"},
        "div16": ["M", "N", "K", "stride_xm", "stride_wk", "stride_om"],
        "constexprs": {"stride_xk": 1, "stride_wn": 1, "stride_on": 1},
    },
}
# What each variant's docstring claims, as bounds on ptxas' figures (None: not claimed).
PTXAS_CLAIMS: dict[tuple[str, str], dict[str, Any]] = {
    ("elementwise.py", "ModelNew"): {"max_regs": 64, "spills": False},
    ("elementwise.py", "ModelNew_block64_w8"): {"max_regs": 64, "spills": False},
    ("softmax.py", "ModelNew_w1"): {"min_regs": 129, "spills": False},
    ("softmax.py", "ModelNew_grid16"): {"max_regs": 64, "spills": False},
    ("softmax.py", "ModelNew_tail"): {"max_regs": 32, "spills": False},  # 2 blocks of 1024 threads per SM
    ("softmax.py", "ModelNew"): {"max_regs": 32, "spills": False},  # 4 blocks of 16 warps per SM
    ("spill.py", "ModelNew_block8192_w1"): {"min_spill_bytes": 4096},
    ("spill.py", "ModelNew_block1024_w1"): {"min_regs": 129, "max_spill_bytes": 64},
    ("spill.py", "ModelNew"): {"max_regs": 32, "spills": False},  # 8 blocks of 8 warps per SM
    ("matmul_epilogue.py", "ModelNew_tile16_w1_s1"): {"max_regs": 64, "spills": False},
    # 2 blocks per SM: 128 registers x 256 threads and at most 114 KB of shared memory each.
    ("matmul_epilogue.py", "ModelNew"): {"max_regs": 128, "spills": False, "max_shared": 114 * 1024},
}


def ptxas_figures(path: Path) -> list[dict[str, Any]]:
    """Compile each variant's kernel of ``path`` for sm_90a without a GPU and read ``ptxas -v``."""
    import re
    import tempfile

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sys.path.insert(0, str(ROOT))
    from ncu_advisor.collect.profile.child import load_module

    spec = PTXAS_KERNELS[path.name]
    module = load_module(path)
    kernel = getattr(module, spec["kernel"])
    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    signature = dict(spec["signature"])
    divisible = [n for n, t in signature.items() if t.startswith("*")] + spec["div16"]
    attrs = {(kernel.arg_names.index(n),): [["tt.divisibility", 16]] for n in divisible}
    records = []
    variants = sorted(n for n, v in vars(module).items() if n.startswith("ModelNew") and isinstance(v, type))
    for variant in variants:
        config = dict(getattr(module, variant).config)
        options = {"num_warps": config.pop("num_warps", 4), "num_stages": config.pop("num_stages", 3)}
        config.pop("grid_size", None)
        constexprs = {**spec.get("constexprs", {}), **config}
        for name in constexprs:
            signature[name] = "constexpr"
        source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)
        with tempfile.TemporaryDirectory() as tmp:
            ptx_path = Path(tmp) / "k.ptx"
            ptx_path.write_text(compiled.asm["ptx"])
            proc = subprocess.run(
                [str(ptxas), "-v", "--gpu-name", "sm_90a", str(ptx_path), "-o", str(Path(tmp) / "k.o")],
                capture_output=True, text=True, check=True,
            )
        log = proc.stdout + proc.stderr
        regs = re.search(r"Used (\d+) registers", log)
        spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
        if regs is None or spills is None:
            raise RuntimeError(f"{path.name}::{variant}: unexpected ptxas output: {log[-500:]}")
        records.append({
            "variant": variant, "regs": int(regs.group(1)), "spill_stores": int(spills.group(1)),
            "spill_loads": int(spills.group(2)), "shared": int(compiled.metadata.shared), **options,
        })
    return records


def _zoo_files() -> list[Path]:
    return sorted(KERNELS.glob("*.py"))


def _interpret(path: Path, python: str) -> list[dict[str, Any]]:
    env = dict(os.environ, TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), str(path)],
        capture_output=True, text=True, timeout=900, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, f"{path.name}: interpreter run failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pytest_generate_tests(metafunc: Any) -> None:
    if "kernel_file" in metafunc.fixturenames:
        metafunc.parametrize("kernel_file", _zoo_files(), ids=lambda p: p.name)


def test_every_variant_matches_float64_reference_under_interpreter(kernel_file: Path) -> None:
    python = _torch_python()
    if python is None:
        pytest.skip("needs torch and triton (or NCU_ADVISOR_TORCH_PYTHON naming a Python that has them)")
    assert kernel_file.name in SMALL_SHAPES, f"add small shapes for {kernel_file.name} to SMALL_SHAPES"
    records = _interpret(kernel_file, python)
    variants = [r["variant"] for r in records]
    if kernel_file.name != "fused.py":
        assert len(variants) >= MIN_VARIANTS_PER_ZOO_FILE, f"{kernel_file.name}: variants {variants}"
    tolerance = TOLERANCE.get(kernel_file.name, DEFAULT_TOLERANCE)
    checked = [r for r in records if (kernel_file.name, r["variant"]) not in GPU_ONLY]
    assert checked, f"{kernel_file.name}: no variant could be checked"
    for record in checked:
        assert "error" not in record, f"{kernel_file.name}::{record['variant']}: {record['error']}"
        assert record["shape"] == record["expected_shape"], record
        assert record["rel_err"] < tolerance, f"{kernel_file.name}::{record['variant']}: {record}"


@pytest.mark.parametrize("file_name", sorted(PTXAS_KERNELS))
def test_register_and_spill_figures_hold_for_sm90a(file_name: str) -> None:
    """Each variant's designed register pressure / spilling shows in ptxas -v for sm_90a (no GPU needed)."""
    python = _torch_python()
    if python is None:
        pytest.skip("needs torch and triton (or NCU_ADVISOR_TORCH_PYTHON naming a Python that has them)")
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), "--ptxas", str(KERNELS / file_name)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert proc.returncode == 0, f"{file_name}: ptxas run failed:\n{proc.stderr[-3000:]}"
    figures = {r["variant"]: r for r in json.loads(proc.stdout.strip().splitlines()[-1])}
    claimed = {v for f, v in PTXAS_CLAIMS if f == file_name}
    assert claimed == set(figures), f"{file_name}: variants {sorted(figures)} vs claims {sorted(claimed)}"
    for variant, fig in figures.items():
        claim = PTXAS_CLAIMS[(file_name, variant)]
        where = f"{file_name}::{variant} {fig}"
        spill_bytes = fig["spill_stores"] + fig["spill_loads"]
        if "max_regs" in claim:
            assert fig["regs"] <= claim["max_regs"], where
        if "min_regs" in claim:
            assert fig["regs"] >= claim["min_regs"], where
        if claim.get("spills") is False:
            assert spill_bytes == 0, where
        if "min_spill_bytes" in claim:
            assert fig["spill_stores"] >= claim["min_spill_bytes"], where
        if "max_spill_bytes" in claim:
            assert spill_bytes <= claim["max_spill_bytes"], where
        if "max_shared" in claim:
            assert fig["shared"] <= claim["max_shared"], where


if __name__ == "__main__":
    if sys.argv[1] == "--ptxas":
        print(json.dumps(ptxas_figures(Path(sys.argv[2]).resolve())))
    else:
        print(json.dumps(run_file_interpreted(Path(sys.argv[1]).resolve())))
