"""Run directories: names never reused, atomic manifest, load_run/latest_run/is_run_dir and their errors."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from ncu_advisor import rundir
from ncu_advisor.errors import RunError
from ncu_advisor.table import ID_COLUMNS

NOW = datetime(2026, 11, 21, 21, 5, 9, tzinfo=timezone.utc)


def _manifest(**variants: str) -> dict:
    return {
        "format_version": 1,
        "complete": all(s != "pending" for s in variants.values()),
        "variants": {name: {"status": status} for name, status in variants.items()},
    }


def test_create_never_overwrites(tmp_path: Path) -> None:
    first = rundir.create_run_dir(tmp_path / "runs", "fused", NOW)
    (first / "marker").write_text("first")
    second = rundir.create_run_dir(tmp_path / "runs", "fused", NOW)
    third = rundir.create_run_dir(tmp_path / "runs", "fused", NOW)
    assert first.name == "20261121T210509Z-fused"
    assert second.name == "20261121T210509Z-fused-2" and third.name == "20261121T210509Z-fused-3"
    assert (first / "marker").read_text() == "first"


def test_manifest_round_trip_and_no_temp_left(tmp_path: Path) -> None:
    run = rundir.create_run_dir(tmp_path, "k", NOW)
    manifest = _manifest(a="ok", b="incorrect")
    manifest["commands"] = {"a": {"bench": ["python", "-m", "x"]}}
    rundir.write_manifest(run, manifest)
    assert json.loads((run / "manifest.json").read_text()) == manifest
    assert [p.name for p in run.iterdir()] == ["manifest.json"]
    loaded = rundir.load_run(run)
    assert loaded.manifest == manifest
    assert list(loaded.table.columns) == list(ID_COLUMNS) and loaded.table.empty
    assert list(loaded.timings.columns) == list(rundir.TIMING_COLUMNS)
    assert loaded.kernel_file is None


def test_load_reads_tables_and_kernel_copy(tmp_path: Path) -> None:
    run = rundir.create_run_dir(tmp_path, "k", NOW)
    rundir.write_manifest(run, _manifest(a="ok"))
    table = pd.DataFrame(
        {"variant": ["a", "a"], "kernel": ["k1", "k2"], "launch__registers_per_thread": [32.0, 40.0]}
    )
    table.to_parquet(run / rundir.METRICS_PARQUET, index=False)
    pd.DataFrame({"variant": ["a"] * 3, "rep": [0, 1, 2], "median_ms": [1.0, 1.5, 2.0]}).to_csv(
        run / rundir.TIMINGS_CSV, index=False
    )
    (run / "kernel.py").write_text("class Model: pass\n")
    loaded = rundir.load_run(run)
    assert loaded.table["launch__registers_per_thread"].tolist() == [32.0, 40.0]
    assert loaded.timings["median_ms"].median() == 1.5
    assert loaded.kernel_file == run / "kernel.py"


def test_incomplete_run_names_missing_variants(tmp_path: Path) -> None:
    run = rundir.create_run_dir(tmp_path, "k", NOW)
    rundir.write_manifest(run, _manifest(a="ok", b="pending", c="pending"))
    with pytest.raises(RunError) as err:
        rundir.load_run(run)
    assert "variants not profiled: b, c" in err.value.message
    assert err.value.exit_code == 2
    assert rundir.load_run(run, allow_incomplete=True).manifest["variants"]["b"]["status"] == "pending"
    assert rundir.missing_variants(rundir.read_manifest(run)) == ["b", "c"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "unreadable"),
        ('{"variants": {}}', "no format_version"),
        ('{"format_version": 2, "complete": true}', "newer"),
    ],
)
def test_bad_manifests(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(RunError, match=expected):
        rundir.load_run(tmp_path)


def test_not_a_run_dir(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="manifest.json is missing"):
        rundir.load_run(tmp_path)
    with pytest.raises(RunError, match="no such run directory"):
        rundir.load_run(tmp_path / "nope")
    assert not rundir.is_run_dir(tmp_path)


def test_latest_run(tmp_path: Path) -> None:
    assert rundir.latest_run(tmp_path / "absent") is None
    assert rundir.latest_run(tmp_path) is None
    older = rundir.create_run_dir(tmp_path, "k", datetime(2026, 1, 1, tzinfo=timezone.utc))
    newer = rundir.create_run_dir(tmp_path, "k", NOW)
    newest = rundir.create_run_dir(tmp_path, "k", NOW)  # same second: "-2"
    (tmp_path / "20991231T000000Z-not-a-run").mkdir()  # no manifest: ignored
    for run in (older, newer, newest):
        rundir.write_manifest(run, _manifest(a="ok"))
    assert rundir.is_run_dir(newer)
    assert rundir.latest_run(tmp_path) == newest


def test_variant_dir_is_inside_variants(tmp_path: Path) -> None:
    assert rundir.variant_dir(tmp_path, "ModelNew@cfg1") == tmp_path / "variants" / "ModelNew@cfg1"
    assert rundir.variant_dir(tmp_path, "a/b").parent == tmp_path / "variants"


# --- tables written apart from the run (rundir.finalize) -------------------------------------------------------
import json as _json  # noqa: E402
import shutil as _shutil  # noqa: E402
import stat as _stat  # noqa: E402

from ncu_advisor import rundir as _rundir  # noqa: E402
from ncu_advisor.ingest.readers import read_report as _read_report  # noqa: E402

_RECORDED = Path(__file__).resolve().parent.parent / "examples" / "runs" / "softmax"


def _strip_tables(tmp_path: Path) -> Path:
    run = tmp_path / "softmax"
    _shutil.copytree(_RECORDED, run)
    for name in (_rundir.METRICS_CSV, _rundir.METRICS_PARQUET, _rundir.TIMINGS_CSV):
        (run / name).unlink(missing_ok=True)
    manifest = _json.loads((run / _rundir.MANIFEST_NAME).read_text())
    manifest["tables"], manifest["complete"] = None, False
    _rundir.write_manifest(run, manifest)
    return run


def test_load_run_builds_missing_tables_from_the_variant_reports(tmp_path: Path) -> None:
    run = _strip_tables(tmp_path)
    loaded = _rundir.load_run(run)
    assert loaded.manifest["complete"] is True
    manifest = loaded.manifest
    for name, entry in manifest["variants"].items():
        expected = _read_report(run / entry["logs"]["report"], variant=name)
        rows = loaded.table[loaded.table["variant"] == name]
        assert len(rows) == len(expected)
        got = float(rows["gpu__time_duration.sum"].iloc[0])
        assert got == float(expected["gpu__time_duration.sum"].iloc[0])
        result = _json.loads((run / entry["dir"] / "result.json").read_text())
        assert list(loaded.timings[loaded.timings["variant"] == name]["median_ms"]) == result["timings_ms"]


def test_a_crashing_reader_costs_the_tables_not_the_run(tmp_path: Path, monkeypatch) -> None:
    run = _strip_tables(tmp_path)
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nkill -SEGV $$\n")
    fake_python.chmod(fake_python.stat().st_mode | _stat.S_IEXEC)
    monkeypatch.setattr(_rundir.sys, "executable", str(fake_python))
    note = _rundir.finalize(run)
    assert "exited with -11" in note
    manifest = _json.loads((run / _rundir.MANIFEST_NAME).read_text())
    assert manifest["complete"] is False and manifest["tables"] == note
    assert all(v["status"] == "ok" for v in manifest["variants"].values())


def test_a_reader_crash_on_units_is_retried_with_catalogue_units(tmp_path: Path, monkeypatch) -> None:
    # Seen on the H200 (2026-11-30): ncu 2025.3.1's ncu_report crashed with SIGSEGV in metric.unit().
    # The stand-in python crashes unless the retry asked for catalogue units, then runs the real child.
    run = _strip_tables(tmp_path)
    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/bin/sh\n"
        f'[ "$NCU_ADVISOR_UNITS" = catalogue ] || kill -SEGV $$\nexec {_rundir.sys.executable} "$@"\n'
    )
    fake_python.chmod(fake_python.stat().st_mode | _stat.S_IEXEC)
    monkeypatch.setattr(_rundir.sys, "executable", str(fake_python))
    note = _rundir.finalize(run)
    assert "units from the metric catalogue" in note and "exited with -11" in note
    loaded = _rundir.load_run(run)
    assert loaded.manifest["complete"] is True
    manifest = loaded.manifest
    for name, entry in manifest["variants"].items():
        expected = _read_report(run / entry["logs"]["report"], variant=name)
        got = loaded.table[loaded.table["variant"] == name]["gpu__time_duration.sum"]
        assert list(got) == list(expected["gpu__time_duration.sum"])


def test_catalogue_units_for_a_real_report(monkeypatch) -> None:
    from ncu_advisor.metrics import catalogue

    report = next((_RECORDED / "variants").glob("*/profile.ncu-rep*"))
    monkeypatch.setenv("NCU_ADVISOR_UNITS", "catalogue")
    table = _read_report(report)
    units = table.attrs["units"]
    known = catalogue()
    assert units["launch__registers_per_thread"] == "register/thread"
    assert units["sm__throughput.avg.pct_of_peak_sustained_elapsed"] == "%"
    shared = [name for name in known if name in units]
    assert len(shared) >= 10 and all(units[name] == known[name].unit for name in shared)


def test_a_timing_only_run_builds_its_tables_in_process(tmp_path: Path, monkeypatch) -> None:
    # No report to read, so no native reader to isolate: no child (the stand-in python would crash), the
    # closing of a timing-only profile is shorter (bench/results/2026-11-30-scale-h200x2-s4).
    run = _strip_tables(tmp_path)
    manifest = _json.loads((run / _rundir.MANIFEST_NAME).read_text())
    for entry in [manifest.get("reference") or {}, *manifest["variants"].values()]:
        report = (entry.get("logs") or {}).pop("report", None)
        if report:
            (run / report).unlink()
    _rundir.write_manifest(run, manifest)
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nkill -SEGV $$\n")
    fake_python.chmod(fake_python.stat().st_mode | _stat.S_IEXEC)
    monkeypatch.setattr(_rundir.sys, "executable", str(fake_python))
    note = _rundir.finalize(run)
    assert "exited with" not in note
    timings = (run / _rundir.TIMINGS_CSV).read_text()
    for name in manifest["variants"]:
        assert name in timings


def test_finalize_help_and_a_folder_without_manifest(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    run = [sys.executable, "-m", "ncu_advisor.rundir", "finalize"]
    helped = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=root)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m ncu_advisor.rundir finalize")
    empty = subprocess.run([*run, str(tmp_path)], capture_output=True, text=True, cwd=root)
    assert empty.returncode == 2 and "manifest.json is missing" in empty.stderr
    assert "Traceback" not in empty.stderr
