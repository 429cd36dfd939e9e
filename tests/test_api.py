"""The Python API (``ncu_advisor.analyze``): the same analysis as ``recommend``, and docs/api.md's example.

Real data: the recorded example runs in examples/runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import ncu_advisor
from ncu_advisor.cli import app
from ncu_advisor.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "examples" / "runs"
EXAMPLES = sorted(p.name for p in RUNS.iterdir() if (p / "manifest.json").is_file()) if RUNS.is_dir() else []


def _recommend_json(run: Path) -> dict[str, object]:
    result = CliRunner().invoke(app, ["recommend", str(run), "--format", "json", "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize("run", EXAMPLES)
def test_same_findings_and_proposals_as_recommend(run: str) -> None:
    result = ncu_advisor.analyze(RUNS / run)
    document = _recommend_json(RUNS / run)
    kernels = document["kernels"]
    assert isinstance(kernels, list)
    expected = {
        (k["variant"], k["kernel"], k["launch"], f["rule"], k["library"])
        for k in kernels
        for f in k["findings"]
    }
    found = set(
        result.findings[["variant", "kernel", "launch", "rule", "library"]].itertuples(index=False, name=None)
    )
    assert found == expected
    assert len(result.findings) == sum(len(k["findings"]) for k in kernels)
    blocks = {(k["variant"], k["kernel"], k["autotune_block"]) for k in kernels if k["autotune_block"]}
    assert {(p.variant, p.kernel, p.autotune_block) for p in result.proposals} == blocks
    for proposal in result.proposals:
        where = (proposal.variant, proposal.kernel)
        launch = next(k for k in kernels if (k["variant"], k["kernel"]) == where)
        assert proposal.configs == [
            {key: c[key] for key in ("params", "num_warps", "num_stages", "reason", "baseline")}
            for c in launch["proposals"]
        ]


def test_frames_have_their_columns_and_order() -> None:
    result = ncu_advisor.analyze(str(RUNS / "improved"))
    assert list(result.variants.columns) == list(ncu_advisor.VARIANT_COLUMNS)
    assert list(result.findings.columns) == list(ncu_advisor.FINDING_COLUMNS)
    assert result.variants["variant"].tolist()[0] == "Model"
    assert len(result.table) == sum(len(v.launches) for v in result.analysis.variants)
    own = result.findings[~result.findings["library"]]
    library = result.findings[result.findings["library"]]
    assert len(own) and len(library)  # the cuDNN kernels of ModelNew_seed000 are library kernels
    assert result.findings["library"].tolist() == sorted(result.findings["library"].tolist())
    savings = own["saving_ms"].tolist()
    assert savings == sorted(savings, reverse=True)
    top = own.iloc[0]
    # NA310 on ModelNew_seed001 (the 26 ms kernel): 50% of its launch time
    assert (top.rule, top.kernel) == ("NA310", "conv2d_scale_min_kernel")
    variant_ms = result.variants.set_index("variant").loc["ModelNew_seed001", "kernel_time_ms"]
    assert top.saving_ms == pytest.approx(top.global_effect * variant_ms)
    assert own["path"].eq("kernels/fused.py").all() and library["path"].isna().all()
    assert isinstance(result.variants, pd.DataFrame) and result.fails("info")
    assert "<table" in result._repr_html_()
    assert result.to_html().startswith("<!DOCTYPE html>") and "| variant" in result.to_markdown()


def test_rules_as_a_list_and_bad_inputs(tmp_path: Path) -> None:
    from ncu_advisor.rules import load_rules

    only = [r for r in load_rules() if r.id == "NA304"]
    result = ncu_advisor.analyze(RUNS / "elementwise", rules=only)
    assert set(result.findings["rule"]) == {"NA304"}
    with pytest.raises(InputError) as missing:
        ncu_advisor.analyze(tmp_path / "nothing-here")
    assert "nothing-here" in str(missing.value.render()) and missing.value.exit_code == 2
    with pytest.raises(InputError, match="stage"):
        ncu_advisor.analyze(RUNS / "elementwise", stage="warp-speed")


def test_docs_api_example_prints_what_the_doc_says(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S)
    shown = re.search(r"```text\n(.*?)```", text, re.S)
    assert code and shown
    monkeypatch.chdir(ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.group(1), "docs/api.md", "exec"), {"__name__": "docs_api"})  # noqa: S102
    assert printed.getvalue() == shown.group(1)


def test_package_is_typed_and_lazy() -> None:
    import subprocess
    import sys

    assert (ROOT / "ncu_advisor" / "py.typed").is_file()
    code = "import sys, ncu_advisor; print('pandas' in sys.modules, ncu_advisor.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", ncu_advisor.__version__]
    with pytest.raises(AttributeError):
        ncu_advisor.no_such_name  # noqa: B018
