"""Damaged run directories and gzip bombs through the CLI (issue 11): exit 2 naming the file, never a
clean-looking result. Built from the recorded runs in examples/runs/ and the fixture report."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app

ROOT = Path(__file__).resolve().parents[1]
SOFTMAX = ROOT / "examples" / "runs" / "softmax"
runner = CliRunner()


def _copy(tmp_path: Path) -> Path:
    run = tmp_path / "rc3"
    shutil.copytree(SOFTMAX, run)
    (run / "metrics.parquet").unlink()
    return run


@pytest.mark.parametrize("size", [3000, 16000])
def test_cut_metrics_csv_is_refused(tmp_path: Path, size: int) -> None:
    run = _copy(tmp_path)
    (run / "metrics.csv").write_bytes((SOFTMAX / "metrics.csv").read_bytes()[:size])
    result = runner.invoke(app, ["recommend", str(run)])
    assert result.exit_code == 2, result.output
    assert "metrics.csv is truncated or does not match the manifest" in result.output
    assert "launches" not in result.stdout


def test_csv_cut_at_a_line_end_names_the_lost_variants(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    lines = (SOFTMAX / "metrics.csv").read_bytes().splitlines(keepends=True)
    (run / "metrics.csv").write_bytes(b"".join(lines[:3]))  # header + 2 of 4 launches, whole lines
    result = runner.invoke(app, ["recommend", str(run)])
    assert result.exit_code == 2, result.output
    assert "the table has none for ModelNew_tail, ModelNew" in " ".join(result.output.split())


def test_row_count_must_match_the_manifest_note(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    lines = (SOFTMAX / "metrics.csv").read_bytes().splitlines(keepends=True)
    (run / "metrics.csv").write_bytes(b"".join([*lines, lines[-1]]))  # one launch twice
    result = runner.invoke(app, ["recommend", str(run)])
    assert result.exit_code == 2, result.output
    assert "records 4 launches of 4 variants, the table has 5 launches" in " ".join(result.output.split())


def test_cut_variant_report_gives_a_note(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    report = run / "variants" / "ModelNew_w1" / "profile.ncu-rep.gz"
    report.write_bytes(report.read_bytes()[:500])
    result = runner.invoke(app, ["recommend", str(run)])
    assert result.exit_code in (0, 1), result.output
    assert "variant ModelNew_w1: its report variants/ModelNew_w1/profile.ncu-rep.gz looks damaged" in (
        " ".join(result.output.split())
    )


def test_intact_run_still_loads() -> None:
    result = runner.invoke(app, ["recommend", str(SOFTMAX)])
    assert result.exit_code in (0, 1), result.output
    assert "looks damaged" not in result.output


def test_manifest_only_says_no_report_is_there(tmp_path: Path) -> None:
    run = tmp_path / "only"
    run.mkdir()
    shutil.copy(SOFTMAX / "manifest.json", run / "manifest.json")
    result = runner.invoke(app, ["recommend", str(run)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "reports of 4 variant(s) and none of them is in the run directory" in text


def test_manifest_with_a_5000_digit_number(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    data = (run / "manifest.json").read_text().replace('"reps": 5', '"reps": ' + "9" * 5000)
    (run / "manifest.json").write_text(data)
    result = runner.invoke(app, ["recommend", str(run)])
    assert result.exit_code == 2, result.output
    assert "has over 4300 digits" in " ".join(result.output.split())
    assert "set_int_max_str_digits" not in result.output


def test_metrics_reads_a_run_directory() -> None:
    import pandas as pd

    run = ROOT / "examples" / "runs" / "improved"
    result = runner.invoke(app, ["metrics", str(run), "-f", "json"])
    assert result.exit_code == 0, result.output
    launches = json.loads(result.stdout)["launches"]
    expected = pd.read_csv(run / "metrics.csv")
    assert len(launches) == len(expected)
    assert [item["kernel"] for item in launches] == list(expected["kernel"])


CASE = ROOT.parent / "shared" / "cases" / "text-output-sm75.txt"


@pytest.mark.skipif(not CASE.is_file(), reason="../shared/cases not present")
def test_note_names_the_path_once(tmp_path: Path) -> None:
    text = tmp_path / "x.txt"
    text.write_text("==PROF== Connected to process 1\nhello from the program\n" + CASE.read_text())
    result = runner.invoke(app, ["recommend", str(text)])
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert notes, result.output
    for line in notes:
        assert line.count(str(text)) <= 1, line


def test_gzip_bomb_is_refused_fast_in_little_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.ncu-rep.gz"
    report = gzip.decompress((ROOT / "tests" / "fixtures" / "formats" / "full.ncu-rep.gz").read_bytes())
    zeros = bytes(1 << 20)
    with gzip.open(bomb, "wb", compresslevel=1) as out:
        out.write(report)
        for _ in range(300):
            out.write(zeros)
    assert bomb.stat().st_size < 3 << 20
    code = (
        "import re\n"
        "from typer.testing import CliRunner\n"
        "from ncu_advisor.cli import app\n"
        f"r = CliRunner().invoke(app, ['recommend', {str(bomb)!r}])\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]\n"
        "print(r.exit_code, hwm)\n"
        "print(r.output)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    first, _, output = proc.stdout.partition("\n")
    exit_code, peak_kb = (int(x) for x in first.split())
    assert exit_code == 2, proc.stdout + proc.stderr
    assert "inflates past 150x its size" in " ".join(output.split())
    assert peak_kb < 400_000, peak_kb  # 300 MB of zeros never held (VmHWM: ru_maxrss keeps the parent's)
