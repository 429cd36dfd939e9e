"""Every variant of every kernel file, run under Triton's interpreter on the CPU at small shapes.

The kernels run with ``TRITON_INTERPRET=1`` (numpy instead of a GPU) in a subprocess, because the
variable must be set before triton is imported. Each file's module-level size constants are shrunk
(``SMALL_SHAPES``), then every ``ModelNew*`` class gets the reference's parameters and its output is
compared with ``Model`` evaluated in float64 on the same inputs: an independent path, so a wrong mask,
stride or epilogue fails here.

The test needs a Python with torch and triton. It uses this interpreter when both import, or the one
named by ``NCU_ADVISOR_TORCH_PYTHON`` (e.g. a private venv: ``python3 -m venv /tmp/zoo-venv &&
/tmp/zoo-venv/bin/pip install torch triton numpy``); otherwise it skips (CI has neither).

Run as a script (``python tests/test_kernels_interpret.py kernels/softmax.py``) it prints the JSON the
test reads: one record per variant with ``rel_err`` or ``error``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    from ncu_advisor.profile.child import copy_parameters, load_module

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
    import pytest

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


if __name__ == "__main__":
    print(json.dumps(run_file_interpreted(Path(sys.argv[1]).resolve())))
