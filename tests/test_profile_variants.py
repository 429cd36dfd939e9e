"""Variant listing by syntax tree only (no import, no torch): kernels/fused.py and test kernel files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ncu_advisor.errors import InputError, KernelFileError
from ncu_advisor.collect.profile.variants import Variant, kernels_reached, list_variants, select_variants

ROOT = Path(__file__).resolve().parent.parent
FUSED = ROOT / "kernels" / "fused.py"
KERNELS = ROOT / "tests" / "fixtures" / "kernels"


def _classes_by_rule(path: Path) -> list[str]:
    """Independent path: the module-level class names matching the convention, read with a regex-free scan."""
    names = []
    for line in path.read_text().splitlines():
        if line.startswith("class "):
            name = line[len("class ") :].split("(")[0].split(":")[0].strip()
            if name == "ModelNew" or name.startswith("ModelNew_"):
                names.append(name)
    return names


def test_fused_lists_the_seed_variants_in_file_order() -> None:
    info = list_variants(FUSED)
    names = [v.name for v in info.variants]
    assert info.reference == "Model"
    assert {"ModelNew_seed000", "ModelNew_seed001", "ModelNew"} <= set(names)
    assert names == _classes_by_rule(FUSED)
    assert names.index("ModelNew_seed000") < names.index("ModelNew_seed001")
    assert not info.uses_variants_mapping
    seed001 = next(v for v in info.variants if v.name == "ModelNew_seed001")
    assert FUSED.read_text().splitlines()[seed001.lineno - 1].startswith("class ModelNew_seed001")


def test_variants_mapping_replaces_the_naming_rule() -> None:
    info = list_variants(KERNELS / "mapping.py")
    assert [(v.name, v.class_name) for v in info.variants] == [("fast", "Fast"), ("slow", "Slow")]
    assert info.uses_variants_mapping


def test_mapping_to_a_missing_class_is_an_error_with_line() -> None:
    with pytest.raises(KernelFileError) as err:
        list_variants(KERNELS / "bad_mapping.py")
    assert "Ghost" in err.value.message
    assert err.value.path is not None and err.value.path.endswith("bad_mapping.py:8")


def test_syntax_error_reports_file_and_line() -> None:
    with pytest.raises(KernelFileError) as err:
        list_variants(KERNELS / "syntax_error.py")
    assert err.value.path is not None and err.value.path.endswith("syntax_error.py:4")
    assert "syntax error" in err.value.message
    assert err.value.exit_code == 2


def test_no_variants_and_missing_file() -> None:
    with pytest.raises(KernelFileError, match="no variants"):
        list_variants(KERNELS / "no_variants.py")
    with pytest.raises(KernelFileError, match="no such kernel file"):
        list_variants(KERNELS / "does_not_exist.py")


def test_select_keeps_order_given_and_rejects_unknown() -> None:
    info = list_variants(FUSED)
    picked = select_variants(info, ["ModelNew", "ModelNew_seed000", "ModelNew"])
    assert [v.name for v in picked] == ["ModelNew", "ModelNew_seed000"]
    with pytest.raises(InputError) as err:
        select_variants(info, ["Nope"])
    assert "'Nope'" in err.value.message and "ModelNew_seed001" in err.value.message


def test_faults_file_lists_every_fault_variant() -> None:
    info = list_variants(KERNELS / "faults.py")
    assert [v.name for v in info.variants] == _classes_by_rule(KERNELS / "faults.py")
    assert "ModelNew_hang" in [v.name for v in info.variants]


def test_kernels_reached_follows_helper_functions() -> None:
    tree = ast.parse(FUSED.read_text())
    assert "scale_channel_min_kernel" in kernels_reached(tree, "ModelNew_seed000")
    assert "scale_channel_min_kernel" not in kernels_reached(tree, "ModelNew_seed001")
    assert "conv2d_scale_min_kernel" in kernels_reached(tree, "ModelNew_seed001")


def test_child_args_pin_a_config() -> None:
    plain = Variant("ModelNew", "ModelNew", 1)
    pinned = Variant("ModelNew@cfg2", "ModelNew", 1, autotune_kernel="k", autotune_config=2)
    assert plain.child_args() == ["ModelNew"]
    assert pinned.child_args() == ["ModelNew", "--autotune-kernel", "k", "--autotune-config", "2"]


def test_expand_autotune_one_variant_per_config() -> None:
    source = pytest.importorskip("ncu_advisor.kernelsrc.facts")
    from ncu_advisor.collect.profile.variants import expand_autotune

    facts = source.analyze_file(FUSED)
    counts = {k.name: len(k.autotune_configs) for k in facts.kernels if k.autotune_configs}
    assert "scale_channel_min_kernel" in counts
    info = list_variants(FUSED)
    expanded = expand_autotune(info, [v for v in info.variants if v.name == "ModelNew_seed000"])
    assert [v.name for v in expanded] == [
        f"ModelNew_seed000@cfg{i}" for i in range(counts["scale_channel_min_kernel"])
    ]
    assert all(v.autotune_kernel == "scale_channel_min_kernel" for v in expanded)


def test_expand_autotune_follows_base_classes_and_helpers() -> None:
    source = pytest.importorskip("ncu_advisor.kernelsrc.facts")
    from ncu_advisor.collect.profile.variants import expand_autotune

    path = KERNELS / "faults.py"
    tuned = [k for k in source.analyze_file(path).kernels if k.autotune_configs]
    assert [k.name for k in tuned] == ["scale_rows_tuned_kernel"]
    info = list_variants(path)
    expanded = expand_autotune(info, list(info.variants))
    names = [v.name for v in expanded]
    assert names[-len(tuned[0].autotune_configs) :] == [
        f"ModelNew_tuned@cfg{i}" for i in range(len(tuned[0].autotune_configs))
    ]
    assert "ModelNew_tuned" not in names and "ModelNew_good" in names
    pinned = next(v for v in expanded if v.name == "ModelNew_tuned@cfg1")
    assert pinned.child_args() == [
        "ModelNew_tuned",
        "--autotune-kernel",
        "scale_rows_tuned_kernel",
        "--autotune-config",
        "1",
    ]
    tree = ast.parse(path.read_text())
    # a subclass that inherits forward() reaches its base class's kernel
    reached = kernels_reached(tree, "ModelNew_after")
    assert "scale_rows_kernel" in reached and "scale_rows_tuned_kernel" not in reached
