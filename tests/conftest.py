"""Shared fixtures: paths to the recorded reports, and the gate for GPU tests."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = ROOT / "tests" / "fixtures"
PUBLIC_REPORTS = ROOT.parent / "shared" / "reports-public"


def _gpu_available() -> bool:
    if shutil.which("ncu") is None and not Path("/usr/local/cuda/bin/ncu").exists():
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with ncu (run on the GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def public_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The public reports in ../shared/reports-public, un-gzipped into a temp dir (skip when absent)."""
    if not PUBLIC_REPORTS.is_dir():
        pytest.skip("../shared/reports-public is absent")
    out = tmp_path_factory.mktemp("public")
    reports: dict[str, Path] = {}
    for gz in sorted(PUBLIC_REPORTS.glob("*.gz")):
        target = out / gz.name[: -len(".gz")]
        with gzip.open(gz, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        reports[target.name] = target
    return reports
