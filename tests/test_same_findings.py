"""`recommend RUN`, `report RUN --format json` and `compare RUN RUN` show the same findings (issue 12),
on every example run, with the default options and with --all-kernels / --stage auto."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor import rundir
from ncu_advisor.cli import app

ROOT = Path(__file__).resolve().parent.parent
RUNS = sorted(p for p in (ROOT / "examples" / "runs").iterdir() if rundir.is_run_dir(p))
runner = CliRunner()

Key = tuple[str, str, int, str, bool]


def _json(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, [*args, "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _recommend(run: Path, options: list[str]) -> set[Key]:
    document = _json("recommend", str(run), "--format", "json", *options)
    return {
        (k["variant"], k["kernel"], k["launch"], f["rule"], k["library"])
        for k in document["kernels"]
        for f in k["findings"]
    }


def _listed(findings: list[dict]) -> set[Key]:  # type: ignore[type-arg]
    return {(f["variant"], f["kernel"], f["launch"], f["rule"], f["library"]) for f in findings}


CASES = [(run, []) for run in RUNS] + [
    (ROOT / "examples" / "runs" / "improved", ["--all-kernels", "--stage", "auto"])
]


@pytest.mark.parametrize(("run", "options"), CASES, ids=[f"{r.name}{'-'.join(['', *o])}" for r, o in CASES])
def test_the_three_commands_show_the_same_findings(run: Path, options: list[str]) -> None:
    recommended = _recommend(run, options)
    report = _json("report", str(run), "--format", "json", *options)["findings"]
    compared = _listed(_json("compare", str(run), str(run), "--format", "json", *options)["findings"])
    assert recommended == _listed(report) == compared
    assert len(recommended) == len(report), "no finding listed twice"
    assert all(variant != "Model" for variant, *_ in recommended), "the reference is never evaluated"


def test_library_kernels_are_flagged_not_hidden() -> None:
    run = ROOT / "examples" / "runs" / "improved"
    findings = _recommend(run, [])
    library = {k for k in findings if k[4]}
    assert library and findings - library
    assert all("triton" not in kernel for _, kernel, *_ in library)
    text = runner.invoke(app, ["recommend", str(run), "--fail-on", "never"]).stdout
    assert "library kernels" in text and "--all-kernels shows them in full" in text
