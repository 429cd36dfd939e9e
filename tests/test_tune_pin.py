"""The child-side pin (ncu_advisor.collect.tune.pin) on stand-ins for Triton's JITFunction and Autotuner."""

from __future__ import annotations

import types

import pytest

from ncu_advisor.collect.tune.pin import Override, PinError, apply_override, parse_override


class FakeJIT:
    """Mimics triton.runtime.jit.JITFunction: ``kernel[grid](...)`` calls
    ``self.run(grid=..., warmup=False)``;
    a callable grid is called with the bound arguments, constexprs included."""

    def __init__(self, arg_names):
        self.arg_names = arg_names
        self.launches = []

    def run(self, *args, grid, warmup, **kwargs):
        bound = dict(zip(self.arg_names, args, strict=False))
        bound.update(kwargs)
        self.launches.append({"grid": grid(bound) if callable(grid) else grid, **kwargs})
        return "compiled"

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.run(*args, grid=grid, warmup=False, **kwargs)


class FakeConfig:
    def __init__(self, kwargs, num_warps=4, num_stages=3, pre_hook=None):
        self.kwargs, self.num_warps, self.num_stages, self.pre_hook = kwargs, num_warps, num_stages, pre_hook


def _module(**attrs):
    return types.SimpleNamespace(**attrs)


def test_callable_grid_follows_the_overridden_block():
    jit = FakeJIT(["x_ptr", "P", "C_out", "BLOCK_M", "BLOCK_N"])
    record = apply_override(
        _module(kern=jit), None, Override("kern", {"BLOCK_M": 64, "BLOCK_N": 128}, num_warps=8, num_stages=3)
    )
    jit[lambda meta: (-(-meta["P"] // meta["BLOCK_M"]),)](
        "ptr", 1000, 128, BLOCK_M=128, BLOCK_N=32, num_warps=4, num_stages=2
    )
    launch = jit.launches[0]
    assert launch["grid"] == (-(-1000 // 64),)
    assert (launch["BLOCK_M"], launch["BLOCK_N"], launch["num_warps"], launch["num_stages"]) == (
        64,
        128,
        8,
        3,
    )
    assert record["method"] == "launch-kwargs"
    assert record["launched_with"] == {"BLOCK_M": 128, "BLOCK_N": 32, "num_warps": 4, "num_stages": 2}
    assert record["int_args"] == {
        "P": 1000,
        "C_out": 128,
        "BLOCK_M": 128,
        "BLOCK_N": 32,
        "num_warps": 4,
        "num_stages": 2,
    }


def test_fixed_tuple_grid_applies_a_block_change_and_records_it_for_the_correctness_check():
    # One program per row: the grid (16,) does not depend on BLOCK_SIZE, so the override is correct and
    # must not be refused; the record says which values changed under the fixed grid.
    jit = FakeJIT(["x_ptr", "n", "BLOCK_SIZE"])
    record = apply_override(_module(kern=jit), None, Override("kern", {"BLOCK_SIZE": 1024}))
    jit[(16,)]("ptr", 1024, BLOCK_SIZE=64)
    assert jit.launches[0]["BLOCK_SIZE"] == 1024 and jit.launches[0]["grid"] == (16,)
    assert record["fixed_grid_changed"] == ["BLOCK_SIZE"] and record["grid_callable"] is False
    jit2 = FakeJIT(["x_ptr", "n", "BLOCK_SIZE"])
    apply_override(_module(kern=jit2), None, Override("kern", {"BLOCK_SIZE": 64}, num_warps=2, num_stages=4))
    jit2[(16,)]("ptr", 1024, BLOCK_SIZE=64)
    assert (jit2.launches[0]["num_warps"], jit2.launches[0]["num_stages"], jit2.launches[0]["grid"]) == (
        2,
        4,
        (16,),
    )
    assert "fixed_grid_changed" not in jit2.__dict__  # warps/stages never touch the grid


def test_class_config_is_overridden_when_the_variant_keeps_its_launch_values_there():
    jit = FakeJIT(["x_ptr", "n", "BLOCK_SIZE"])

    class Variant:
        config = {"BLOCK_SIZE": 64, "num_warps": 8}

    module = _module(kern=jit, Variant=Variant)
    record = apply_override(
        module, "Variant", Override("kern", {"BLOCK_SIZE": 1024}, num_warps=4, num_stages=2)
    )
    assert Variant.config == {"BLOCK_SIZE": 1024, "num_warps": 4}
    assert record["method"] == "class-config+launch-kwargs"
    jit[(4,)]("ptr", 4096, BLOCK_SIZE=1024, num_warps=4)  # the wrapper computed the grid from the new config
    assert jit.launches[0]["num_stages"] == 2


def test_autotune_configs_replaced_keeping_the_pre_hook():
    jit = FakeJIT(["x_ptr", "BLOCK_M", "BLOCK_C"])
    hook = object()
    tuner = types.SimpleNamespace(
        fn=jit,
        configs=[
            FakeConfig({"BLOCK_M": 128, "BLOCK_C": 32}, 4, 2, hook),
            FakeConfig({"BLOCK_M": 256, "BLOCK_C": 32}, 8, 3),
        ],
    )
    record = apply_override(
        _module(tuned=tuner),
        None,
        Override("tuned", {"BLOCK_C": 64}, num_stages=3),
        config_factory=FakeConfig,
    )
    assert len(tuner.configs) == 1
    only = tuner.configs[0]
    assert (only.kwargs, only.num_warps, only.num_stages, only.pre_hook) == (
        {"BLOCK_M": 128, "BLOCK_C": 64},
        4,
        3,
        hook,
    )
    assert record["method"] == "autotune-configs"


def test_record_only_keeps_the_launch_untouched():
    jit = FakeJIT(["x_ptr", "BLOCK"])
    record = apply_override(_module(kern=jit), None, Override("kern"))
    jit[(1,)]("ptr", BLOCK=32, num_warps=4)
    assert jit.launches[0]["BLOCK"] == 32 and record["method"] == "record-only"
    assert record["launched_with"] == {"BLOCK": 32, "num_warps": 4}


def test_parse_override_and_errors():
    parsed = parse_override('{"kernel": "k", "params": {"BLOCK_M": 64}, "num_warps": 8, "num_stages": null}')
    assert parsed == Override("k", {"BLOCK_M": 64}, 8, None)
    assert parse_override(parsed.to_json()) == parsed
    for bad in (
        "not json",
        '{"params": {}}',
        '{"kernel": "k", "params": {"BLOCK_M": "64"}}',
        '{"kernel": "k", "num_warps": 4.5}',
        '{"kernel": "k", "params": [1]}',
    ):
        with pytest.raises(PinError):
            parse_override(bad)
    with pytest.raises(PinError, match="no kernel 'missing'"):
        apply_override(_module(), None, Override("missing"))


def test_autotune_record_only_keeps_the_config_the_tuner_settled_on():
    jit = FakeJIT(["x_ptr", "BLOCK_M", "BLOCK_C"])
    tuner = types.SimpleNamespace(
        fn=jit,
        configs=[
            FakeConfig({"BLOCK_M": 128, "BLOCK_C": 32}),
            FakeConfig({"BLOCK_M": 256, "BLOCK_C": 32}, 8, 3),
        ],
    )
    record = apply_override(_module(tuned=tuner), None, Override("tuned"))
    assert len(tuner.configs) == 2 and record["method"] == "record-only"
    for config in tuner.configs + [tuner.configs[1]]:  # benchmarking every config, then the chosen one
        jit.run(
            "ptr",
            grid=(1,),
            warmup=False,
            **config.kwargs,
            num_warps=config.num_warps,
            num_stages=config.num_stages,
        )
    assert record["launched_with"] == {"BLOCK_M": 256, "BLOCK_C": 32, "num_warps": 8, "num_stages": 3}


def test_a_class_level_patch_made_after_the_pin_still_sees_the_launches():
    """The profile child's launch recorder patches JITFunction.run on the class after the pin is installed."""

    class Patched(FakeJIT):
        pass

    jit = Patched(["x_ptr", "BLOCK"])
    apply_override(_module(kern=jit), None, Override("kern", {"BLOCK": 64}))
    seen = []
    original = Patched.run

    def recorder(self, *args, **kwargs):
        seen.append(kwargs.get("BLOCK"))
        return original(self, *args, **kwargs)

    Patched.run = recorder
    jit[lambda meta: (1,)]("ptr", BLOCK=32)
    assert seen == [64] and jit.launches[0]["BLOCK"] == 64


def test_a_fixed_grid_written_with_the_block_literals_follows_the_pinned_tiles():
    """kernels/corpus/linear_bias_gelu.py's launch: ``grid = (cdiv(M, 32), cdiv(N, 32))`` beside
    ``BLOCK_M=32, BLOCK_N=32``. Pinned to 64 x 128 the grid becomes (cdiv(M, 64), cdiv(N, 128)): without
    it the right result came from twice the programs, half idle (1.46 ms instead of 0.69 ms on the H200).
    K == M here, so BLOCK_K's cdiv(K, 32) also equals the first axis: BLOCK_M comes first in the kernel's
    parameters and takes it."""
    jit = FakeJIT(["x_ptr", "w_ptr", "M", "N", "K", "BLOCK_M", "BLOCK_N", "BLOCK_K"])
    record = apply_override(
        _module(kern=jit), None, Override("kern", {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64}, num_warps=8)
    )
    jit[(-(-1000 // 32), -(-300 // 32))]("x", "w", 1000, 300, 1000, BLOCK_M=32, BLOCK_N=32, BLOCK_K=32)
    assert jit.launches[0]["grid"] == (-(-1000 // 64), -(-300 // 128))
    assert record["grid_rescaled"] == {
        "from": [32, 10],
        "to": [16, 3],
        "by": {"0": "BLOCK_M", "1": "BLOCK_N"},
    }
    assert record["fixed_grid_changed"] == ["BLOCK_K"]  # the loop tile: left to the correctness check


def test_a_fixed_grid_stays_when_no_tile_names_its_extent_or_the_match_is_ambiguous():
    # one program per row: 32 rows, and 4096 columns / BLOCK_SIZE 128 is also 32 by coincidence: no name
    # match, so the grid stays (shrinking it would drop rows)
    rows = FakeJIT(["x_ptr", "n_rows", "n_cols", "BLOCK_SIZE"])
    record = apply_override(_module(kern=rows), None, Override("kern", {"BLOCK_SIZE": 1024}))
    rows[(32,)]("x", 32, 4096, BLOCK_SIZE=128)
    assert rows.launches[0]["grid"] == (32,) and "grid_rescaled" not in record
    assert record["fixed_grid_changed"] == ["BLOCK_SIZE"]
    # BLOCK_M and BLOCK_N both 32 over M == N: the axes take them in the kernel's parameter order
    square = FakeJIT(["x_ptr", "M", "N", "BLOCK_M", "BLOCK_N"])
    apply_override(_module(kern=square), None, Override("kern", {"BLOCK_N": 64}))
    square[(8, 8)]("x", 256, 256, BLOCK_M=32, BLOCK_N=32)
    assert square.launches[0]["grid"] == (8, 4)
    # only the loop tile BLOCK_K changes, with K == M: the axis belongs to BLOCK_M (first), which did not
    # change, so the grid stays
    loop = FakeJIT(["x_ptr", "M", "K", "BLOCK_M", "BLOCK_K"])
    record = apply_override(_module(kern=loop), None, Override("kern", {"BLOCK_K": 64}))
    loop[(8,)]("x", 256, 256, BLOCK_M=32, BLOCK_K=32)
    assert loop.launches[0]["grid"] == (8,) and record["fixed_grid_changed"] == ["BLOCK_K"]
