"""The child process's pieces. Pure-Python parts run everywhere; torch parts skip without torch (CI)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ncu_advisor.collect.profile import child

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ROOT / "tests" / "fixtures" / "kernels" / "faults.py"
HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_pin_autotune_config_keeps_only_the_chosen_one() -> None:
    tuner = SimpleNamespace(configs=["cfg-a", "cfg-b", "cfg-c"])
    module = SimpleNamespace(kern=tuner, plain=object())
    assert child.pin_autotune_config(module, "kern", 1) == "cfg-b"
    assert tuner.configs == ["cfg-b"]
    with pytest.raises(ValueError, match="has 1 configs; config 3"):
        child.pin_autotune_config(module, "kern", 3)
    with pytest.raises(ValueError, match="not an @triton.autotune kernel"):
        child.pin_autotune_config(module, "plain", 0)


class _FakeCompiled:
    """Shaped like triton 3.6's CompiledKernel: metadata namedtuple, n_regs set by _init_handles."""

    def __init__(self, name: str, regs: int) -> None:
        self.name = name
        self.metadata = SimpleNamespace(name=name, num_warps=4, num_stages=2, shared=1024)
        self._regs = regs
        self.module = None

    def _init_handles(self) -> None:
        self.module = "loaded"
        self.n_regs, self.n_spills = self._regs, 3


def test_describe_and_walk_compiled_kernels() -> None:
    described = child.describe_compiled(_FakeCompiled("k1", 96))
    assert described == {
        "name": "k1",
        "n_regs": 96,
        "n_spills": 3,
        "num_warps": 4,
        "num_stages": 2,
        "shared": 1024,
    }
    assert (
        child.describe_compiled(SimpleNamespace(metadata=None))["n_regs"] is None
    )  # defensive: missing -> None
    jit = SimpleNamespace(
        device_caches={
            0: (
                {"key1": _FakeCompiled("k1", 96), "key2": _FakeCompiled("k1", 128)},
                {},
                "target",
                "backend",
                "binder",
            )
        },
        fn=lambda: None,
    )
    autotuner = SimpleNamespace(fn=jit, configs=[1, 2])
    module = SimpleNamespace(k1=autotuner, k1_alias=jit, other=3)
    found = child.compiled_kernels(module)
    assert sorted(k["n_regs"] for k in found) == [96, 128]  # the JIT function is walked once


def test_cuda_crash_classification() -> None:
    assert child._is_cuda_crash(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert child._is_cuda_crash(RuntimeError("Triton Error [CUDA]: unspecified launch failure"))
    assert not child._is_cuda_crash(RuntimeError("deliberate failure in forward"))


@pytest.mark.skipif(HAS_TORCH, reason="checks the no-torch path")
def test_child_without_torch_says_so(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ncu_advisor.collect.profile.child", str(FAULTS), "ModelNew_good", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.returncode == child.EXIT_NO_GPU
    result = json.loads(out.read_text())
    assert result["status"] == "no-gpu" and "torch is not importable" in result["reason"]


# ---------------------------------------------------------------------------------------- with torch
torch_only = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


@torch_only
def test_copy_parameters_by_name_shape_partial_none() -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    reference = nn.Linear(4, 3)
    same = nn.Linear(4, 3)
    assert child.copy_parameters(reference, same) == "by-name"
    assert torch.equal(same.weight, reference.weight) and torch.equal(same.bias, reference.bias)

    class Renamed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3, 4))
            self.b = nn.Parameter(torch.zeros(3))

    renamed = Renamed()
    assert child.copy_parameters(reference, renamed) == "by-shape"
    assert torch.equal(renamed.w, reference.weight) and torch.equal(renamed.b, reference.bias)

    class Extra(Renamed):
        def __init__(self) -> None:
            super().__init__()
            self.other = nn.Parameter(torch.zeros(7))

    assert child.copy_parameters(reference, Extra()) == "partial: unmatched other"
    assert child.copy_parameters(reference, nn.ReLU()) == "none"


@torch_only
def test_check_against_float64_reference() -> None:
    import torch
    from torch import nn

    class Scale(nn.Module):
        def __init__(self, factor: float, nan: bool = False, shape: tuple[int, ...] | None = None) -> None:
            super().__init__()
            self.factor, self.nan, self.shape = factor, nan, shape

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x * self.factor
            if self.nan:
                y[0, 0] = float("nan")
            return y.reshape(self.shape) if self.shape else y

    inputs = [torch.randn(8, 16)]
    good = child.check(Scale(2.0), Scale(2.0), inputs, rtol=2e-3)
    assert good["passed"] and good["rel_l2_error"] < 1e-6 and good["problems"] == []
    wrong = child.check(Scale(2.0), Scale(2.1), inputs, rtol=2e-3)
    assert not wrong["passed"] and abs(wrong["rel_l2_error"] - 0.05) < 1e-6
    assert "relative L2 error" in wrong["problems"][0]
    nan = child.check(Scale(2.0), Scale(2.0, nan=True), inputs, rtol=2e-3)
    assert not nan["passed"] and any("NaN/inf" in p for p in nan["problems"])
    shape = child.check(Scale(2.0), Scale(2.0, shape=(16, 8)), inputs, rtol=2e-3)
    assert not shape["passed"] and "shape (16, 8)" in shape["problems"][0]


def test_autotune_choices_then_pinned_in_the_ncu_process(tmp_path: Path) -> None:
    configs = ["cfg-a", "cfg-b", "cfg-c"]
    tuned = SimpleNamespace(configs=list(configs), best_config="cfg-c")
    untouched = SimpleNamespace(configs=["x", "y"])  # never ran: no best_config
    single = SimpleNamespace(configs=["only"], best_config="only")  # nothing was chosen
    choices = child.autotune_choices(SimpleNamespace(k=tuned, u=untouched, s=single))
    assert choices == {"k": 2}
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"autotune_choices": choices}))
    fresh = SimpleNamespace(k=SimpleNamespace(configs=list(configs)))  # the ncu process's own module
    assert child.pin_choices_from(fresh, result, keep=None) == {"k": 2}
    assert fresh.k.configs == ["cfg-c"]
    kept = SimpleNamespace(k=SimpleNamespace(configs=list(configs)))
    assert child.pin_choices_from(kept, result, keep="k") == {}  # already pinned by --autotune-kernel
    assert child.pin_choices_from(kept, tmp_path / "missing.json", keep=None) == {}
