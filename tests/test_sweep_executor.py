"""Tune's measurement worker (collect.tune.worker) on the executor (collect.sweep): one long-lived worker per
GPU measures batches of candidates; stand-in worker from tests/fake_worker, two stand-in GPUs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ncu_advisor.collect.executor import GpuSlot, LocalExecutor
from ncu_advisor.collect.sweep import measure_across_gpus
from ncu_advisor.collect.tune.worker import WorkerOptions
from ncu_advisor.errors import EnvironmentNotReady

ROOT = Path(__file__).resolve().parents[1]
FAKE = [sys.executable, str(ROOT / "tests" / "fake_worker" / "worker.py")]
SLOTS = [GpuSlot("h", i, f"GPU-{i}", "NVIDIA H200", str(i)) for i in range(2)]


def _candidates(n: int) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [(f"c{i}", {"params": {"BLOCK": 16 * (i + 1)}, "num_warps": 4, "num_stages": 2}) for i in range(n)]


def test_batches_spread_over_gpus_one_worker_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WORKER_COUNT", str(tmp_path / "starts.txt"))
    monkeypatch.setenv("FAKE_WORKER_PLAN", json.dumps({"48": "crash"}))  # candidate c2 kills its process
    with LocalExecutor(slots=SLOTS) as executor:
        measured = list(
            measure_across_gpus(
                executor,
                FAKE,
                _candidates(12),
                options=WorkerOptions(timeout_s=10),
                batch_size=3,
                log_dir=tmp_path,
            )
        )
    by_id = {m.result["id"]: m for m in measured}
    assert sorted(by_id) == sorted(f"c{i}" for i in range(12))
    assert by_id["c2"].result["status"] == "crashed"  # costs only itself
    assert all(m.result["status"] == "ok" for k, m in by_id.items() if k != "c2")
    assert {m.slot.index for m in measured if m.slot} == {0, 1}
    starts = (tmp_path / "starts.txt").read_text().splitlines()
    assert len(starts) == 3  # one worker per GPU, plus the restart after c2's crash; not one per batch
    assert sorted(p.name for p in tmp_path.glob("worker-gpu*.log")) == ["worker-gpu0.log", "worker-gpu1.log"]


def test_no_gpu_can_start_the_worker_is_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WORKER_START", "nogpu")
    with LocalExecutor(slots=SLOTS) as executor, pytest.raises(EnvironmentNotReady) as err:
        list(measure_across_gpus(executor, FAKE, _candidates(4), batch_size=2))
    assert err.value.exit_code == 3
