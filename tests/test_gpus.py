"""The GPU catalogue: the seed's RTX 4090 block, matching on real reports, built specs for others."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from ncu_advisor.gpus import GpuSpec, catalogue, prompt_block, spec_fields, spec_for
from ncu_advisor.ingest.readers import read_report

ROOT = Path(__file__).resolve().parent.parent
SEED_001 = sorted((ROOT.parent / "shared" / "seeds").glob("001_*.txt"))
H200_REPORT = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"


def test_catalogue_has_the_required_gpus() -> None:
    assert {
        "rtx4090",
        "h100_sxm",
        "h100_pcie",
        "h200",
        "a100_40gb",
        "a100_80gb",
        "l4",
        "l40s",
        "rtx3090",
        "t4",
    } <= set(catalogue())
    for spec in catalogue().values():
        assert spec.source and spec.match
        assert spec.max_warps_per_sm * spec.warp_size == spec.max_threads_per_sm, spec.key


@pytest.mark.skipif(not SEED_001, reason="../shared/seeds is absent")
def test_rtx4090_block_is_seed_001_verbatim() -> None:
    seed = SEED_001[0].read_text()
    block = prompt_block(catalogue()["rtx4090"])
    assert block.startswith("# Target GPU\nGPU Name: 4090\n")
    assert block in seed
    start = seed.index("# Target GPU")
    assert seed[start : start + len(block)] == block
    assert len(block.splitlines()) == 17


def test_extra_fields_are_refused() -> None:
    fields = catalogue()["t4"].model_dump()
    fields["sm_cuont"] = 40
    with pytest.raises(ValidationError):
        GpuSpec(**fields)


def test_h200_report_matches_h200() -> None:
    table = read_report(H200_REPORT)
    spec, warnings = spec_for(table)
    assert spec.key == "h200" and warnings == []
    row = table.iloc[0]
    assert spec.sm_count == row["device__attribute_multiprocessor_count"]
    assert spec.l2_mb * 1024 * 1024 == row["device__attribute_l2_cache_size"]
    assert spec.max_warps_per_sm == row["device__attribute_max_warps_per_multiprocessor"]
    assert spec.smem_per_sm_kb * 1024 == row["device__attribute_max_shared_memory_per_multiprocessor"]


def test_same_name_other_sm_count_is_not_matched() -> None:
    row = {
        "device__attribute_display_name": "NVIDIA H100 PCIe",
        "cc": "9.0",
        "device__attribute_multiprocessor_count": 114,
    }
    assert spec_for(row)[0].key == "h100_pcie"
    row["device__attribute_multiprocessor_count"] = 132
    spec, warnings = spec_for(row)
    assert spec.key.startswith("unknown:") and warnings


def test_older_driver_names_without_prefix() -> None:
    spec, _ = spec_for(
        {
            "device__attribute_display_name": "Tesla T4",
            "cc": "7.5",
            "device__attribute_multiprocessor_count": 40,
        }
    )
    assert spec.key == "t4"
    spec, _ = spec_for({"gpu": "NVIDIA L40S", "cc": "8.9", "device__attribute_multiprocessor_count": 142})
    assert spec.key == "l40s"


def test_public_reports(public_reports: dict[str, Path]) -> None:
    rtx4090 = read_report(public_reports["victor-lvsy__seq_align__profile.ncu-rep"])
    spec, warnings = spec_for(rtx4090)
    assert spec.key == "rtx4090" and warnings == []
    a100 = read_report(public_reports["bwd29__self-join-MiSTIC__profileSUSYBIN2.out.ncu-rep"])
    assert spec_for(a100)[0].key == "a100_40gb"

    h800 = read_report(public_reports["flyinglandlord__sglang__profile.ncu-rep"])
    spec, warnings = spec_for(h800)
    row = h800.iloc[0]
    assert spec.key == "unknown:NVIDIA H800"
    assert len(warnings) == 1 and "H800" in warnings[0] and "not in the GPU catalogue" in warnings[0]
    assert spec.sm_count == row["device__attribute_multiprocessor_count"]
    assert spec.l2_mb == row["device__attribute_l2_cache_size"] / 2**20
    assert spec.tf32_tflops is None
    expected_bw = (
        2
        * row["device__attribute_max_mem_frequency_khz"]
        * 1e3
        * row["device__attribute_global_memory_bus_width"]
        / 8
        / 1e9
    )
    assert spec.mem_bw_gbs == pytest.approx(expected_bw, abs=0.1)


def test_bandwidth_formula_reproduces_the_4090_datasheet(public_reports: dict[str, Path]) -> None:
    from ncu_advisor.gpus import spec_from_attributes

    row = read_report(public_reports["victor-lvsy__seq_align__profile.ncu-rep"]).iloc[0].to_dict()
    built = spec_from_attributes(row)
    assert built.mem_bw_gbs == pytest.approx(catalogue()["rtx4090"].mem_bw_gbs, rel=0.001)
    assert built.sm_count == 128 and built.smem_per_sm_kb == 100 and built.l2_mb == 72


def test_spec_fields() -> None:
    fields = spec_fields(catalogue()["t4"])
    assert fields["gpu_sm_count"] == 40.0 and fields["gpu_max_warps_per_sm"] == 32.0
    assert math.isnan(fields["gpu_tf32_tflops"])
    assert fields["gpu_cc"] == 7.5
    assert all(name.startswith("gpu_") for name in fields)
