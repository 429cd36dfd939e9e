"""`ncu-advisor metrics` and `ncu-advisor gpus` through typer's CliRunner, checked on real reports."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import ncu_report
import pandas as pd
import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.metrics import CORE_METRICS
from ncu_advisor.ingest.readers import read_report

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "examples" / "reports" / "h200-seed"
SMALL = SEEDS / "ModelNew_seed000_small.ncu-rep.gz"
CSV_DIR = ROOT / "tests" / "fixtures" / "csv"

runner = CliRunner()


def invoke(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


def independent_values(report_gz: Path, tmp_path: Path) -> list[dict[str, object]]:
    """Each launch's metric values read straight through ncu_report (not through ncu_advisor)."""
    plain = tmp_path / report_gz.name[: -len(".gz")]
    with gzip.open(report_gz, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    ctx = ncu_report.load_report(str(plain))
    launches = []
    for i in range(ctx.num_ranges()):
        rng = ctx.range_by_idx(i)
        for j in range(rng.num_actions()):
            action = rng.action_by_idx(j)
            values: dict[str, object] = {"__kernel": action.name()}
            for name in action.metric_names():
                metric = action.metric_by_name(name)
                values[name] = metric.value() if metric.has_value() else None
            launches.append(values)
    return launches


def test_json_values_are_ncu_report_values(tmp_path: Path) -> None:
    result = invoke("metrics", str(SMALL), "--format", "json")
    assert result.exit_code == 0, result.output
    launches = json.loads(result.stdout)["launches"]
    expected = independent_values(SMALL, tmp_path)
    assert isinstance(launches, list) and len(launches) == len(expected) == 5
    for got, want in zip(launches, expected, strict=True):
        assert got["kernel"] == want["__kernel"]
        assert got["gpu"] == want["device__attribute_display_name"]
        for name, value in want.items():
            if name == "__kernel":
                continue
            if value is None or value == "":
                assert name not in got, name  # missing values are omitted
            elif isinstance(value, str):
                assert got[name] == value, name
            else:
                assert got[name] == value, name  # exact: base units, no rounding
                assert isinstance(got[name], float)


def test_json_to_file_is_the_same_as_stdout(tmp_path: Path) -> None:
    out = tmp_path / "table.json"
    result = invoke("metrics", str(SMALL), "--format", "json", "-o", str(out))
    assert result.exit_code == 0, result.output
    printed = invoke("metrics", str(SMALL), "--format", "json").stdout
    assert json.loads(out.read_text()) == json.loads(printed)
    assert "wrote 5 launches" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]  # no temp file left behind


def test_default_reads_the_examples() -> None:
    result = invoke("metrics", "--format", "json")
    assert result.exit_code == 0, result.output
    launches = json.loads(result.stdout)["launches"]
    examples = sorted((ROOT / "examples" / "reports").rglob("*.ncu-rep.gz"))
    assert {Path(item["source"]) for item in launches} == set(examples)
    counts = {path: 0 for path in examples}
    for launch in launches:
        counts[Path(launch["source"])] += 1
    # meta.json: seed000 5 launches, seed001 1, ModelNew 2 (small), same kernels in the full reports.
    assert counts[SEEDS / "ModelNew_seed000_small.ncu-rep.gz"] == 5
    assert counts[SEEDS / "ModelNew_seed001_small.ncu-rep.gz"] == 1
    assert counts[SEEDS / "ModelNew_small.ncu-rep.gz"] == 2


def test_table_shows_core_metrics_with_units() -> None:
    result = invoke("metrics", str(SEEDS / "ModelNew_seed001_small.ncu-rep.gz"))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "conv2d_scale_min_kernel" in text and "NVIDIA H200" in text
    for name in CORE_METRICS:
        assert name in text
    registers_line = next(
        line for line in text.splitlines() if line.startswith("launch__registers_per_thread ")
    )
    assert "register/thread" in registers_line and "187" in registers_line  # meta.json: 187 registers
    assert "device__attribute_display_name" not in text  # only the core metrics


def test_metric_option_selects_columns(tmp_path: Path) -> None:
    out = tmp_path / "two.csv"
    result = invoke(
        "metrics",
        str(SMALL),
        "-f",
        "csv",
        "-o",
        str(out),
        "--metric",
        "gpu__time_duration.sum",
        "--metric",
        "launch__registers_per_thread",
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns[-2:]) == ["gpu__time_duration.sum", "launch__registers_per_thread"]
    assert len(table.columns) == 9 + 2
    expected = independent_values(SMALL, tmp_path)
    assert table["gpu__time_duration.sum"].tolist() == [float(e["gpu__time_duration.sum"]) for e in expected]


def test_unknown_metric_is_an_error() -> None:
    result = invoke("metrics", str(SMALL), "--metric", "no__such_metric.sum")
    assert result.exit_code == 2
    assert "no__such_metric.sum" in result.stderr and "Traceback" not in result.output


def test_fallback_note_is_printed(public_reports: dict[str, Path]) -> None:
    report = public_reports["victor-lvsy__seq_align__profile.ncu-rep"]
    result = invoke("metrics", str(report), "--metric", "dram__throughput.avg.pct_of_peak_sustained_elapsed")
    assert result.exit_code == 0, result.output
    assert (
        "note: dram__throughput.avg.pct_of_peak_sustained_elapsed is absent; using its fallback "
        "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed" in result.stderr
    )
    dram_line = next(item for item in result.stdout.splitlines() if item.startswith("dram__throughput"))
    assert "%" in dram_line


def test_parquet_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "table.parquet"
    result = invoke("metrics", str(SMALL), "-f", "parquet", "-o", str(out))
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    expected = independent_values(SMALL, tmp_path)
    assert len(table) == 5
    assert table["kernel"].tolist() == [e["__kernel"] for e in expected]
    assert table["dram__bytes_read.sum"].tolist() == [float(e["dram__bytes_read.sum"]) for e in expected]


def test_parquet_needs_an_output_file() -> None:
    result = invoke("metrics", str(SMALL), "-f", "parquet")
    assert result.exit_code == 2
    assert "-o" in result.stderr and "parquet" in result.stderr


def test_unknown_format() -> None:
    result = invoke("metrics", str(SMALL), "-f", "xml")
    assert result.exit_code == 2 and "xml" in result.stderr


def test_unwritable_output_leaves_nothing(tmp_path: Path) -> None:
    locked = tmp_path / "missing-dir" / "out.json"
    result = invoke("metrics", str(SMALL), "-f", "json", "-o", str(locked))
    assert result.exit_code == 2
    assert str(locked) in result.stderr and "Traceback" not in result.output
    assert not locked.parent.exists()


def test_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "table.csv"
    out.write_text("previous content\n")

    def failing_write(self: Path, *args: object, **kwargs: object) -> int:
        self.open("w").write("partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", failing_write)
    result = invoke("metrics", str(SMALL), "-f", "csv", "-o", str(out))
    assert result.exit_code == 2 and "No space left" in result.stderr
    assert out.read_text() == "previous content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing.ncu-rep", ["no such file"]),
        (
            lambda d: _write(d / "notes.ncu-rep", b"plain text, not a report"),
            ["not an Nsight Compute report"],
        ),
        (
            lambda d: _write(d / "half.ncu-rep", gzip.decompress(SMALL.read_bytes())[:4_000_000]),
            ["truncated or corrupt"],
        ),
        (lambda d: _write(d / "table.csv", b"a,b\n1,2\n"), ["not an ncu CSV export"]),
        (
            lambda d: _write(
                d / "nokernels.csv",
                b"".join((CSV_DIR / "seed000_small_raw.csv").read_bytes().splitlines(True)[:2]),
            ),
            ["no kernel launches"],
        ),
    ],
    ids=["missing", "text-renamed", "truncated", "csv-without-ncu-columns", "csv-without-kernels"],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, make: object, words: list[str]) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    result = invoke("metrics", str(path))
    assert result.exit_code == 2
    lines = [item for item in result.stderr.splitlines() if item.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert str(path) in lines[0]
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_gpus_lists_the_catalogue() -> None:
    result = invoke("gpus")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rtx = next(item for item in lines if item.startswith("rtx4090"))
    assert rtx.split()[:6] == ["rtx4090", "4090", "Ada", "Lovelace", "8.9", "128"]
    assert "1008" in rtx and "165.2" in rtx and "72" in rtx
    for key in ("h100_sxm", "h100_pcie", "h200", "a100_40gb", "a100_80gb", "l4", "l40s", "rtx3090", "t4"):
        assert any(item.startswith(key + " ") for item in lines), key


def test_gpus_key_prints_the_prompt_block() -> None:
    result = invoke("gpus", "rtx4090")
    assert result.exit_code == 0
    assert result.stdout.startswith("# Target GPU\nGPU Name: 4090\nArchitecture: Ada Lovelace\n")
    result = invoke("gpus", "h999")
    assert result.exit_code == 2 and "h999" in result.stderr


def test_nan_metrics_are_omitted_from_json(public_reports: dict[str, Path]) -> None:
    result = invoke("metrics", str(public_reports["flyinglandlord__sglang__profile.ncu-rep"]), "-f", "json")
    assert result.exit_code == 0, result.output
    launches = json.loads(result.stdout)["launches"]
    flash = [item for item in launches if item["kernel"] == "flash_fwd_kernel"]
    assert len(flash) == 1 and "launch__grid_size" not in flash[0]
    assert all(not (isinstance(v, float) and math.isnan(v)) for item in launches for v in item.values())
    # Infinite values (ncu writes inf for some ratios here) become null: JSON has no infinity.
    table = read_report(public_reports["flyinglandlord__sglang__profile.ncu-rep"])
    numeric = table.select_dtypes("float64")
    infinite = [(i, c) for c in numeric.columns for i in range(len(table)) if math.isinf(numeric[c].iloc[i])]
    assert infinite
    for row, name in infinite:
        assert launches[row][name] is None
