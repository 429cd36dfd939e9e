"""The binary-report reader on the real H200 seed reports, checked against ncu_report read directly."""

from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path
from typing import Any

import ncu_report
import pandas as pd
import pytest

from ncu_advisor.ingest import ncu_report_reader
from ncu_advisor.ingest import readers as report_module
from ncu_advisor.errors import ReportError
from ncu_advisor.ingest.readers import read_report, read_reports, rule_results
from ncu_advisor.table import ID_COLUMNS

SEEDS = Path(__file__).resolve().parent.parent / "examples" / "reports" / "h200-seed"
SMALL = SEEDS / "ModelNew_seed000_small.ncu-rep.gz"
SEED001_SMALL = SEEDS / "ModelNew_seed001_small.ncu-rep.gz"
SEED001_FULL = SEEDS / "ModelNew_seed001_full.ncu-rep.gz"


def gunzip_to(src: Path, directory: Path) -> Path:
    target = directory / src.name[: -len(".gz")]
    with gzip.open(src, "rb") as fin, open(target, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return target


def independent_launches(plain: Path) -> list[dict[str, Any]]:
    """Every launch of a report read straight through ncu_report: names, nvtx, metric values and units."""
    ctx = ncu_report.load_report(str(plain))
    launches = []
    for i in range(ctx.num_ranges()):
        rng = ctx.range_by_idx(i)
        for j in range(rng.num_actions()):
            action = rng.action_by_idx(j)
            values: dict[str, Any] = {}
            units: dict[str, str] = {}
            for name in action.metric_names():
                metric = action.metric_by_name(name)
                values[name] = metric.value() if metric.has_value() else None
                units[name] = metric.unit()
            state = action.nvtx_state()
            nvtx = [str(r) for d in state.domains() for r in state.domain_by_id(d).push_pop_ranges()]
            launches.append(
                {
                    "range": i,
                    "action": j,
                    "kernel": action.name(action.NameBase_FUNCTION),
                    "demangled": action.name(action.NameBase_DEMANGLED),
                    "nvtx": nvtx,
                    "values": values,
                    "units": units,
                }
            )
    return launches


@pytest.fixture(scope="module")
def small_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gunzip_to(SMALL, tmp_path_factory.mktemp("small"))


def test_every_value_matches_ncu_report(small_plain: Path) -> None:
    table = read_report(SMALL)
    launches = independent_launches(small_plain)
    assert len(table) == len(launches) == 5
    for row_index, launch in enumerate(launches):
        row = table.iloc[row_index]
        assert row["kernel"] == launch["kernel"]
        assert row["demangled"] == launch["demangled"]
        assert row["range"] == launch["range"] and row["action"] == launch["action"]
        assert row["nvtx"] == " > ".join(launch["nvtx"])
        for name, expected in launch["values"].items():
            got = row[name]
            if expected is None or expected == "":
                assert got is None or (isinstance(got, float) and math.isnan(got)), name
            elif isinstance(expected, str):
                assert got == expected, name
            else:
                assert isinstance(got, float) and got == float(expected), name
        for name, unit in launch["units"].items():
            assert table.attrs["units"][name] == unit, name


def test_identifying_columns(small_plain: Path) -> None:
    table = read_report(SMALL, variant="ModelNew_seed000")
    assert tuple(table.columns[: len(ID_COLUMNS)]) == ID_COLUMNS
    assert list(table.columns[len(ID_COLUMNS) :]) == sorted(table.columns[len(ID_COLUMNS) :])
    first = independent_launches(small_plain)[0]["values"]
    assert set(table["gpu"]) == {first["device__attribute_display_name"]}
    expected_cc = f"{first['device__attribute_compute_capability_major']}.{first['device__attribute_compute_capability_minor']}"
    assert set(table["cc"]) == {expected_cc}
    assert set(table["variant"]) == {"ModelNew_seed000"}
    assert set(table["source"]) == {str(SMALL)}
    # The seeds' Triton kernel is the last launch of seed 000's small report.
    assert table["kernel"].iloc[-1] == "scale_channel_min_kernel"


def test_gzip_and_plain_give_the_same_table(small_plain: Path) -> None:
    from_gz = read_report(SMALL).drop(columns=["source"])
    from_plain = read_report(small_plain).drop(columns=["source"])
    pd.testing.assert_frame_equal(from_gz, from_plain)


def test_read_reports_concatenates_with_nan_for_absent_metrics() -> None:
    small = read_report(SEED001_SMALL)
    full = read_report(SEED001_FULL)
    both = read_reports([SEED001_SMALL, SEED001_FULL])
    assert len(both) == len(small) + len(full)
    assert set(both.columns) == set(small.columns) | set(full.columns)
    full_only = sorted(set(full.columns) - set(small.columns))
    assert full_only, "the --set full report should carry metrics the small one lacks"
    assert both[full_only[0]].iloc[: len(small)].isna().all()
    assert both["launch__registers_per_thread"].tolist() == (
        small["launch__registers_per_thread"].tolist() + full["launch__registers_per_thread"].tolist()
    )
    assert both.attrs["units"]["gpu__time_duration.sum"] == "ns"
    assert small.attrs["fallbacks"] == {}  # the seed runs collected every core metric under its name


def test_worker_processes_give_the_same_table() -> None:
    in_process = report_module._read_binary(SMALL, None, workers=0, reader="ncu_report")
    for workers in (1, 2):
        parallel = report_module._read_binary(SMALL, None, workers=workers, reader="ncu_report")
        pd.testing.assert_frame_equal(in_process, parallel)
        assert in_process.attrs == parallel.attrs


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(report_module.WORKERS_ENV, raising=False)
    assert report_module._default_workers(5) == 0
    assert report_module._default_workers(10_000) >= 1
    monkeypatch.setenv(report_module.WORKERS_ENV, "0")
    assert report_module._default_workers(10_000) == 0
    monkeypatch.setenv(report_module.WORKERS_ENV, "3")
    assert report_module._default_workers(5) == 3


def test_rule_results_match_ncu_report(tmp_path: Path) -> None:
    plain = gunzip_to(SEED001_FULL, tmp_path)
    action = ncu_report.load_report(str(plain)).range_by_idx(0).action_by_idx(0)
    expected = action.rule_results_as_dicts()
    results = rule_results(SEED001_FULL)
    assert len(results) == len(expected) > 0
    assert [r["rule"] for r in results] == [e["rule_identifier"] for e in expected]
    assert {r["launch"] for r in results} == {0}
    assert {r["kernel"] for r in results} == {"conv2d_scale_min_kernel"}
    with_speedup = [(r, e) for r, e in zip(results, expected, strict=True) if "speedup_estimation" in e]
    assert with_speedup
    for result, raw in with_speedup:
        assert result["speedup"] == raw["speedup_estimation"]["speedup"]
        assert result["speedup_type"] in ("local", "global")
    assert rule_results(SEED001_SMALL) == []  # --metrics runs carry no guided analysis


# ------------------------------------------------------------------------------------------------
# Bad input: one ReportError naming the file
# ------------------------------------------------------------------------------------------------


def assert_report_error(path: Path, *words: str) -> ReportError:
    with pytest.raises(ReportError) as info:
        read_report(path)
    text = info.value.render()
    assert str(path) in text
    for word in words:
        assert word in text
    assert "\n" not in text
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    assert_report_error(tmp_path / "nope.ncu-rep", "no such file")


def test_directory(tmp_path: Path) -> None:
    assert_report_error(tmp_path, "directory")


def test_text_file_renamed_ncu_rep(tmp_path: Path) -> None:
    fake = tmp_path / "notes.ncu-rep"
    fake.write_text("these are my notes, not a report\n")
    assert_report_error(fake, "not an Nsight Compute report")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ncu-rep"
    empty.write_bytes(b"")
    assert_report_error(empty, "not an Nsight Compute report")


@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_truncated_report(small_plain: Path, tmp_path: Path, fraction: float) -> None:
    data = small_plain.read_bytes()
    truncated = tmp_path / "truncated.ncu-rep"
    truncated.write_bytes(data[: int(len(data) * fraction)])
    assert_report_error(truncated, "truncated or corrupt")


def test_truncated_gzip(tmp_path: Path) -> None:
    data = SMALL.read_bytes()
    truncated = tmp_path / "cut.ncu-rep.gz"
    truncated.write_bytes(data[: len(data) // 2])
    assert_report_error(truncated, "gzip")


def test_gzip_of_something_else(tmp_path: Path) -> None:
    other = tmp_path / "other.ncu-rep.gz"
    with gzip.open(other, "wb") as handle:
        handle.write(b"hello world, not a report")
    assert_report_error(other, "not an Nsight Compute report")


class _EmptyRange:
    def num_actions(self) -> int:
        return 0


class _ContextWithoutKernels:
    def __bool__(self) -> bool:
        return True

    def num_ranges(self) -> int:
        return 1

    def range_by_idx(self, index: int) -> _EmptyRange:
        return _EmptyRange()


def test_report_without_kernels(small_plain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ncu writes no file when nothing was profiled, so no real report of zero launches exists:
    # a valid report whose range holds no action stands in through ncu_report's interface.
    class FakeModule:
        IMetric = ncu_report.IMetric

        @staticmethod
        def load_report(path: str) -> _ContextWithoutKernels:
            return _ContextWithoutKernels()

    monkeypatch.setattr(ncu_report_reader, "load_ncu_report_module", lambda: FakeModule)
    monkeypatch.setenv(report_module.READER_ENV, "ncu_report")  # the direct reader's case: test_ncurep.py
    assert_report_error(small_plain, "no kernel launches")


def test_no_paths() -> None:
    with pytest.raises(ReportError, match="no reports given"):
        read_reports([])


def test_missing_ncu_report_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import sys

    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ncu_report":
            raise ImportError("no ncu_report")
        return real_import(name, *args, **kwargs)

    monkeypatch.setitem(sys.modules, "ncu_report", None)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(ncu_report_reader, "_candidate_ncu_python_dirs", lambda: [])
    with pytest.raises(ReportError) as info:
        ncu_report_reader.load_ncu_report_module()
    assert "pip install ncu-report" in info.value.render()


def test_ncu_install_copy_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the pip package absent, <ncu install>/extras/python is found from the resolved ncu path."""
    install = tmp_path / "nsight-compute" / "2025.3.1"
    (install / "extras" / "python").mkdir(parents=True)
    (install / "extras" / "python" / "ncu_report.py").write_text("MARKER = 'ncu install copy'\n")
    (install / "ncu").write_text("#!/bin/sh\n")
    (install / "ncu").chmod(0o755)
    bin_dir = tmp_path / "cuda" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "ncu").symlink_to(install / "ncu")
    monkeypatch.setenv("PATH", str(bin_dir))
    import sys

    monkeypatch.setitem(sys.modules, "ncu_report", None)  # the pip package fails to import
    candidates = report_module._candidate_ncu_python_dirs()
    assert install / "extras" / "python" in candidates
    monkeypatch.delitem(sys.modules, "ncu_report")
    monkeypatch.setattr(sys, "path", list(sys.path))
    # Hide the pip package so the fallback is exercised: put the fake install first via the finder.
    import importlib.machinery

    real_find = importlib.machinery.PathFinder.find_spec

    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name == "ncu_report" and not any(str(install) in p for p in sys.path):
            return None
        return real_find(name, path, target)

    monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", staticmethod(find_spec))
    module = ncu_report_reader.load_ncu_report_module()
    assert getattr(module, "MARKER", None) == "ncu install copy"
    monkeypatch.delitem(sys.modules, "ncu_report")
