"""Static Triton source analysis on the seed kernels in kernels/fused.py (parsed, never imported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ncu_advisor.errors import KernelFileError
from ncu_advisor.kernelsrc.facts import analyze_file, analyze_source, facts_for

FUSED = Path(__file__).resolve().parent.parent / "kernels" / "fused.py"


@pytest.fixture(scope="module")
def fused():
    return analyze_file(FUSED)


def _line_of(text: str, needle: str, start: int = 0) -> int:
    lines = text.splitlines()
    return next(i + 1 for i in range(start, len(lines)) if needle in lines[i])


def test_finds_the_jit_kernels_without_importing(fused) -> None:
    names = [k.name for k in fused.kernels]
    assert names[:2] == ["scale_channel_min_kernel", "conv2d_scale_min_kernel"]
    assert len(names) == FUSED.read_text().count("@triton.jit")
    text = FUSED.read_text()
    for kernel in fused.kernels:
        assert kernel.lineno == _line_of(text, f"def {kernel.name}(")


def test_seed000_autotune_configs_with_lines(fused) -> None:
    kernel = fused.kernel("scale_channel_min_kernel")
    assert kernel.constexpr_params == ["IS_POS", "BLOCK_M", "BLOCK_C"]
    assert kernel.block_params == ["BLOCK_M", "BLOCK_C"]
    text = FUSED.read_text()
    first = _line_of(text, "triton.Config({'BLOCK_M': 128, 'BLOCK_C': 32}")
    assert [(c.params, c.num_warps, c.num_stages, c.lineno) for c in kernel.autotune_configs] == [
        ({"BLOCK_M": 128, "BLOCK_C": 32}, 4, 2, first),
        ({"BLOCK_M": 128, "BLOCK_C": 64}, 4, 2, first + 1),
        ({"BLOCK_M": 256, "BLOCK_C": 32}, 8, 3, first + 2),
    ]
    assert kernel.autotune_key == ["M", "C"]
    assert kernel.num_distinct_loads == 1 and kernel.load_bases == ["x_ptr"]
    assert kernel.uses_dot is False and kernel.expensive_ops == []


def test_seed001_launch_site_values_and_loads(fused) -> None:
    kernel = fused.kernel("conv2d_scale_min_kernel")
    assert kernel.constexpr_params == ["BLOCK_M", "BLOCK_N", "BLOCK_K"]
    assert kernel.autotune_configs == []
    assert kernel.launch_params == {
        "BLOCK_M": 128,
        "BLOCK_N": 32,
        "BLOCK_K": 32,
        "num_warps": 4,
        "num_stages": 2,
    }
    assert kernel.launch_lineno == _line_of(FUSED.read_text(), "conv2d_scale_min_kernel[grid](")
    assert sorted(kernel.load_bases) == ["b_ptr", "w_ptr", "x_ptr"]
    assert kernel.uses_dot is True
    assert kernel.num_loops == 2
    facts = facts_for(kernel)
    assert facts["src_num_loads"] == 3 and facts["src_uses_dot"] == 1
    assert facts["src_block_m"] == 128 and facts["src_block_n"] == 32 and facts["src_block_k"] == 32
    assert facts["src_num_warps"] == 4 and facts["src_num_stages"] == 2 and facts["src_has_baseline"] == 1


def test_non_literal_launch_values_are_unknown_not_guessed() -> None:
    text = """
import triton
import triton.language as tl

@triton.jit
def k(a_ptr, b_ptr, C_OUT: tl.constexpr, BLOCK_M: tl.constexpr):
    a = tl.load(a_ptr + tl.arange(0, BLOCK_M))
    b = tl.load(b_ptr + tl.arange(0, C_OUT))
    tl.store(a_ptr, tl.dot(a, b))

def run(a, b, num_warps):
    k[(1,)](a, b, C_OUT=64, BLOCK_M=pick(a), num_warps=num_warps)
"""
    (kernel,) = analyze_source(text, "k.py").kernels
    assert kernel.constexpr_params == ["C_OUT", "BLOCK_M"]
    assert kernel.launch_params == {"C_OUT": 64}
    facts = facts_for(kernel)
    assert "src_num_warps" not in facts and "src_block_m" not in facts
    assert facts["src_num_stages"] == 3  # not passed at all: Triton's default
    assert facts["src_uses_dot"] == 1 and facts["src_num_loads"] == 2


def test_launcher_defaults_and_variant_configs() -> None:
    text = """
import triton
import triton.language as tl

@triton.jit
def add_kernel(x_ptr, y_ptr, n, BLOCK_SIZE: tl.constexpr):
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)

def add(x, y, *, BLOCK_SIZE=1024, num_warps=4):
    add_kernel[(1,)](x, y, 10, BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps)

class ModelNew_small_w8:
    config = dict(BLOCK_SIZE=128, num_warps=8)

class ModelNew:
    config = {"BLOCK_SIZE": 1024}
"""
    (kernel,) = analyze_source(text, "add.py").kernels
    assert kernel.launch_params == {"BLOCK_SIZE": 1024, "num_warps": 4}  # the launcher's defaults
    small = kernel.for_variant("ModelNew_small_w8_run2")  # suffixes are stripped until a class matches
    assert small.launch_params == {"BLOCK_SIZE": 128, "num_warps": 8}
    assert facts_for(small)["src_block_max"] == 128 and facts_for(small)["src_num_warps"] == 8
    assert kernel.for_variant("ModelNew").launch_params == {"BLOCK_SIZE": 1024, "num_warps": 4}
    assert kernel.for_variant("Unknown") is kernel


def test_zoo_variants_get_their_own_launch_values() -> None:
    zoo = FUSED.parent / "elementwise.py"
    if not zoo.is_file():
        pytest.skip("kernels/elementwise.py is absent")
    (kernel,) = analyze_file(zoo).kernels
    configs = kernel.variant_configs
    for variant, config in configs.items():
        facts = facts_for(kernel.for_variant(variant))
        if "BLOCK_SIZE" in config:
            assert facts["src_block_max"] == config["BLOCK_SIZE"]
        if "num_warps" in config:
            assert facts["src_num_warps"] == config["num_warps"]


def test_kernel_name_mapping(fused) -> None:
    assert fused.kernel("conv2d_scale_min_kernel").name == "conv2d_scale_min_kernel"
    assert fused.kernel("conv2d_scale_min_kernel_0d1d2d").name == "conv2d_scale_min_kernel"
    assert fused.kernel("nchwToNhwcKernel") is None


def test_expensive_ops_and_defaults() -> None:
    text = """
import triton
import triton.language as tl

@triton.jit
def softmax_kernel(x_ptr, y_ptr, n, BLOCK_SIZE: tl.constexpr):
    offs = tl.arange(0, BLOCK_SIZE)
    x = tl.load(x_ptr + offs, mask=offs < n)
    e = tl.exp(x - tl.max(x, axis=0))
    y = e / tl.sum(e, axis=0)
    tl.store(y_ptr + offs, tl.sqrt(y), mask=offs < n)

def run(x, y):
    softmax_kernel[(1,)](x, y, 10, BLOCK_SIZE=1024)
"""
    facts = analyze_source(text, "softmax.py")
    (kernel,) = facts.kernels
    assert kernel.expensive_ops == ["/", "tl.exp", "tl.sqrt"]
    assert kernel.launch_params == {"BLOCK_SIZE": 1024}
    values = facts_for(kernel)
    assert values["src_num_warps"] == 4 and values["src_num_stages"] == 3  # Triton's defaults
    assert values["src_block_size"] == 1024 and values["src_block_max"] == 1024


def test_syntax_error_is_a_kernel_file_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def broken(:\n")
    with pytest.raises(KernelFileError) as info:
        analyze_file(bad)
    assert str(bad) in info.value.render() and "line 1" in info.value.render()
    with pytest.raises(KernelFileError):
        analyze_file(tmp_path / "missing.py")


def test_analysis_never_executes_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    kernel = tmp_path / "k.py"
    kernel.write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    analyze_file(kernel)
    assert not marker.exists()


def test_variant_code_keeps_imports_kernel_launcher_and_class() -> None:
    from ncu_advisor.kernelsrc.facts import variant_code

    text = FUSED.read_text()
    code = variant_code(text, ["conv2d_scale_min_kernel"], "ModelNew_seed001_small")
    assert code.startswith("import torch")
    assert "@triton.jit\ndef conv2d_scale_min_kernel(" in code
    assert "def conv_scale_min_triton(" in code and "class ModelNew_seed001(nn.Module):" in code
    assert "scale_channel_min_kernel" not in code and "class ModelNew_seed000(" not in code
    assert code.index("def conv2d_scale_min_kernel(") < code.index("class ModelNew_seed001(")
    assert variant_code(text, ["no_such_kernel"], None) == text
