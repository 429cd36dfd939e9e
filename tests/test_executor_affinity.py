"""The local executor's scheduling, on CPU with stand-in GPUs: group affinity (a worker stays on one kernel
file while it has jobs, idle workers start on the file with most jobs left, a worker whose files are done
takes the last jobs of the busiest one), the compiles it saves when several variants of a file share a
kernel (a stand-in on-disk cache), queue order with ``fifo`` and for jobs without a group, and
``Executor.prepare`` (each GPU's timing worker starts while ``profile`` checks the environment)."""

from __future__ import annotations

import os
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from ncu_advisor.collect.executor import GpuSlot, Job, JobContext, LocalExecutor
from ncu_advisor.collect.profile.runner import ProfileOptions, ProfileTarget, profile_files
from ncu_advisor.collect.profile.variants import list_variants
from ncu_advisor.collect.profile.worker import TimingWorker
from ncu_advisor.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fake_ncu"
FAULTS = ROOT / "tests" / "fixtures" / "kernels" / "faults.py"
REPORT = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"
SLOTS = [GpuSlot("h", i, f"GPU-{i}", "NVIDIA H200", str(i)) for i in range(2)]
COMPILE_S = 0.4  # a stand-in compile: long beside the threads' start, so two GPUs starting together both miss


class _Cache:
    """A stand-in Triton on-disk cache shared by the GPUs: the first job needing a kernel compiles it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done: set[str] = set()
        self.compiles: list[str] = []
        self.log: list[tuple[str, str, str, float, float]] = []  # worker, key, group, start, end


def _job(cache: _Cache, key: str, group: str, kernel: str, ctx: JobContext) -> str:
    start = time.monotonic()
    with cache.lock:
        hit = kernel in cache.done
    if not hit:
        time.sleep(COMPILE_S)
        with cache.lock:
            cache.compiles.append(kernel)
            cache.done.add(kernel)
    time.sleep(0.05)
    cache.log.append((ctx.slot.worker, key, group, start, time.monotonic()))
    return key


def _file_jobs(cache: _Cache, files: dict[str, list[str]], grouped: bool = True) -> list[Job]:
    """One job per (file, kernel); the kernels named alike within a file are the same kernel."""
    jobs = []
    for name, kernels in files.items():
        for i, kernel in enumerate(kernels):
            key = f"{name}/{i}"
            fn = partial(_job, cache, key, name, f"{name}:{kernel}")
            jobs.append(Job(key, fn, group=name if grouped else None))
    return jobs


def _run(jobs: list[Job], schedule: str) -> list[str]:
    with LocalExecutor(slots=SLOTS, schedule=schedule) as executor:
        return [r.value for r in executor.run(jobs)]


def test_affinity_keeps_each_gpu_on_a_file_and_leaves_no_gpu_idle() -> None:
    cache = _Cache()
    files = {"a": ["k0", "k1", "k2", "k3", "k4", "k5"], "b": ["k0", "k1", "k2"], "c": ["k0"]}
    done = _run(_file_jobs(cache, files), "affinity")
    assert sorted(done) == sorted(f"{f}/{i}" for f, ks in files.items() for i in range(len(ks)))
    by_worker: dict[str, list[tuple[str, str, str, float, float]]] = {}
    for entry in sorted(cache.log, key=lambda e: e[3]):
        by_worker.setdefault(entry[0], []).append(entry)
    first = {w: entries[0][2] for w, entries in by_worker.items()}
    assert sorted(first.values()) == ["a", "b"]  # the two files with most jobs, one per GPU
    a_worker = next(w for w, g in first.items() if g == "a")
    a_jobs = [e[1] for e in by_worker[a_worker] if e[2] == "a"]
    assert a_jobs == sorted(a_jobs) and a_jobs[0] == "a/0"  # its owner runs the file from its head
    other = next(w for w in by_worker if w != a_worker)
    sequence = [e[2] for e in by_worker[other]]
    assert sequence[:4] == ["b", "b", "b", "c"]  # its file, then the file nobody was on
    assert "a" in sequence[4:]  # then the end of the busiest file: no GPU idles while jobs are left
    stolen = [e[1] for e in by_worker[other] if e[2] == "a"]
    assert stolen[0] == "a/5"  # from the end, so the owner keeps the head
    ends = [entries[-1][4] for entries in by_worker.values()]
    assert abs(ends[0] - ends[1]) < COMPILE_S + 0.4  # balanced to about one job (COMPILE_S + 0.05 s)


def test_affinity_compiles_a_shared_kernel_once_where_fifo_compiles_it_on_both_gpus() -> None:
    # two files whose variants all launch one kernel (an undecorated kernel called by several classes)
    files = {"a": ["k"] * 4, "b": ["k"] * 4}
    fifo, affinity = _Cache(), _Cache()
    _run(_file_jobs(fifo, files), "fifo")
    _run(_file_jobs(affinity, files), "affinity")
    assert sorted(affinity.compiles) == ["a:k", "b:k"]  # one compile per distinct kernel
    assert fifo.compiles.count("a:k") == 2  # both GPUs took a's first two jobs at once and both compiled
    assert len(fifo.compiles) > len(affinity.compiles)


def test_fifo_and_jobs_without_a_group_keep_queue_order() -> None:
    for schedule, grouped in (("fifo", True), ("affinity", False)):
        cache = _Cache()
        files = {"a": ["k0", "k1", "k2"], "b": ["k0", "k1", "k2", "k3"]}
        _run(_file_jobs(cache, files, grouped=grouped), schedule)
        started = [e[1] for e in sorted(cache.log, key=lambda e: e[3])]
        assert started[:2] in (["a/0", "a/1"], ["a/1", "a/0"]), (schedule, started)
        assert started[-1] in ("b/3", "b/2"), (schedule, started)


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(InputError, match="schedule"):
        LocalExecutor(slots=SLOTS, schedule="random")


def _slow_start(log: list[tuple[str, float, float]], ctx: JobContext) -> None:
    start = time.monotonic()
    while time.monotonic() - start < 0.5:
        if ctx.cancel.is_set():
            log.append((ctx.slot.worker + ":cancelled", start, time.monotonic()))
            return
        time.sleep(0.02)
    log.append((ctx.slot.worker, start, time.monotonic()))


def _mark(log: list[tuple[str, float, float]], ctx: JobContext) -> None:
    log.append((ctx.slot.worker + ":job", time.monotonic(), time.monotonic()))


def test_prepare_runs_on_every_gpu_before_its_first_job_and_close_cancels_it() -> None:
    log: list[tuple[str, float, float]] = []
    with LocalExecutor(slots=SLOTS) as executor:
        begun = time.monotonic()
        executor.prepare(partial(_slow_start, log))
        assert time.monotonic() - begun < 0.2  # in the background
        list(executor.run([Job(str(i), partial(_mark, log)) for i in range(4)]))
    prepared = {w: end for w, _, end in log if not w.endswith(":job")}
    assert sorted(prepared) == ["local:0", "local:1"]
    for worker, start, _ in log:
        if worker.endswith(":job"):
            assert start >= prepared[worker.split(":job")[0]]  # a GPU's jobs wait for its preparation
    log.clear()
    executor = LocalExecutor(slots=SLOTS)
    executor.prepare(partial(_slow_start, log))
    begun = time.monotonic()
    executor.close()
    assert time.monotonic() - begun < 0.4
    assert sorted(w for w, _, _ in log) == ["local:0:cancelled", "local:1:cancelled"]


class _SlowChecks(LocalExecutor):
    """The environment checks take 1.5 s (a slow nvidia-smi); records when they ended."""

    checked_at = 0.0

    def call_on_a_worker(self, fn: Any) -> Any:
        time.sleep(1.5)
        value = fn()
        self.checked_at = time.monotonic()
        return value


@pytest.mark.skipif(sys.platform == "win32", reason="stand-in executables are POSIX scripts")
def test_profile_starts_the_timing_workers_while_it_checks_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{FAKE}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_NCU_REPORT", str(REPORT))
    monkeypatch.setenv("FAKE_GPUS", "2")
    for name in ("FAKE_CHILD_MODES", "FAKE_NO_GPU", "FAKE_NOGPU_VISIBLE", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    variants = [v for v in list_variants(FAULTS).variants if v.name in ("ModelNew_good", "ModelNew_tuned")]
    options = ProfileOptions(
        python=str(FAKE / "fake_python"), runs_root=tmp_path, reps=2, timing_only=True, timeout_s=20
    )
    executor = _SlowChecks(slots=SLOTS)
    try:
        (run,) = profile_files([ProfileTarget(FAULTS, variants)], options, executor=executor)
        workers = [
            value
            for slot in executor.slots()
            for value in executor.context(slot).state.values()
            if isinstance(value, TimingWorker)
        ]
    finally:
        executor.close()
    assert run.manifest["complete"] is True
    assert {e["status"] for e in run.manifest["variants"].values()} == {"ok"}
    assert len(workers) == 2 and all(w.starts == 1 for w in workers)  # one start per GPU, reused
    for worker in workers:
        begun, ready = worker.start_spans[0]
        assert begun < executor.checked_at - 1.0  # it started while the checks ran, not after them
        assert ready <= executor.checked_at + 5


class _Rendezvous:
    """A worker-state value whose ``stop()`` waits for the other GPU's ``stop()`` to have begun: it returns
    True only when both stops run at the same time (one after another, the first waits out its timeout)."""

    def __init__(self, mine: threading.Event, other: threading.Event, met: list[bool]) -> None:
        self.mine, self.other, self.met = mine, other, met

    def stop(self) -> None:
        self.mine.set()
        self.met.append(self.other.wait(timeout=5))


def _hold(value: _Rendezvous, ctx: JobContext) -> None:
    ctx.state["worker"] = value


def test_close_stops_every_gpus_worker_at_once() -> None:
    events = [threading.Event(), threading.Event()]
    met: list[bool] = []
    values = [_Rendezvous(events[0], events[1], met), _Rendezvous(events[1], events[0], met)]
    executor = LocalExecutor(slots=SLOTS, schedule="fifo")
    jobs = [Job(f"j{i}", partial(_hold, values[i])) for i in range(2)]
    started = threading.Barrier(2)
    jobs = [
        Job(job.key, partial(lambda fn, ctx: (started.wait(timeout=5), fn(ctx)), job.fn)) for job in jobs
    ]  # one job per GPU: each waits for the other to have started
    list(executor.run(jobs))
    executor.close()
    assert met == [True, True]
