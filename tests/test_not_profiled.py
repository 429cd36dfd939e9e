"""A launch ncu failed to profile (in the report, no metric value) is listed as "not profiled" with the
reason in every output, counted apart from clean launches, never "no findings", and is not clean for
``--fail-on`` (a warning). Built from a real recorded report with one launch's metric values removed, as
ncu writes such a launch (tests/test_damage.py builds the reader side the same way).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from typer.testing import CliRunner

from ncu_advisor.analysis import inputs, pipeline
from ncu_advisor.cli import app
from ncu_advisor.ingest import binary
from ncu_advisor.render import formats
from ncu_advisor.schemas import load_schema
from tests.conftest import EXAMPLES

FIVE_LAUNCHES = EXAMPLES / "reports" / "h200-seed" / "ModelNew_seed000_small.ncu-rep.gz"
REASON = "ncu recorded the launch without metric values (see ncu's log for why)"
runner = CliRunner()


def _blank(table: pd.DataFrame, row: int, *, keep_attrs: bool) -> pd.DataFrame:
    table = table.copy()
    table.loc[row, [c for c in table.columns if "__" in c]] = None
    if keep_attrs:
        binary._mark_not_profiled(table)
    else:
        table.attrs = {}  # as a run directory's table (rundir.build_tables) or a concatenation leaves it
    return table


@pytest.fixture(params=[True, False], ids=["reader-attrs", "attrs-dropped"])
def damaged(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    real = inputs.read_input

    def read_input(path: Path) -> inputs.Input:
        item = real(path)
        return dataclasses.replace(item, table=_blank(item.table, 2, keep_attrs=request.param))

    monkeypatch.setattr(pipeline, "read_input", read_input)
    return bool(request.param)


def test_recommend_text_lists_the_launch_as_not_profiled_and_exits_1_at_warning(damaged: bool) -> None:
    result = runner.invoke(app, ["recommend", str(FIVE_LAUNCHES), "--fail-on", "warning"])
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert f"not profiled: {REASON}" in out
    block = out.split("(launch 2")[1].split("\n\n")[0]
    assert "not profiled" in block and "no findings" not in block
    assert "1 launch(es) not profiled (not clean, counted apart)" in out
    at_error = runner.invoke(app, ["recommend", str(FIVE_LAUNCHES), "--fail-on", "error"])
    assert at_error.exit_code == 0 and "not profiled" in at_error.stdout  # shown where it does not gate


def test_every_output_shows_it_and_json_validates(damaged: bool) -> None:
    analysis = pipeline.analyze([FIVE_LAUNCHES])
    assert [(x["launch"], x["reason"]) for x in analysis.not_profiled] == [(2, REASON)]
    assert analysis.fails("warning") and not analysis.fails("error")
    for fmt in formats.RECOMMEND_FORMATS:
        assert "not profiled" in formats.render(fmt, analysis), fmt
    for fmt in formats.REPORT_FORMATS:
        assert "not profiled" in formats.render_report(fmt, analysis, fail_on="warning"), fmt
    found = json.loads(formats.render("json", analysis))
    jsonschema.validate(found, load_schema("findings"))
    launch2 = [k for k in found["kernels"] if k["launch"] == 2]
    assert [f["rule"] for f in launch2[0]["findings"]] == [pipeline.NOT_PROFILED_RULE]
    report = json.loads(formats.render_report("json", analysis))
    jsonschema.validate(report, load_schema("report"))
    sarif = json.loads(formats.render_report("sarif", analysis))
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rules[0]["id"] == pipeline.NOT_PROFILED_RULE
    markdown = formats.render("markdown", analysis)
    section = markdown.split("(launch 2")[1].split("\n## ")[0]
    assert "not profiled" in section and "No findings" not in section


def test_undamaged_report_has_no_not_profiled_launch() -> None:
    analysis = pipeline.analyze([FIVE_LAUNCHES])
    assert analysis.not_profiled == []
    assert "not profiled" not in formats.render("text", analysis)


def test_the_readers_reason_is_carried(monkeypatch: pytest.MonkeyPatch) -> None:
    real = inputs.read_input

    def read_input(path: Path) -> inputs.Input:
        item = real(path)
        table = _blank(item.table, 4, keep_attrs=True)
        table.attrs["not_profiled"][0]["reason"] = "replay failed"
        return dataclasses.replace(item, table=table)

    monkeypatch.setattr(pipeline, "read_input", read_input)
    analysis = pipeline.analyze([FIVE_LAUNCHES])
    assert [(x["launch"], x["reason"]) for x in analysis.not_profiled] == [(4, "replay failed")]
    assert "not profiled: replay failed" in formats.render("text", analysis)
