"""--write: the appended variant class parses, is listed as a variant, and forces the tuned launch values."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ncu_advisor.collect.profile.variants import list_variants
from ncu_advisor.collect.tune.emit import (
    METHOD_AUTOTUNE,
    METHOD_CLASS_CONFIG,
    METHOD_LAUNCH,
    class_config_values,
    paste_text,
    pin_method,
    write_tuned_variant,
)
from ncu_advisor.collect.tune.space import TuneConfig
from ncu_advisor.errors import KernelFileError

ROOT = Path(__file__).resolve().parents[1]
BEST = TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, 4, 2)
START = TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}, 4, 2)


def test_write_appends_a_parsable_variant_to_the_seed_file(tmp_path):
    copy = tmp_path / "fused.py"
    original = (ROOT / "kernels" / "fused.py").read_text()
    copy.write_text(original)
    name = write_tuned_variant(
        copy,
        "ModelNew_seed001",
        "conv2d_scale_min_kernel",
        BEST,
        METHOD_LAUNCH,
        note="25 ms -> 10 ms",
        start=START,
    )
    assert name == "ModelNew_seed001_tuned"
    text = copy.read_text()
    assert text.startswith(original.rstrip("\n"))
    assert "class ModelNew_seed001_tuned(ModelNew_seed001):" in text
    assert "tuned_launch = {'BLOCK_N': 128}" in text  # only what differs from the start is forced
    names = [v.name for v in list_variants(copy).variants]
    assert names[-1] == "ModelNew_seed001_tuned" and "ModelNew_seed001" in names
    # a second --write never replaces the first
    assert (
        write_tuned_variant(copy, "ModelNew_seed001", "conv2d_scale_min_kernel", BEST, METHOD_LAUNCH)
        == "ModelNew_seed001_tuned2"
    )


def test_write_refuses_an_unknown_class_and_leaves_the_file(tmp_path):
    copy = tmp_path / "fused.py"
    copy.write_text((ROOT / "kernels" / "fused.py").read_text())
    before = copy.read_bytes()
    with pytest.raises(KernelFileError, match="ModelNew_nope"):
        write_tuned_variant(copy, "ModelNew_nope", "k", BEST, METHOD_LAUNCH)
    assert copy.read_bytes() == before


STANDIN = """
class FakeJIT:
    def __init__(self):
        self.seen = []
    def run(self, *args, grid, warmup, **kwargs):
        self.seen.append(dict(kwargs))
        return kwargs
    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.run(grid=grid, warmup=False, *args, **kwargs)

kern = FakeJIT()

class ModelNew_x:
    def forward(self, value):
        return kern[(1,)](value, BLOCK_M=128, BLOCK_N=32, num_warps=4, num_stages=2)

class ModelNew_cfg:
    config = dict(BLOCK_SIZE=64, num_warps=8)
    def forward(self, value):
        return kern[(1,)](value, **self.config)
"""


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(f"tune_emit_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_written_class_forces_the_tuned_values_and_restores_the_kernel(tmp_path):
    path = tmp_path / "standin.py"
    path.write_text(STANDIN)
    write_tuned_variant(path, "ModelNew_x", "kern", BEST, METHOD_LAUNCH, start=START)
    config_best = TuneConfig.make({"BLOCK_SIZE": 1024}, 4, 3)
    config_start = TuneConfig.make({"BLOCK_SIZE": 64}, 8, 3)
    assert pin_method(path.read_text(), "ModelNew_cfg", False) == METHOD_CLASS_CONFIG
    write_tuned_variant(path, "ModelNew_cfg", "kern", config_best, METHOD_CLASS_CONFIG, start=config_start)
    module = _import(path)
    launched = module.ModelNew_x_tuned().forward(1)
    assert (launched["BLOCK_M"], launched["BLOCK_N"], launched["num_warps"]) == (128, 128, 4)
    assert "run" not in module.kern.__dict__  # the kernel is as before after the call
    assert module.ModelNew_x().forward(1)["BLOCK_N"] == 32
    assert module.ModelNew_cfg_tuned.config == {"BLOCK_SIZE": 1024, "num_warps": 4}
    assert module.ModelNew_cfg_tuned().forward(1) == {"BLOCK_SIZE": 1024, "num_warps": 4}
    assert module.ModelNew_cfg.config == {"BLOCK_SIZE": 64, "num_warps": 8}


def test_paste_text_for_each_method():
    launch = paste_text(BEST, "conv2d_scale_min_kernel", METHOD_LAUNCH, launch_line=356)
    assert (
        "conv2d_scale_min_kernel[grid](..., BLOCK_K=32, BLOCK_M=128, BLOCK_N=128, num_warps=4, num_stages=2)"
        in launch
    )
    assert "line 356" in launch
    autotune = paste_text(BEST, "k", METHOD_AUTOTUNE, ["M", "C"])
    assert autotune.startswith("@triton.autotune(") and "key=['M', 'C']" in autotune
    assert (
        "triton.Config({'BLOCK_K': 32, 'BLOCK_M': 128, 'BLOCK_N': 128}, num_warps=4, num_stages=2)"
        in autotune
    )
    assert paste_text(BEST, "k", METHOD_CLASS_CONFIG).startswith("config = dict(BLOCK_K=32")
    zoo = (ROOT / "kernels" / "elementwise.py").read_text()
    assert class_config_values(zoo, "ModelNew_block64_w8") == {"BLOCK_SIZE": 64, "num_warps": 8}
