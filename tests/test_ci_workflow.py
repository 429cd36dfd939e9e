"""The CI example (examples/ci/ncu-advisor.yml) end to end: its shell steps run as the runner runs them.

Each workflow step calls ``examples/ci/ncu-advisor-ci.sh STEP``; here the same script runs with the
``GITHUB_*`` files a runner provides (GITHUB_ENV carried from step to step as the runner does), on the
recorded H200 runs of ``examples/runs``. ``profile`` needs a GPU, so a stand-in ``ncu-advisor`` copies a
recorded run into the runs folder (as profile writes one) and exits with the code asked for; every other
command is the real CLI. Checked: the job summary, the SARIF (against the OASIS SARIF 2.1.0 schema), the
JUnit XML, and the exit codes of the gate: first pull request, added variant, real regression.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "examples" / "ci"
SCRIPT = CI / "ncu-advisor-ci.sh"
WORKFLOW = CI / "ncu-advisor.yml"
RUNS = ROOT / "examples" / "runs"
SARIF_SCHEMA = ROOT / "tests" / "schemas" / "sarif-schema-2.1.0.json"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the CI steps are bash")

#: Stands in for `ncu-advisor` on a machine without a GPU: `profile` copies a recorded run, as profile
#: writes one, with the kernel file at the checkout's path; every other command is the real CLI.
FAKE_CLI = textwrap.dedent(
    '''
    import json, os, shutil, sys
    from pathlib import Path

    args = sys.argv[1:]
    if args and args[0] == "profile":
        runs = Path(args[args.index("--runs-dir") + 1])
        source = os.environ.get("FAKE_RUN")
        if source:
            kernel = Path(args[1]).resolve()
            run = runs / ("20261130T120000Z-" + kernel.stem)
            shutil.copytree(source, run)
            manifest = json.loads((run / "manifest.json").read_text())
            manifest["kernel_file"]["path"] = str(kernel)
            (run / "manifest.json").write_text(json.dumps(manifest))
            kernel.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(run / "kernel.py", kernel)
        sys.exit(int(os.environ.get("FAKE_PROFILE_EXIT", "0")))
    from ncu_advisor.cli import main
    main(args)
    '''
)


@dataclass
class Job:
    """One job's workspace and the runner's files; ``step`` runs a workflow step's command."""

    workspace: Path
    env: dict[str, str] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        path = self.workspace / "_runner" / "summary.md"
        return path.read_text() if path.exists() else ""

    def step(self, name: str, **extra: str) -> subprocess.CompletedProcess[str]:
        runner = self.workspace / "_runner"
        carried = {}
        github_env = runner / "env"
        if github_env.exists():  # the runner exports GITHUB_ENV lines to every later step
            carried = dict(line.split("=", 1) for line in github_env.read_text().splitlines() if "=" in line)
        (runner / "output").write_text("")  # GITHUB_OUTPUT is per step
        done = subprocess.run(
            ["bash", str(SCRIPT), name],
            cwd=self.workspace,
            env={**self.env, **carried, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.codes[name] = done.returncode
        return done

    def outputs(self) -> dict[str, str]:
        text = (self.workspace / "_runner" / "output").read_text()
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def make_job(tmp_path: Path, run: Path | None, profile_exit: int = 0, **env: str) -> Job:
    workspace = tmp_path / "ws"
    (workspace / "_runner").mkdir(parents=True)
    fake = tmp_path / "fake_ncu_advisor.py"
    fake.write_text(FAKE_CLI)
    workflow_env = {k: str(v) for k, v in yaml.safe_load(WORKFLOW.read_text())["env"].items()}
    job_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PYTHONPATH": str(ROOT),
        **workflow_env,
        "NCU_ADVISOR": f"{sys.executable} {fake}",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ENV": str(workspace / "_runner" / "env"),
        "GITHUB_OUTPUT": str(workspace / "_runner" / "output"),
        "GITHUB_STEP_SUMMARY": str(workspace / "_runner" / "summary.md"),
        "GITHUB_EVENT_NAME": "pull_request",
        "FAKE_PROFILE_EXIT": str(profile_exit),
        "FAKE_RUN": str(run) if run else "",
        **env,
    }
    return Job(workspace, job_env)


def assert_readable_junit(junit: str) -> None:
    """The text of every test case (system-out, failures) has no Python None and no raw float."""
    texts = [
        text
        for element in ET.fromstring(junit).iter()
        for text in (element.text, element.get("message"))
        if text and text.strip()
    ]
    assert texts
    for out in ET.fromstring(junit).iter("system-out"):
        assert re.match(r"(median [\d,.]+ (s|ms|us|ns) over|not timed)", out.text or ""), out.text
    for text in texts:
        assert "None" not in text and "nan" not in text.split(), text
        assert not re.search(r"\d\.\d{5,}", text), text  # e.g. 6.04535984992981 ms


def baseline_from(tmp_path: Path, job: Job, run: Path, drop: str | None = None) -> None:
    """Put ``run`` where the download step puts the base branch's artifact (the run folder's contents)."""
    target = job.workspace / "baseline-run"
    shutil.copytree(run, target)
    if drop is None:
        return
    manifest = json.loads((target / "manifest.json").read_text())
    del manifest["variants"][drop]
    for name in ("metrics.csv", "timings.csv"):
        table = pd.read_csv(target / name)
        table[table["variant"] != drop].to_csv(target / name, index=False)
    kept = pd.read_csv(target / "metrics.csv")  # the tables note load_run checks the table against
    manifest["tables"] = f"{len(kept)} launches of {kept['variant'].nunique()} variants"
    (target / "manifest.json").write_text(json.dumps(manifest))
    (target / "metrics.parquet").unlink()
    shutil.rmtree(target / "variants" / drop)


def test_push_to_main_publishes_every_report(tmp_path: Path) -> None:
    job = make_job(tmp_path, RUNS / "improved", FAIL_ON="never", GITHUB_EVENT_NAME="push")
    done = job.step("profile")
    assert done.returncode == 0, done.stderr
    run_dir = job.outputs()["RUN_DIR"]
    assert run_dir == "runs/20261130T120000Z-fused" and job.outputs()["NCU_PROFILE_STATUS"] == "0"
    done = job.step("report")
    assert done.returncode == 0, done.stderr
    summary = job.summary
    manifest = json.loads((RUNS / "improved" / "manifest.json").read_text())
    assert manifest["gpu"]["name"] in summary
    for variant in manifest["variants"]:
        assert variant in summary
    # SARIF: valid against the OASIS schema, located in the checkout's kernel file, no category of its own
    sarif = json.loads((job.workspace / "ncu-advisor.sarif").read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    run = sarif["runs"][0]
    assert "automationDetails" not in run  # its id would override the upload action's `category`
    locations = [loc for result in run["results"] for loc in result.get("locations", [])]
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for loc in locations}
    assert uris == {"kernels/fused.py"} and run["results"]
    # JUnit: one case per variant, the reference included, no Python None and no raw float in the text
    junit = (job.workspace / "ncu-advisor-junit.xml").read_text()
    cases = ET.fromstring(junit).findall(".//testcase")
    assert {c.get("name") for c in cases} == {manifest["reference"]["name"], *manifest["variants"]}
    assert_readable_junit(junit)
    assert (job.workspace / "ncu-advisor.html").read_text().startswith("<!DOCTYPE html>")
    done = job.step("gate")
    assert done.returncode == 0 and "ncu-advisor: passed" in job.summary


def test_failing_variant_still_reports_then_fails_the_job(tmp_path: Path) -> None:
    job = make_job(tmp_path, RUNS / "improved", profile_exit=1, FAIL_ON="never")
    assert job.step("profile").returncode == 0  # recorded, not fatal: RUN_DIR is set
    assert job.outputs()["NCU_PROFILE_STATUS"] == "1" and job.outputs()["RUN_DIR"]
    assert job.step("report").returncode == 0
    assert "profile exited 1" in job.summary and (job.workspace / "ncu-advisor.sarif").is_file()
    assert (job.workspace / "ncu-advisor-junit.xml").is_file()
    assert job.step("compare").returncode == 0
    done = job.step("gate")
    assert done.returncode == 1
    assert "ncu-advisor: failed" in job.summary and "profile exited 1" in done.stdout


def test_no_gpu_stops_at_profile_with_its_exit_code(tmp_path: Path) -> None:
    job = make_job(tmp_path, None, profile_exit=3)
    done = job.step("profile")
    assert done.returncode == 3 and "RUN_DIR" not in job.outputs()
    assert "profile wrote no run directory (exit 3)" in job.summary
    done = job.step("gate")  # `if: always()`: it runs, and keeps the exit code that says why
    assert done.returncode == 3 and "cannot profile" in job.summary
    assert "report step did not run" in job.summary


def test_first_pull_request_without_baseline_passes_with_a_note(tmp_path: Path) -> None:
    job = make_job(tmp_path, RUNS / "improved", FAIL_ON="never")
    for step in ("profile", "report", "compare"):
        assert job.step(step).returncode == 0
    assert "No baseline run of the base branch" in job.summary
    assert job.outputs()["NCU_COMPARE_STATUS"] == "0"
    assert job.step("gate").returncode == 0


def test_real_regression_fails_the_gate(tmp_path: Path) -> None:
    """Base: the improved run (ModelNew 1.47 ms); PR: the baseline run (ModelNew 9.81 ms)."""
    job = make_job(tmp_path, RUNS / "baseline", FAIL_ON="never")
    baseline_from(tmp_path, job, RUNS / "improved")
    for step in ("profile", "report", "compare"):
        assert job.step(step).returncode == 0, job.codes
    assert job.outputs()["NCU_COMPARE_STATUS"] == "1"
    assert "slower" in job.summary and "ModelNew" in job.summary
    done = job.step("gate")
    assert done.returncode == 1 and "regression against the base branch" in job.summary


def test_no_change_passes_the_gate(tmp_path: Path) -> None:
    job = make_job(tmp_path, RUNS / "improved", FAIL_ON="never")
    baseline_from(tmp_path, job, RUNS / "improved")
    for step in ("profile", "report", "compare", "gate"):
        assert job.step(step).returncode == 0, (step, job.summary)
    assert job.outputs() == {}  # the gate exports nothing
    assert job.codes == {"profile": 0, "report": 0, "compare": 0, "gate": 0}


def test_added_variant_does_not_fail_the_comparison(tmp_path: Path) -> None:
    """The PR adds ModelNew_seed001: compare judges the common variants and lists the added one."""
    job = make_job(tmp_path, RUNS / "improved", FAIL_ON="never")
    baseline_from(tmp_path, job, RUNS / "improved", drop="ModelNew_seed001")
    for step in ("profile", "report"):
        assert job.step(step).returncode == 0
    done = job.step("compare")
    assert done.returncode == 0
    status = job.outputs()["NCU_COMPARE_STATUS"]
    assert status == "0", job.summary
    assert "ModelNew_seed001" in job.summary
    assert job.step("gate").returncode == 0


def test_findings_at_fail_on_fail_the_gate(tmp_path: Path) -> None:
    """FAIL_ON=warning: the improved run has warning-level findings; JUnit cases fail, so does the job."""
    job = make_job(tmp_path, RUNS / "improved", FAIL_ON="warning")
    job.step("profile")
    assert job.step("report").returncode == 0
    assert job.outputs()["NCU_REPORT_STATUS"] == "1"
    root = ET.parse(job.workspace / "ncu-advisor-junit.xml").getroot()
    assert int(root.get("failures", "0")) >= 1
    assert_readable_junit((job.workspace / "ncu-advisor-junit.xml").read_text())
    assert job.step("gate").returncode == 1 and "report exited 1 (--fail-on warning)" in job.summary


def test_workflow_wires_the_script_and_current_actions() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["profile"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    uses = {s["uses"].split("@")[0]: s["uses"].split("@")[1] for s in steps if "uses" in s}
    assert any('pip install "${NCU_ADVISOR_SRC}[gpu]"' in r for r in runs)  # the checkout, not the index
    script_steps = [r.split()[-1] for r in runs if "ncu-advisor-ci.sh" in r]
    assert script_steps == ["profile", "report", "compare", "gate"]
    assert uses["github/codeql-action/upload-sarif"] == "v4"
    download = next(s for s in steps if s.get("uses", "").startswith("dawidd6/action-download-artifact"))
    assert download["with"]["workflow"] == WORKFLOW.name  # the workflow FILE, not ${{ github.workflow }}
    assert download["with"]["if_no_artifact_found"] == "warn" and download["continue-on-error"] is True
    sarif = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert sarif["with"]["category"] == "ncu-advisor"
    gate = next(s for s in steps if s.get("run", "").endswith(" gate"))
    assert gate["if"] == "always()" and steps[-1] is gate
