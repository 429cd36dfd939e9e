"""The metric catalogue: entries, core metrics, fallback resolution."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ncu_advisor.metrics import (
    CORE_METRICS,
    MetricInfo,
    catalogue,
    column,
    contributing_columns,
    fallback_note,
    fallbacks_used,
    resolve,
)
from ncu_advisor.ingest.readers import read_report

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "examples" / "reports" / "h200-seed"
DRAM = "dram__throughput.avg.pct_of_peak_sustained_elapsed"
GPU_DRAM = "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed"


def test_core_metrics_are_what_the_seed_reports_collected() -> None:
    meta = json.loads((SEEDS / "meta.json").read_text())
    assert list(CORE_METRICS) == meta["metrics"]
    table = read_report(SEEDS / "ModelNew_seed001_small.ncu-rep.gz")
    assert all(name in table.columns for name in CORE_METRICS)


def test_units_match_the_recorded_report() -> None:
    table = read_report(SEEDS / "ModelNew_seed000_small.ncu-rep.gz")
    for name, info in catalogue().items():
        if name in table.columns:
            assert table.attrs["units"][name] == info.unit, name


def test_seed_prompt_metrics_are_catalogued() -> None:
    seed_files = sorted((ROOT.parent / "shared" / "seeds").glob("*.txt"))
    if not seed_files:
        pytest.skip("../shared/seeds is absent")
    seed_text = "".join(p.read_text() for p in seed_files)
    names = set(re.findall(r"\b[a-z0-9]+__[a-z0-9_]+(?:\.[a-z0-9_]+)*", seed_text))
    assert names, "the seeds name ncu metrics"
    assert names <= set(catalogue())


def test_entries_are_well_formed() -> None:
    raw = yaml.safe_load((ROOT / "ncu_advisor" / "metrics.yaml").read_text())
    assert len(raw) == len(catalogue())
    for info in catalogue().values():
        assert isinstance(info, MetricInfo)
        assert info.meaning and info.kind
        assert info.name not in info.fallbacks
        assert len(set(info.fallbacks)) == len(info.fallbacks)


def test_resolve_prefers_the_name_then_fallbacks_in_order() -> None:
    assert resolve([DRAM, GPU_DRAM], DRAM) == DRAM
    assert resolve([GPU_DRAM, "fbpa__sol_pct"], DRAM) == GPU_DRAM
    assert resolve(["fbpa__sol_pct"], DRAM) == "fbpa__sol_pct"
    assert resolve(["x"], DRAM) is None
    assert resolve(["not_catalogued__m"], "not_catalogued__m") == "not_catalogued__m"
    assert resolve([], "not_catalogued__m") is None


def test_column_fills_rows_from_fallbacks() -> None:
    df = pd.DataFrame({DRAM: [10.0, math.nan, math.nan], GPU_DRAM: [99.0, 20.0, math.nan]})
    values, used = column(df, DRAM)
    assert used == DRAM
    assert values.iloc[0] == 10.0 and values.iloc[1] == 20.0 and math.isnan(values.iloc[2])
    assert contributing_columns(df, DRAM) == [DRAM, GPU_DRAM]
    only_fallback = pd.DataFrame({GPU_DRAM: [5.0]})
    values, used = column(only_fallback, DRAM)
    assert used == GPU_DRAM and values.tolist() == [5.0]
    assert fallbacks_used(only_fallback) == {DRAM: GPU_DRAM}
    absent = pd.DataFrame({"other": [1.0]})
    values, used = column(absent, DRAM)
    assert used is None and values.isna().all() and len(values) == 1


def test_fallback_note() -> None:
    assert fallback_note(DRAM, DRAM) is None
    assert fallback_note(DRAM, None) is None
    note = fallback_note(DRAM, GPU_DRAM)
    assert note is not None and DRAM in note and GPU_DRAM in note


def test_full_report_dram_fallback_on_real_data() -> None:
    """NCU_NOTES: an H200 --set full report may lack dram__throughput; the fallback carries it."""
    table = read_report(SEEDS / "ModelNew_seed001_full.ncu-rep.gz")
    values, used = column(table, DRAM)
    assert used in (DRAM, GPU_DRAM)
    assert values.notna().all()
