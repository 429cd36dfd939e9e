"""Red team 5 (issue 11), D1: a details CSV or text output of the same launch must give the verdict the raw
CSV gives. ncu's details page carries no ``device__attribute_*`` (the GPU is unnamed there) but prints
"# SMs" (``launch__sm_count``): NA307 (grid-too-small) used to fail on every such launch with a division by
zero blamed on the shipped rule, so ``--fail-on warning`` passed the details CSV and failed the raw CSV."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ncu_advisor.cli import app

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ROOT / "tests" / "fixtures" / "formats"
runner = CliRunner()


def _launch(src: Path, out: Path, header_lines: int, launch_id: str) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:header_lines] + [ln for ln in lines if ln.startswith(f'"{launch_id}",')]))
    return out


def test_details_and_raw_csv_of_one_launch_give_the_same_gate(tmp_path: Path) -> None:
    raw = _launch(FORMATS / "raw.csv", tmp_path / "r2.csv", 2, "2")
    details = _launch(FORMATS / "details.csv", tmp_path / "d2.csv", 1, "2")
    for path in (raw, details):
        result = runner.invoke(app, ["recommend", str(path), "--fail-on", "warning"])
        assert result.exit_code == 1, (path.name, result.output)
        assert "WARNING NA307 grid-too-small" in result.output and "failed on" not in result.output


def test_without_any_sm_count_the_rule_is_skipped_not_failed(tmp_path: Path) -> None:
    details = _launch(FORMATS / "details.csv", tmp_path / "d2.csv", 1, "2")
    lines = details.read_text().splitlines(keepends=True)
    details.write_text("".join(ln for ln in lines if '"# SMs"' not in ln))
    result = runner.invoke(app, ["recommend", str(details)])
    assert "NA307 failed" not in result.output and "division by zero" not in result.output
    assert "gpu_sm_count" in result.output  # said as the missing input


def test_a_variant_that_failed_in_new_is_a_regression_whatever_its_check_said(tmp_path: Path) -> None:
    """D10: NEW's variant failed after its correctness check passed (a crash in the timing step): compare
    said 'unknown' and exit 0; a failed variant is a regression (exit 1) naming the reason."""
    import json
    import shutil

    base = ROOT / "examples" / "runs" / "improved"
    new = tmp_path / "improved"
    shutil.copytree(base, new)
    manifest = json.loads((new / "manifest.json").read_text())
    entry = manifest["variants"]["ModelNew"]
    entry["status"], entry["reason"] = "failed", "RuntimeError: CUDA error in the timing step"
    (new / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["compare", str(base), str(new)])
    assert result.exit_code == 1, result.output
    assert "now failed: RuntimeError: CUDA error in the timing step" in " ".join(result.output.split())
