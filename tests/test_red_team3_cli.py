"""The third red-team pass of issue 11 (a clean clone at e102b8b), outside the input readers: outputs to
stdout, closed pipes, the default input, kernel and rule files that are not regular files, runs that lost
their kernel.py, ``compare``'s arguments and thresholds.

Inputs are the recorded example runs (examples/runs) and damaged copies of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import BROKEN_PIPE_EXIT, app, err_console
from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
RUNS = EXAMPLES / "runs"
IMPROVED = RUNS / "improved"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _loud_again() -> object:
    """``-q`` in one invocation quiets the shared stderr console; the next test starts loud."""
    yield
    err_console.quiet = False


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"traceback: {result.exception!r}"
    )
    return result.exit_code, result.output


def expect_exit_2(*args: str, says: tuple[str, ...]) -> str:
    code, output = invoke(*args)
    assert code == 2, output
    for text in says:
        assert text in output, f"{text!r} not in {output!r}"
    assert "Traceback" not in output
    return output


def cli(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """The real console entry in a child process: stdout and stderr apart, as a shell pipeline sees them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ncu_advisor", *args], cwd=cwd, env=env, capture_output=True, timeout=timeout
    )


def copy_run(tmp_path: Path, source: Path = IMPROVED, name: str = "run") -> Path:
    run = tmp_path / name
    shutil.copytree(source, run)
    return run


# ---------------------------------------------------------------------------------------------------
# 4. `-o -`: nothing but the document on stdout
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "csv", "html"])
def test_report_to_stdout_is_only_the_document(fmt: str) -> None:
    done = cli("report", str(IMPROVED), "-f", fmt, "-o", "-")
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert "wrote" not in text
    if fmt in ("json", "sarif"):
        json.loads(text)  # "Extra data" before: the status line followed the JSON
    elif fmt == "junit":
        ET.fromstring(text.split("\n", 1)[1])
    elif fmt == "csv":
        assert text.splitlines()[-1].count(",") == text.splitlines()[0].count(",")
    else:
        assert text.rstrip().endswith("</html>")
    assert b"wrote - (" in done.stderr


def test_status_line_goes_to_stderr_and_q_silences_it(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = cli("-q", "report", str(IMPROVED), "-f", "json", "-o", str(out))
    assert done.returncode == 0 and done.stdout == b"" and b"wrote" not in done.stderr
    json.loads(out.read_text())


def test_compare_json_to_stdout_parses() -> None:
    done = cli("compare", str(RUNS / "baseline"), str(IMPROVED), "-f", "json", "-o", "-")
    data = json.loads(done.stdout)
    assert data["exit_code"] == done.returncode


# ---------------------------------------------------------------------------------------------------
# 27. A reader that closes stdout early (`| head -1`)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["report", str(IMPROVED), "-f", "json", "-o", "-"], ["recommend", str(IMPROVED)]]
)
def test_closed_stdout_pipe_ends_quietly(args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ncu_advisor", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader went away before a byte was written: every write is EPIPE
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert code == BROKEN_PIPE_EXIT == 141  # 128 + SIGPIPE: not 1 ("findings"), not 0 ("clean")
    assert "Traceback" not in err and "Broken pipe" not in err and "error" not in err


# ---------------------------------------------------------------------------------------------------
# 5. The default input: a ./runs that holds nothing readable is exit 2, never the shipped example
# ---------------------------------------------------------------------------------------------------


def _make_runs(kind: str, where: Path) -> None:
    runs = where / "runs"
    if kind == "dangling link":
        runs.symlink_to(where / "nonexistent")
    elif kind == "empty folder":
        runs.mkdir()
    elif kind == "plain file":
        runs.write_text("")
    elif kind == "files only":
        runs.mkdir()
        (runs / "notes.txt").write_text("x")


@pytest.mark.parametrize("kind", ["dangling link", "empty folder", "plain file", "files only"])
def test_runs_that_holds_no_run_is_exit_2(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_runs(kind, tmp_path)
    monkeypatch.chdir(tmp_path)
    for args in (["-q", "report", "-f", "junit", "-o", "out.xml"], ["recommend"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (kind, args, result.output)
        assert "runs: " in result.stderr and ("holds no run" in result.stderr or "empty" in result.stderr)
        assert "shipped example" not in result.stderr
        assert not (tmp_path / "out.xml").exists()


def test_no_command_with_an_empty_runs_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    done = cli(cwd=tmp_path)
    assert done.returncode == 2 and b"runs: is empty" in done.stderr


def test_shipped_example_note_survives_quiet(tmp_path: Path) -> None:
    done = cli("-q", "report", "-f", "junit", "-o", "out.xml", cwd=tmp_path)  # no ./runs at all
    assert done.returncode == 0, done.stderr
    assert b"analysing the shipped example examples/runs/improved" in done.stderr
    assert (tmp_path / "out.xml").is_file()


def test_newest_run_under_runs_is_used(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    copy_run(tmp_path / "runs", RUNS / "elementwise", "20261121T000000Z-elementwise")
    done = cli("-q", "report", "-f", "json", cwd=tmp_path)
    assert b"shipped example" not in done.stderr
    assert json.loads(done.stdout)["run"]["path"] == "runs/20261121T000000Z-elementwise"


# ---------------------------------------------------------------------------------------------------
# 16/17/23. Kernel files and rule files that are not regular files
# ---------------------------------------------------------------------------------------------------


def test_kernel_file_device_and_fifo_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "k.py"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        expect_exit_2("recommend", str(IMPROVED), "--kernel-file", path, says=(path, "not a regular file"))
    out = expect_exit_2("profile", str(fifo), "--list", says=(str(fifo), "not a regular file"))
    assert "no such kernel file" not in out


def test_rule_file_fifo_and_device_link_are_refused(tmp_path: Path) -> None:
    fifo_dir, zero_dir = tmp_path / "fifo", tmp_path / "zero"
    fifo_dir.mkdir()
    zero_dir.mkdir()
    os.mkfifo(fifo_dir / "f.yaml")
    (zero_dir / "z.yaml").symlink_to("/dev/zero")
    expect_exit_2("recommend", str(IMPROVED), "--rules", str(fifo_dir), says=("f.yaml", "not a regular file"))
    expect_exit_2("recommend", str(IMPROVED), "--rules", str(zero_dir), says=("z.yaml", "not a regular file"))


def test_oversized_rule_file_is_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shipped = sorted((ROOT / "rules").glob("NA1*.yaml"))[0].read_text()
    (rules / "big.yaml").write_text(shipped + "\n#" + "x" * (1 << 20))
    expect_exit_2("recommend", str(IMPROVED), "--rules", str(rules), says=("big.yaml", "limit"))


# ---------------------------------------------------------------------------------------------------
# 11. A run without a readable kernel.py
# ---------------------------------------------------------------------------------------------------


def test_run_without_kernel_copy_says_so_in_every_format(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    (run / "kernel.py").unlink()
    code, text = invoke("recommend", str(run))
    assert code == 0
    assert "kernel.py (the run's copy of its kernel file) is missing" in text
    assert "rules skipped on every launch: NA103" in text  # named, not just counted
    for fmt in ("json", "md", "html", "junit", "sarif"):
        result = runner.invoke(app, ["report", str(run), "-f", fmt])
        assert "kernel.py (the run's copy of its kernel file) is missing" in result.stdout, fmt
    result = runner.invoke(app, ["report", str(run), "-f", "csv"])
    assert "is missing" in result.stderr and "is missing" not in result.stdout  # CSV: notes on stderr


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_run_kernel_copy_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    run = copy_run(tmp_path)
    (run / "kernel.py").unlink()
    if kind == "fifo":
        os.mkfifo(run / "kernel.py")
    else:
        (run / "kernel.py").symlink_to("/dev/zero")
    for command in ("recommend", "report"):
        expect_exit_2(command, str(run), says=(str(run / "kernel.py"), "not a regular file"))


# ---------------------------------------------------------------------------------------------------
# 23/26. compare's arguments
# ---------------------------------------------------------------------------------------------------


def test_compare_new_that_is_a_report_is_named() -> None:
    report = IMPROVED / "variants" / "ModelNew" / "profile.ncu-rep.gz"
    out = expect_exit_2(
        "compare", str(RUNS / "baseline"), str(report), says=(str(report), "NEW: not a run directory")
    )
    assert "clock control" not in out


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_compare_threshold_must_be_finite_and_not_negative(value: str) -> None:
    expect_exit_2(
        "compare", str(RUNS / "baseline"), str(IMPROVED), "--threshold", value, says=("--threshold",)
    )


# ---------------------------------------------------------------------------------------------------
# 10. manifest.json and result.json disagree on a variant's correctness
# ---------------------------------------------------------------------------------------------------


def _edit_manifest(run: Path, edit: object) -> None:
    path = run / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data, indent=2))


def test_manifest_status_conflicting_with_result_json(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    _edit_manifest(run, lambda d: d["variants"]["ModelNew"].update(status="incorrect"))
    says = (str(run / "manifest.json"), "variants/ModelNew/result.json", "'incorrect'", "'ok'")
    expect_exit_2("compare", str(IMPROVED), str(run), says=says)
    expect_exit_2("report", str(run), "-f", "junit", says=says)


def test_result_json_failing_correctness_under_an_ok_manifest(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    result = run / "variants" / "ModelNew" / "result.json"
    data = json.loads(result.read_text())
    data["correctness"]["passed"] = False
    result.write_text(json.dumps(data))
    expect_exit_2("compare", str(IMPROVED), str(run), says=("variants/ModelNew/result.json", "'incorrect'"))


# ---------------------------------------------------------------------------------------------------
# 9. compare with missing, renamed, unknown or unmeasurable timings
# ---------------------------------------------------------------------------------------------------


def _timings(run: Path) -> list[str]:
    return (run / "timings.csv").read_text().splitlines()


def test_compare_without_timings_csv_says_so_and_widens_the_bar(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    (run / "timings.csv").unlink()
    code, out = invoke("compare", str(IMPROVED), str(run), "-f", "json")
    assert code == 0, out
    data = json.loads(out[out.index("{") :])
    assert any("NEW has one time and no per-repetition spread" in w for w in data["warnings"])
    bars = {v["name"]: v["bar"] for v in data["variants"]}
    # the assumed 2% spread on NEW's side: 3 x hypot(s_base, 0.02 m) / m > 6%, never the bare 2% threshold
    assert all(bar > 0.06 for bar in bars.values()), bars
    code, text = invoke("recommend", str(run))
    assert "timings.csv is missing for Model, ModelNew_seed000" in text


def test_compare_with_a_variant_renamed_in_timings(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    lines = [line for line in _timings(run) if not line.startswith("ModelNew_seed001,")]
    (run / "timings.csv").write_text("\n".join(lines) + "\n")
    code, out = invoke("compare", str(IMPROVED), str(run))
    assert code == 0
    assert "NEW has one time and no per-repetition spread for ModelNew_seed001 " in out


def test_timings_row_of_an_unknown_variant_is_exit_2(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    with open(run / "timings.csv", "a") as handle:
        handle.write("Ghost,0,0.001\n")
    says = (str(run / "timings.csv"), "Ghost", "manifest.json does not list")
    expect_exit_2("compare", str(IMPROVED), str(run), says=says)
    expect_exit_2("report", str(run), says=says)


def test_timing_below_the_cuda_event_resolution_is_exit_2(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    lines = _timings(run)
    first = next(i for i, line in enumerate(lines) if line.startswith("ModelNew,"))
    lines[first] = "ModelNew,0,1e-300"
    (run / "timings.csv").write_text("\n".join(lines) + "\n")
    says = ("timings.csv", f"line {first + 1}", "0.0005")
    out = expect_exit_2("compare", str(IMPROVED), str(run), says=says)
    assert "faster" not in out


# ---------------------------------------------------------------------------------------------------
# 13. The reference slower: not gated, never silent
# ---------------------------------------------------------------------------------------------------


def test_reference_slower_is_said_but_not_gated(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    lines = _timings(run)
    for i, line in enumerate(lines):
        if line.startswith("Model,"):
            name, rep, ms = line.split(",")
            lines[i] = f"{name},{rep},{float(ms) * 3}"
    (run / "timings.csv").write_text("\n".join(lines) + "\n")
    code, out = invoke("compare", str(IMPROVED), str(run))
    assert code == 0, out  # docs/report.md: the reference is never gated
    assert "warning: the reference Model is +200.0% slower (not counted as a regression" in out
    assert "(the reference: not gated, see the warning)" in out
    assert "0 regression(s)" in out
    code, md = invoke("compare", str(IMPROVED), str(run), "-f", "md")
    assert "(reference: not gated)" in md
    docs = (ROOT / "docs" / "report.md").read_text()
    assert "The reference (`Model`,\nplain PyTorch) is never gated" in docs


# ---------------------------------------------------------------------------------------------------
# 25. Rule message format specs: an optional width of at most 2 digits, a precision, f or %
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["%", "f", ",.1f", ".3e", "d", ">100.1f", ".123f"])
def test_rule_message_format_spec_is_refused(tmp_path: Path, spec: str) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shipped = (ROOT / "rules").glob("NA203*.yaml").__next__().read_text()
    assert "{registers:.0f}" in shipped
    (rules / "x.yaml").write_text(shipped.replace("{registers:.0f}", "{registers:" + spec + "}", 1))
    expect_exit_2("recommend", str(IMPROVED), "--rules", str(rules), says=("x.yaml", repr(spec)))


@pytest.mark.parametrize("spec", [".1%", ">8.2f", "5.0f"])
def test_rule_message_format_spec_allowed(tmp_path: Path, spec: str) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shipped = (ROOT / "rules").glob("NA203*.yaml").__next__().read_text()
    (rules / "x.yaml").write_text(shipped.replace("{registers:.0f}", "{registers:" + spec + "}", 1))
    code, out = invoke("recommend", str(IMPROVED), "--rules", str(rules))
    assert code == 0, out


# ---------------------------------------------------------------------------------------------------
# 15. File names that are not UTF-8
# ---------------------------------------------------------------------------------------------------


def test_report_name_not_utf8_is_exit_2_naming_it(tmp_path: Path) -> None:
    report = Path(os.fsdecode(bytes(tmp_path) + b"/bad\xff\xfename.ncu-rep.gz"))
    shutil.copyfile(IMPROVED / "variants" / "ModelNew" / "profile.ncu-rep.gz", report)
    done = subprocess.run(
        [sys.executable, "-m", "ncu_advisor", "recommend", os.fsencode(report)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert b"bad\\xff\\xfename.ncu-rep.gz: the name is not valid UTF-8" in done.stderr
    assert b"Traceback" not in done.stderr and b"damaged" not in done.stderr


def test_run_dir_name_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Path(os.fsdecode(bytes(tmp_path) + b"/run\xffdir"))
    shutil.copytree(RUNS / "elementwise", run)
    out = expect_exit_2("recommend", str(run), says=("run\\xffdir: the name is not valid UTF-8", "rename"))
    assert "damaged" not in out
    # inside it, under a relative name, it reads (the folder above is not written into the table)
    monkeypatch.chdir(run)
    code, text = invoke("report", ".", "-f", "json")
    assert code == 0, text
    out_file = Path(os.fsdecode(bytes(tmp_path) + b"/out\xfe.json"))
    code, text = invoke("report", ".", "-f", "json", "-o", str(out_file))
    assert code == 0 and out_file.is_file() and "out\\xfe.json" in text


def test_no_command_with_quiet_or_verbose_runs_recommend(tmp_path: Path) -> None:
    for flag in ("-q", "-v"):
        done = cli(flag, cwd=tmp_path)  # "No such option: -q" before: the default command re-read sys.argv
        assert done.returncode == 0, done.stderr
        assert b"No such option" not in done.stderr
        assert b"analysing the shipped example" in done.stderr
        assert b"conv2d_scale_min_kernel" in done.stdout or b"launches" in done.stdout
