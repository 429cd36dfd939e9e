"""The red-team list of issue 11, re-run through the CLI: each kind of bad input gives exit 2 with a message
naming the file and the problem, never a traceback (exit 1, which CI reads as "findings"), a hang, a
clean-looking result or a lost file.

Inputs are damaged copies of the shipped examples (examples/reports, examples/runs).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.ingest import ncurep
from tests.conftest import EXAMPLES

REPORT = EXAMPLES / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"
FIVE = EXAMPLES / "reports" / "h200-seed" / "ModelNew_seed000_small.ncu-rep.gz"
RUN = EXAMPLES / "runs" / "elementwise"
runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"traceback: {result.exception!r}"
    )
    return result.exit_code, result.output


def expect_exit_2(*args: str, says: tuple[str, ...], env: dict[str, str] | None = None) -> str:
    code, output = invoke(*args, env=env)
    assert code == 2, output
    for text in says:
        assert text in output, f"{text!r} not in {output!r}"
    assert "Traceback" not in output and "no findings" not in output
    return output


# ---------------------------------------------------------------------------------------------------
# Damaged reports
# ---------------------------------------------------------------------------------------------------


def test_report_cut_by_one_byte(tmp_path: Path) -> None:
    cut = tmp_path / "cut.ncu-rep"
    cut.write_bytes(gzip.decompress(FIVE.read_bytes())[:-1])
    for command in ("recommend", "metrics"):
        expect_exit_2(command, str(cut), says=(str(cut), "truncated or corrupt", "re-record"))


def test_denormal_value_is_not_a_spill_finding(tmp_path: Path) -> None:
    data = bytearray(gzip.decompress(REPORT.read_bytes()))
    parsed = ncurep.read_launches(bytes(data))
    nid = parsed.strings.index("launch__waves_per_multiprocessor")
    raw = parsed.launches[0].values[nid]
    pos = bytes(data).index(raw, parsed.result_spans[0][0])
    data[pos + 1 : pos + 9] = struct.pack("<d", 2.78e-309)
    damaged = tmp_path / "denormal.ncu-rep"
    damaged.write_bytes(bytes(data))
    expect_exit_2(
        "recommend", str(damaged), says=(str(damaged), "subnormal", "launch__waves_per_multiprocessor")
    )


def test_gzip_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.ncu-rep.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as handle:
        handle.write(b"NVR\x00")
        for _ in range(8):
            handle.write(bytes(1 << 20))
    expect_exit_2(
        "metrics",
        str(bomb),
        says=(str(bomb), "inflates past the limit of 1,048,576 bytes", "NCU_ADVISOR_MAX_INFLATE"),
        env={"NCU_ADVISOR_MAX_INFLATE": "1M"},
    )


def test_fifo_and_device_inputs(tmp_path: Path) -> None:
    fifo = tmp_path / "report.csv"
    os.mkfifo(fifo)
    expect_exit_2("metrics", str(fifo), says=(str(fifo), "not a regular file"))
    expect_exit_2("metrics", "/dev/zero", says=("/dev/zero", "not a regular file"))


def test_csv_field_over_the_csv_limit(tmp_path: Path) -> None:
    lines = (
        (EXAMPLES.parent / "tests" / "fixtures" / "csv" / "seed000_small_raw.csv").read_text().splitlines()
    )
    lines[2] += ',"' + "y" * 200_000 + '"'
    big = tmp_path / "big.csv"
    big.write_text("\n".join(lines) + "\n")
    expect_exit_2("metrics", str(big), says=(str(big), "field larger than field limit"))


# ---------------------------------------------------------------------------------------------------
# Run directories
# ---------------------------------------------------------------------------------------------------


def copy_run(tmp_path: Path, name: str = "run") -> Path:
    target = tmp_path / name
    shutil.copytree(RUN, target)
    return target


def set_manifest(run: Path, text: str) -> None:
    (run / "manifest.json").write_text(text)


@pytest.mark.parametrize("command", ["recommend", "report", "compare"])
def test_manifest_only_folder(tmp_path: Path, command: str) -> None:
    run = tmp_path / "only-manifest"
    run.mkdir()
    shutil.copy(RUN / "manifest.json", run / "manifest.json")
    args = (command, str(run), str(run)) if command == "compare" else (command, str(run))
    expect_exit_2(*args, says=(str(run), "no metrics table"))


@pytest.mark.parametrize("command", ["recommend", "report", "compare"])
def test_run_marked_incomplete(tmp_path: Path, command: str) -> None:
    run = copy_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["complete"] = False
    set_manifest(run, json.dumps(manifest))
    args = (command, str(run), str(run)) if command == "compare" else (command, str(run))
    expect_exit_2(*args, says=(str(run), "incomplete run", "marked incomplete"))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"format_version": 1, "variants": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"format_version": 1, "gpu": {"sm_count": ' + "9" * 5000 + "}}", "unreadable"),
        ('{"format_version": 1, "variants": {"A": {"status": 7}}}', "variants.A.status"),
        ('{"format_version": "one"}', "format_version"),
        ('{"format_version": 1, "variants": {"A": {"status": "ok", "median_ms": -1.0}}}', "positive"),
        ('{"format_version": 1, "surprise": true}', "surprise"),
        ("[1, 2]", "no format_version"),
    ],
    ids=[
        "deep-nesting",
        "5000-digits",
        "wrong-status-type",
        "wrong-version-type",
        "negative-time",
        "unknown-key",
        "not-an-object",
    ],
)
def test_malformed_manifest(tmp_path: Path, text: str, says: str) -> None:
    run = copy_run(tmp_path)
    set_manifest(run, text)
    expect_exit_2("recommend", str(run), says=("manifest.json", says))


@pytest.mark.parametrize(
    ("value", "says"), [("nan", "finite"), ("0", "positive, finite"), ("-0.5", "positive, finite")]
)
def test_bad_timings(tmp_path: Path, value: str, says: str) -> None:
    run = copy_run(tmp_path)
    lines = (run / "timings.csv").read_text().splitlines()
    variant, rep, _ = lines[1].split(",")
    lines[1] = f"{variant},{rep},{value}"
    (run / "timings.csv").write_text("\n".join(lines) + "\n")
    expect_exit_2("compare", str(run), str(RUN), says=("timings.csv", "line 2", says))


# ---------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------


def test_output_over_the_input_is_refused(tmp_path: Path) -> None:
    report = tmp_path / "r.ncu-rep.gz"
    shutil.copy(REPORT, report)
    before = report.read_bytes()
    expect_exit_2(
        "metrics", str(report), "-f", "csv", "-o", str(report), says=(str(report), "overwrite an input")
    )
    assert report.read_bytes() == before
    link = tmp_path / "link.csv"
    link.symlink_to(report)
    expect_exit_2("metrics", str(report), "-f", "csv", "-o", str(link), says=("overwrite an input",))
    assert report.read_bytes() == before


def test_output_follows_symlinks_and_keeps_modes(tmp_path: Path) -> None:
    target = tmp_path / "target.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    code, output = invoke("metrics", str(REPORT), "-f", "csv", "-o", str(link))
    assert code == 0, output
    assert link.is_symlink() and target.read_text().startswith("source,")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    old_mask = os.umask(0o022)
    try:
        code, _ = invoke("metrics", str(REPORT), "-f", "csv", "-o", str(tmp_path / "new.csv"))
    finally:
        os.umask(old_mask)
    assert code == 0 and stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o644


def test_output_to_a_character_device_stays_a_device() -> None:
    code, output = invoke("metrics", str(REPORT), "-f", "csv", "-o", "/dev/null")
    assert code == 0, output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_name_too_long(tmp_path: Path) -> None:
    long_name = str(tmp_path / ("x" * 300 + ".csv"))
    expect_exit_2("metrics", str(REPORT), "-f", "csv", "-o", long_name, says=("File name too long",))
    expect_exit_2("metrics", str(tmp_path / ("y" * 300 + ".ncu-rep")), says=("File name too long",))


# ---------------------------------------------------------------------------------------------------
# Rules and messages
# ---------------------------------------------------------------------------------------------------


def test_huge_format_width_in_a_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    text = (EXAMPLES.parent / "rules" / "NA101-registers-over-128.yaml").read_text()
    text = text.replace("id: NA101", "id: NA901").replace("name: registers-over-128", "name: huge-width")
    text = text.replace("{registers:.0f}", "{registers:>2000000000}")
    (rules / "NA901.yaml").write_text(text)
    expect_exit_2(
        "recommend", str(REPORT), "--rules", str(rules), says=("NA901", "'>2000000000' is not allowed")
    )


def test_markup_in_paths_is_printed_literally(tmp_path: Path) -> None:
    for name in ("a[/]b.ncu-rep", "test_matmul[fp16-128].ncu-rep", "[bold]x[/bold].csv"):
        missing = tmp_path / name
        output = expect_exit_2("metrics", str(missing), says=("no such file",))
        assert str(missing) in output.replace("\n", "")
