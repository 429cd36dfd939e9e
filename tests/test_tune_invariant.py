"""The loop-invariant-load analysis on kernels/fused.py's seed 001 kernel and on kernels without one."""

from __future__ import annotations

from pathlib import Path

from ncu_advisor.kernelsrc.invariant import (
    find_invariant_loads,
    find_invariant_loads_in_source,
    kernel_assignments,
    loop_extents,
    resolve_extent,
    suggested_block,
)

ROOT = Path(__file__).resolve().parents[1]
FUSED = ROOT / "kernels" / "fused.py"


def _line_of(text: str, needle: str, after: int = 0) -> int:
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if number > after and needle in line:
            return number
    raise AssertionError(needle)


def test_seed001_x_gather_repeated_in_the_oc0_loop():
    text = FUSED.read_text()
    kernel_line = _line_of(text, "def conv2d_scale_min_kernel(")
    loop_line = _line_of(text, "for oc0 in range(0, C_out, BLOCK_N):", kernel_line)
    load_line = _line_of(text, "x_vals = tl.load(x_ptrs", loop_line)
    loads = [f for f in find_invariant_loads(FUSED) if f.kernel == "conv2d_scale_min_kernel"]
    assert len(loads) == 1
    found = loads[0]
    assert (found.loop_line, found.load_line) == (loop_line, load_line)
    assert found.loop_var == "oc0" and found.pointer == "x_ptrs"
    assert (found.loop_bound, found.step_param) == ("C_out", "BLOCK_N")
    text_out = found.describe(128)
    assert (
        f"line {loop_line}" in text_out and f"line {load_line}" in text_out and "BLOCK_N -> 128" in text_out
    )


def test_weight_and_bias_loads_depend_on_oc0_and_are_not_reported():
    loads = find_invariant_loads(FUSED)
    pointers = {f.pointer for f in loads}
    assert "w_ptrs" not in pointers
    assert not any("b_ptr" in p for p in pointers)


def test_quiet_on_kernels_without_such_a_load():
    for name in ("matmul_epilogue.py", "elementwise.py", "softmax.py", "spill.py"):
        assert find_invariant_loads(ROOT / "kernels" / name) == [], name
    # seed 000's scale/min kernel in the same file: its load uses c_start
    assert not [f for f in find_invariant_loads(FUSED) if f.kernel == "scale_channel_min_kernel"]


def test_loop_carried_pointer_is_variant():
    source = """
import triton
import triton.language as tl

@triton.jit
def k(a_ptr, b_ptr, n, BLOCK: tl.constexpr):
    ptrs = a_ptr + tl.arange(0, BLOCK)
    total = tl.zeros((BLOCK,), dtype=tl.float32)
    for i in range(0, n, BLOCK):
        total += tl.load(ptrs)
        ptrs += BLOCK
        base = tl.load(b_ptr + tl.arange(0, BLOCK))
        total += base
"""
    loads = find_invariant_loads_in_source(source)
    assert [(f.pointer, f.loop_var) for f in loads] == [("b_ptr + tl.arange(0, BLOCK)", "i")]


def test_extents_resolve_through_assignments_without_eval():
    text = FUSED.read_text()
    assignments = kernel_assignments(text, "conv2d_scale_min_kernel")
    args = {"C_in": 64, "KH": 3, "KW": 3, "C_out": 128}
    assert resolve_extent("K", args, assignments) == 64 * 3 * 3
    assert resolve_extent("C_out", args, assignments) == 128
    assert resolve_extent("__import__('os')", args, assignments) is None
    assert dict(loop_extents(text, "conv2d_scale_min_kernel")) == {"BLOCK_N": "C_out", "BLOCK_K": "K"}
    assert [suggested_block(n) for n in (1, 100, 128, 129)] == [1, 128, 128, 256]
