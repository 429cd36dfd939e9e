"""The kernel corpus under Triton's interpreter on the CPU, and the sweep pipeline end to end.

Each corpus file runs through ``bench/sweep_corpus.py --check`` in a subprocess with ``TRITON_INTERPRET=1``
(the variable must be set before triton is imported): its size constants are shrunk to
``INTERPRET_SHAPES``, every ``ModelNew*`` variant and the extremes of ``SWEEP_SPACE`` (all smallest, all
largest, alternating) run with poisoned output buffers and are compared with ``Model`` evaluated in float64
on the same inputs (relative L2 error within the file's ``RTOL``). The start's executed launch keywords
(recorded from Triton's ``run``) must lie in the space, so the sweep measures the start's config too, and
``ModelNew_best`` must launch with exactly its ``config``.

The pipeline test runs ``--interpret-smoke`` (the worker process, its restart after a worker that dies at a
config, the JSONL, the summary) on two files, then ``--fill --force`` on a copy of the corpus.

Like tests/test_kernels_interpret.py these need a Python with torch and triton: this interpreter when both
import, or the one named by ``NCU_ADVISOR_TORCH_PYTHON`` (``python3 -m venv /tmp/zoo-venv &&
/tmp/zoo-venv/bin/pip install torch==2.13.0 triton==3.6.0 "numpy<2.4"``); otherwise they skip.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS_FILES = sorted((ROOT / "kernels" / "corpus").glob("*.py"))
SWEEP = ROOT / "bench" / "sweep_corpus.py"


def _torch_python() -> str | None:
    named = os.environ.get("NCU_ADVISOR_TORCH_PYTHON")
    if named:
        return named
    if importlib.util.find_spec("torch") and importlib.util.find_spec("triton"):
        return sys.executable
    return None


@pytest.fixture(scope="module")
def python() -> str:
    found = _torch_python()
    if found is None:
        pytest.skip("needs torch and triton (or NCU_ADVISOR_TORCH_PYTHON naming a Python that has them)")
    return found


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="", **extra)


def _autotuned_start(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        "autotune" in ast.unparse(d)
        for n in tree.body
        if isinstance(n, ast.FunctionDef)
        for d in n.decorator_list
    )


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_variants_and_space_extremes_match_float64(python: str, path: Path) -> None:
    proc = subprocess.run(
        [python, str(SWEEP), "--check", str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(),
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"{path.name}: --check failed:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    rtol, space = result["rtol"], result["space"]
    variants = {v["variant"]: v for v in result["variants"]}
    assert {"ModelNew", "ModelNew_best"} <= set(variants), sorted(variants)
    for record in result["variants"] + result["configs"]:
        what = f"{path.name}::{record.get('variant') or record.get('config')}"
        assert "error" not in record, f"{what}: {record['error']}"
        assert record["ok"] and record["rel_err"] <= rtol, f"{what}: {record}"
    assert len(result["configs"]) >= 2
    # The start's executed config is a point of the space (so the sweep measures it too) ...
    (start_launch,) = variants["ModelNew"]["launch"].values()
    if not _autotuned_start(path):
        for key, values in space.items():
            assert start_launch.get(key) in values, (
                f"{path.name}: start {key}={start_launch.get(key)} not in {values}"
            )
    # ... and ModelNew_best launches with exactly its config.
    best_cls_config = _best_config(path)
    (best_launch,) = variants["ModelNew_best"]["launch"].values()
    for key, value in best_cls_config.items():
        assert best_launch.get(key) == value, (
            f"{path.name}: ModelNew_best launched {key}={best_launch.get(key)}"
        )


def _best_config(path: Path) -> dict[str, Any]:
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ModelNew_best")
    stmt = next(n for n in cls.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "config")
    return {k.arg: ast.literal_eval(k.value) for k in stmt.value.keywords}  # type: ignore[attr-defined]


def test_sweep_pipeline_survives_a_dying_worker_and_fills(python: str, tmp_path: Path) -> None:
    files = [ROOT / "kernels" / "corpus" / "colsum.py", ROOT / "kernels" / "corpus" / "rotary_embedding.py"]
    out = tmp_path / "smoke.jsonl"
    proc = subprocess.run(
        [python, str(SWEEP), "--interpret-smoke", "--out", str(out), "--files", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(SWEEP_CORPUS_CRASH_AT="colsum:0"),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    restarts = [r for r in records if r["type"] == "restart"]
    assert len(restarts) == 1 and restarts[0]["resume"] == {
        "file": "kernels/corpus/colsum.py",
        "index": 1,
        "skip_start": True,
    }
    colsum = [r for r in records if r["type"] == "config" and r["file"] == "kernels/corpus/colsum.py"]
    assert [(r["index"], r["ok"]) for r in colsum] == [(0, False), (1, True)], colsum
    assert "worker died" in colsum[0]["error"]
    summaries = {r["file"]: r for r in records if r["type"] == "summary"}
    assert set(summaries) == {"kernels/corpus/colsum.py", "kernels/corpus/rotary_embedding.py"}
    for s in summaries.values():
        assert s["best_config"] and s["start_ms"] and s["start_launch"], s
    assert "rotary_embedding.py" in proc.stdout and "worker restarts" in proc.stdout

    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "kernels" / "corpus", tree / "kernels" / "corpus")
    refused = subprocess.run(
        [python, str(SWEEP), "--fill", str(out), "--root", str(tree)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert refused.returncode != 0 and "not measured on a GPU" in refused.stderr
    filled = subprocess.run(
        [python, str(SWEEP), "--fill", str(out), "--root", str(tree), "--force"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert filled.returncode == 0, filled.stderr
    best = summaries["kernels/corpus/rotary_embedding.py"]["best_config"]
    assert _best_config(tree / "kernels" / "corpus" / "rotary_embedding.py") == best
