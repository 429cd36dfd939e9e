"""Several files' tune sweeps in one queue (collect.sweep.measure_files_across_gpus) on two stand-in GPUs,
with the stand-in measurement worker of tests/fake_worker: no GPU waits at a file's end for the other GPU's
last batch of that file; one worker per GPU at a time; a crash costs only its candidate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ncu_advisor.collect.executor import GpuSlot, LocalExecutor
from ncu_advisor.collect.sweep import measure_files_across_gpus
from ncu_advisor.collect.tune.worker import WorkerOptions

ROOT = Path(__file__).resolve().parents[1]
FAKE = [sys.executable, str(ROOT / "tests" / "fake_worker" / "worker.py")]
SLOTS = [GpuSlot("h", i, f"GPU-{i}", "NVIDIA H200", str(i)) for i in range(2)]


def _candidates(prefix: str, blocks: list[int]) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [(f"{prefix}{b}", {"params": {"BLOCK": b}, "num_warps": 4, "num_stages": 2}) for b in blocks]


def test_two_gpus_drain_one_queue_across_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WORKER_COUNT", str(tmp_path / "starts.txt"))
    # file a's first batch is slow (2 s); 999 crashes its worker (file b)
    monkeypatch.setenv("FAKE_WORKER_PLAN", json.dumps({"1": "slow", "999": "crash"}))
    monkeypatch.setenv("FAKE_WORKER_SLOW_S", "2")
    files = [
        ([*FAKE, "a"], _candidates("a", [1, 2, 3, 4, 5, 6])),
        ([*FAKE, "b"], _candidates("b", [7, 8, 999, 10, 11, 12])),
    ]
    with LocalExecutor(slots=SLOTS) as executor:
        measured = list(
            measure_files_across_gpus(
                executor, files, options=WorkerOptions(timeout_s=10), batch_size=2, log_dir=tmp_path
            )
        )
        held = [[k for k in state if k.startswith("tune-worker:")] for state in executor._states.values()]
        assert all(len(keys) <= 1 for keys in held), held  # a GPU holds the worker of one file at a time
    order = [m.result["id"] for m in measured]
    assert sorted(order) == sorted([c for _, cs in files for c, _ in cs])
    assert {m.result["id"]: m.file for m in measured} == {
        c: k for k, (_, cs) in enumerate(files) for c, _ in cs
    }
    statuses = {m.result["id"]: m.result["status"] for m in measured}
    assert statuses.pop("b999") == "crashed" and set(statuses.values()) == {"ok"}
    slow_gpu = next(m.slot.index for m in measured if m.result["id"] == "a1" and m.slot)
    # while one GPU sat in file a's slow first batch, the other went on into file b: the slow batch is last
    assert order[-2:] in (["a1", "a2"], ["a2", "a1"]), order
    other = {m.slot.index for m in measured if m.file == 1 and m.slot}
    assert other - {slow_gpu}, "file b ran on the other GPU while file a's slow batch ran"
    starts = (tmp_path / "starts.txt").read_text().splitlines()
    assert len(starts) <= 5  # a worker per GPU per file it served, plus the restart after b999's crash
    logs = sorted(p.name for p in tmp_path.glob("worker-gpu*.log"))
    assert set(logs) <= {f"worker-gpu{g}-file{k}.log" for g in (0, 1) for k in (0, 1)} and logs
