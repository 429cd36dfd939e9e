"""Summary rows of a run, on the recorded seed reports; expected values read with ncu_report directly."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ncu_advisor.analysis.summary import OCCUPANCY_LIMITS, summary_rows

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "reports" / "h200-seed"


def _raw_launches(gz: Path, tmp_path: Path) -> list[dict[str, float]]:
    """Independent path: every launch's metrics straight from ncu_report (no ncu_advisor code)."""
    ncu_report = pytest.importorskip("ncu_report")
    plain = tmp_path / gz.name[: -len(".gz")]
    with gzip.open(gz, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    context = ncu_report.load_report(str(plain))
    launches = []
    for r in range(context.num_ranges()):
        rng = context.range_by_idx(r)
        for a in range(rng.num_actions()):
            action = rng.action_by_idx(a)
            values: dict[str, float] = {"kernel": action.name()}  # type: ignore[dict-item]
            for name in (
                "gpu__time_duration.sum",
                "launch__registers_per_thread",
                "dram__throughput.avg.pct_of_peak_sustained_elapsed",
                "sm__throughput.avg.pct_of_peak_sustained_elapsed",
                *OCCUPANCY_LIMITS.values(),
            ):
                metric = action.metric_by_name(name)
                values[name] = metric.as_double() if metric is not None else float("nan")
            launches.append(values)
    return launches


def test_summary_of_the_seed_reports(tmp_path: Path) -> None:
    report = pytest.importorskip("ncu_advisor.ingest.readers")
    variants = {
        "ModelNew_seed000": SEED / "ModelNew_seed000_small.ncu-rep.gz",
        "ModelNew_seed001": SEED / "ModelNew_seed001_small.ncu-rep.gz",
    }
    table = pd.concat(
        [report.read_report(path, variant=name) for name, path in variants.items()], ignore_index=True
    )
    timings = pd.DataFrame(
        {
            "variant": ["Model"] * 3 + ["ModelNew_seed000"] * 3 + ["ModelNew_seed001"] * 2,
            "rep": [0, 1, 2, 0, 1, 2, 0, 1],
            "median_ms": [8.0, 7.9, 8.1, 6.7, 6.8, 6.6, 25.0, 26.0],
        }
    )
    manifest = {
        "reference": {"name": "Model", "status": "ok"},
        "variants": {
            "ModelNew_seed000": {"status": "ok"},
            "ModelNew_seed001": {"status": "incorrect"},
            "ModelNew_x": {"status": "crashed", "reason": "illegal address"},
        },
    }
    rows = {row.variant: row for row in summary_rows(manifest, table, timings)}
    assert list(rows) == ["Model", "ModelNew_seed000", "ModelNew_seed001", "ModelNew_x"]
    assert rows["Model"].median_ms == 8.0 and rows["Model"].speedup_vs_reference == 1.0
    assert rows["ModelNew_seed000"].speedup_vs_reference == pytest.approx(8.0 / 6.7)
    assert rows["ModelNew_seed001"].median_ms == 25.5 and rows["ModelNew_seed001"].correct is False
    assert rows["ModelNew_x"].median_ms is None and rows["ModelNew_x"].reason == "illegal address"
    for name, path in variants.items():
        launches = _raw_launches(path, tmp_path)
        longest = max(launches, key=lambda launch: launch["gpu__time_duration.sum"])
        row = rows[name]
        assert row.kernel == longest["kernel"]
        assert row.registers == longest["launch__registers_per_thread"]
        assert row.dram_pct == pytest.approx(longest["dram__throughput.avg.pct_of_peak_sustained_elapsed"])
        assert row.sm_pct == pytest.approx(longest["sm__throughput.avg.pct_of_peak_sustained_elapsed"])
        limits = {key: longest[column] for key, column in OCCUPANCY_LIMITS.items()}
        assert row.occupancy_limiter == min(limits, key=lambda key: limits[key])
