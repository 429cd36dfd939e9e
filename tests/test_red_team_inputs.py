"""Inputs the red team found accepted silently (2026-11-30): each must be refused (exit 2) or noted.

Real recorded data only: copies of the example runs in examples/runs, the seed reports in examples/, and
../shared/cases (skipped when absent).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app

ROOT = Path(__file__).resolve().parent.parent
ELEMENTWISE = ROOT / "examples" / "runs" / "elementwise"

runner = CliRunner()


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("folder", ["20261130T170000Z-fused", "junk"])
def test_default_input_refuses_a_runs_folder_without_manifest(
    folder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = tmp_path / "runs" / folder
    shutil.copytree(ELEMENTWISE, crashed)
    (crashed / "manifest.json").unlink()  # a profile that crashed before writing its manifest
    monkeypatch.chdir(tmp_path)
    for args in (["report", "-f", "junit", "-o", "r.xml"], ["recommend"]):
        result = _invoke(*args)
        assert result.exit_code == 2, result.output
        assert f"runs/{folder}" in result.output and "no manifest.json" in result.output
        assert "ncu-advisor profile" in result.output
    assert not (tmp_path / "r.xml").exists()


def test_default_input_says_when_it_is_the_shipped_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./runs: the shipped example, said on stderr
    result = _invoke("report", "-f", "md", "-o", "r.md", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    assert "shipped example examples/runs/improved" in result.stderr


def _copy_without(tmp_path: Path, relative: str) -> Path:
    run = tmp_path / "run"
    shutil.copytree(ELEMENTWISE, run)
    target = run / relative
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    return run


@pytest.mark.parametrize(
    "missing",
    [
        "variants/ModelNew",
        "variants/ModelNew/result.json",
        "variants/ModelNew/profile.ncu-rep.gz",
        "variants/Model/result.json",
    ],
)
def test_run_missing_an_ok_variants_files_exits_2(missing: str, tmp_path: Path) -> None:
    run = _copy_without(tmp_path, missing)
    for args in (
        ["recommend", str(run)],
        ["report", str(run), "-f", "md", "-o", str(tmp_path / "r.md")],
        ["compare", str(ELEMENTWISE), str(run)],
    ):
        result = _invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert missing in result.output and "is missing" in result.output


def test_same_input_twice_is_read_once(tmp_path: Path) -> None:
    import json

    import ncu_advisor

    once = _invoke("recommend", str(ELEMENTWISE), "-f", "json", "--fail-on", "never")
    twice = _invoke(
        "recommend", str(ELEMENTWISE), str(ELEMENTWISE) + "/", "-f", "json", "--fail-on", "never"
    )
    assert once.exit_code == twice.exit_code == 0, twice.output
    assert json.loads(twice.stdout)["kernels"] == json.loads(once.stdout)["kernels"]
    assert "given more than once: read once" in twice.stderr
    single = ncu_advisor.analyze(ELEMENTWISE)
    double = ncu_advisor.analyze([ELEMENTWISE, str(ELEMENTWISE)])
    assert len(double.table) == len(single.table) == 2  # the run's two profiled launches
    assert len(double.findings) == len(single.findings)
    assert any("given more than once" in n for n in double.notes)


@pytest.mark.parametrize(
    ("call", "error", "needle"),
    [
        (lambda a: a(str(ELEMENTWISE).encode()), "InputError", "path.decode()"),
        (lambda a: a([ELEMENTWISE, 7]), "InputError", "path_or_run[1] has type int"),
        (lambda a: a([]), "InputError", "nothing to analyse"),
        (lambda a: a(ELEMENTWISE, source=b"k.py"), "InputError", "source has type bytes"),
        (lambda a: a(ELEMENTWISE, rules=["x"]), "RuleError", "rules[0] has type str"),
        (lambda a: a(ELEMENTWISE, rules=3), "RuleError", "load_rules()"),
        (lambda a: a(ELEMENTWISE, kernel=3), "InputError", "kernel has type int"),
        (lambda a: a(ELEMENTWISE, all_kernels="yes"), "InputError", "True or False"),
    ],
)
def test_api_checks_argument_types(call, error: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    import ncu_advisor
    from ncu_advisor import errors

    with pytest.raises(getattr(errors, error)) as caught:
        call(ncu_advisor.analyze)
    assert needle in str(caught.value) and caught.value.exit_code == 2


SEED_PROMPT = ROOT.parent / "shared" / "seeds" / "000_edf35d9da7fdb540.txt"


def _seed_prompt_with(tmp_path: Path, replacement: str) -> Path:
    if not SEED_PROMPT.is_file():
        pytest.skip(f"{SEED_PROMPT} is absent")
    text = SEED_PROMPT.read_text(encoding="utf-8")
    assert '"launch__grid_size": 32258' in text
    path = tmp_path / "prompt.txt"
    path.write_text(text.replace('"launch__grid_size": 32258', replacement), encoding="utf-8")
    return path


def test_seed_json_value_that_is_not_a_number_exits_2(tmp_path: Path) -> None:
    result = _invoke("recommend", str(_seed_prompt_with(tmp_path, '"launch__grid_size": "lots"')))
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "'scale_channel_min_kernel': launch__grid_size is 'lots', not a number" in text
    # a number written as a string is still that number
    from ncu_advisor.ingest.registry import read

    table = read(_seed_prompt_with(tmp_path, '"launch__grid_size": "32258"'))
    assert table["launch__grid_size"].iloc[0] == 32258


def test_seed_json_nested_too_deep_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"k":' * 5000 + "1" + "}" * 5000)
    result = _invoke("recommend", str(path))
    assert result.exit_code == 2, result.output
    assert "nested too deep" in result.output and "Traceback" not in result.output


TEXT_CASE = ROOT.parent / "shared" / "cases" / "text-output-sm75.txt"


@pytest.mark.parametrize(
    ("label", "value", "edited"), [("Duration", "20.85", "abc"), ("Waves Per SM", "6.40", "lots")]
)
def test_text_metric_row_that_is_not_a_number_exits_2(
    label: str, value: str, edited: str, tmp_path: Path
) -> None:
    if not TEXT_CASE.is_file():
        pytest.skip(f"{TEXT_CASE} is absent")
    lines = TEXT_CASE.read_text(encoding="utf-8").splitlines()
    (number,) = [n for n, line in enumerate(lines, 1) if line.split()[:1] and line.strip().startswith(label)]
    assert lines[number - 1].endswith(value)
    lines[number - 1] = lines[number - 1][: -len(value)] + edited
    path = tmp_path / "out.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _invoke("recommend", str(path))
    assert result.exit_code == 2, result.output
    assert f"line {number}:" in result.output and repr(edited) in result.output
    # the unedited output still reads: its word-valued rows (Function Cache Configuration) have no unit
    assert _invoke("recommend", str(TEXT_CASE), "--fail-on", "never").exit_code == 0
