"""Every JSON output carries ``schema_version`` and validates against its schema shipped in the wheel.

The documents are the real outputs of the CLI on the shipped runs (``examples/runs/*``, recorded on an
H200) and the shipped tune run (``examples/tune/matmul``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.render.compare import COMPARISON_SCHEMA_VERSION
from ncu_advisor.render.findings import SCHEMA_VERSION as FINDINGS_SCHEMA_VERSION
from ncu_advisor.render.report_json import REPORT_SCHEMA_VERSION
from ncu_advisor.render.table import METRICS_SCHEMA_VERSION
from ncu_advisor.render.tune_report import TUNE_REPORT_SCHEMA_VERSION
from ncu_advisor.schemas import SCHEMA_FILES, load_schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
RUNS = sorted(p for p in (ROOT / "examples" / "runs").iterdir() if (p / "manifest.json").is_file())
TUNE_RUNS = sorted(p.parent for p in (ROOT / "examples" / "tune").glob("*/tune.json"))
VERSIONS = {
    "report": REPORT_SCHEMA_VERSION,
    "findings": FINDINGS_SCHEMA_VERSION,
    "comparison": COMPARISON_SCHEMA_VERSION,
    "metrics": METRICS_SCHEMA_VERSION,
    "tune-report": TUNE_REPORT_SCHEMA_VERSION,
}
runner = CliRunner()


def _json(*args: str, codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    result = runner.invoke(app, list(args))
    assert result.exit_code in codes, result.output
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def _valid(document: dict[str, Any], name: str) -> None:
    jsonschema.validate(document, load_schema(name), cls=jsonschema.Draft7Validator)
    assert document["schema_version"] == VERSIONS[name]


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schema_is_a_draft7_schema_with_the_code_version(name: str) -> None:
    schema = load_schema(name)
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["properties"]["schema_version"] == {"const": VERSIONS[name]}
    assert "schema_version" in schema["required"] and schema["additionalProperties"] is False


def test_schemas_ship_in_the_wheel() -> None:
    """The wheel takes the whole ncu_advisor package folder (hatch), schemas included, none excluded."""
    hatch = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]
    config = hatch["build"]["targets"]["wheel"]
    assert config["packages"] == ["ncu_advisor"] and "exclude" not in config
    folder = ROOT / "ncu_advisor" / "schemas"
    assert {p.name for p in folder.glob("*.schema.json")} == set(SCHEMA_FILES.values())


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_report_and_recommend_json_of_every_example_run(run: Path) -> None:
    report = _json("report", str(run), "--format", "json", codes=(0, 1))  # 1: findings at --fail-on error
    _valid(report, "report")
    manifest = json.loads((run / "manifest.json").read_text())
    assert {v["name"] for v in report["variants"]} >= set(manifest["variants"])
    findings = _json("recommend", str(run), "--format", "json", "--all-kernels", codes=(0, 1))
    _valid(findings, "findings")
    assert findings["gpu"] == report["gpu"]["name"]
    assert findings["kernels"] and all(k["variant"] for k in findings["kernels"])


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_metrics_json_of_every_example_run(run: Path) -> None:
    reports = sorted(run.glob("variants/*/profile.ncu-rep*"))
    document = _json("metrics", *map(str, reports), "--format", "json")
    _valid(document, "metrics")
    assert {launch["source"] for launch in document["launches"]} == set(map(str, reports))


def test_compare_json_regression_and_same() -> None:
    base, new = ROOT / "examples" / "runs" / "improved", ROOT / "examples" / "runs" / "baseline"
    slower = _json("compare", str(base), str(new), "--format", "json", codes=(1,))
    _valid(slower, "comparison")
    assert slower["exit_code"] == 1 and "ModelNew" in slower["regressions"]
    same = _json("compare", str(base), str(base), "--format", "json")
    _valid(same, "comparison")
    assert same["exit_code"] == 0 and {v["verdict"] for v in same["variants"]} == {"same"}


@pytest.mark.parametrize("run", TUNE_RUNS, ids=[r.name for r in TUNE_RUNS])
def test_tune_report_json(run: Path) -> None:
    document = _json("report", str(run), "--format", "json")
    _valid(document, "tune-report")
    assert len(document["trials"]) == len(json.loads((run / "tune.json").read_text())["trials"])


def test_a_document_without_schema_version_is_rejected() -> None:
    document = _json("compare", str(RUNS[0]), str(RUNS[0]), "--format", "json", codes=(0,))
    del document["schema_version"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, load_schema("comparison"))


OFFICIAL_SARIF = ROOT / "tests" / "schemas" / "sarif-schema-2.1.0.json"


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_sarif_follows_sarif_and_keeps_our_version_in_run_properties(run: Path) -> None:
    """SARIF is the one JSON output without a top-level ``schema_version``: SARIF forbids unknown top-level
    keys and versions itself (``version`` 2.1.0, ``$schema``); our property bags carry ours."""
    from ncu_advisor.render.sarif import SARIF_PROPERTIES_VERSION  # noqa: PLC0415

    log = _json("report", str(run), "--format", "sarif", codes=(0, 1))
    assert log["version"] == "2.1.0" and "schema_version" not in log
    jsonschema.validate(log, json.loads(OFFICIAL_SARIF.read_text()), cls=jsonschema.Draft7Validator)
    properties = log["runs"][0]["properties"]
    assert properties["schema_version"] == SARIF_PROPERTIES_VERSION
    skipped = properties["skippedForMissingMetrics"]
    if skipped["rules"]:  # a viewer shows it as a tool notification
        notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
        assert skipped["text"] in notes[0]["message"]["text"]
    for result in log["runs"][0]["results"]:
        assert set(result["properties"]["evidenceUnits"]) <= set(result["properties"]["evidence"])
