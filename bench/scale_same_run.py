"""Part s of bench/bench_scale.py: every scale-out figure of ``profile`` in one run, with a timeline of each.

Steps, in order (each skipped, and said so, when its estimate does not fit what is left of ``--max-seconds``):

1. ``timing_1gpu``: timing only (check + ``do_bench``, the timing worker per GPU), the 24-variant set, 1 GPU,
   empty Triton cache (``TRITON_CACHE_DIR`` of its own; kept: it is the warm cache of steps 3-6);
2. ``timing_2gpu``: the same on 2 GPUs, another empty cache;
3. ``timing_1gpu_warm`` and 4. ``timing_2gpu_warm``: the same again with the cache step 1 filled (a second
   pass after a warm-up: no Triton compile, the OS file cache warm too);
5. ``profile6_2gpu`` and 6. ``profile6_1gpu``: ``profile`` with ncu (a process per variant, ``--ncu-lock
   none``) of the set's first ``--profile-variants`` variants (default 6: gemm_decode's ModelNew@cfg0-5, plus
   the reference timed), warm cache, so that the ncu figure is a same-run ratio;
7. ``timing_2gpu_fifo``: step 2 with the executor's ``schedule="fifo"`` (queue order, the scheduler before
   group affinity), empty cache: the scheduler's share of the difference, measured.

Every step records a timeline (``timeline``): when each job ran on which GPU (seconds from the step's start),
when each GPU's timing worker started and was ready, the setup before the first job (GPU query,
environment checks, run directories), each GPU's idle tail (from its last job's end to the last job's end on
any GPU) and the closing part (tables, workers stopped). ``--rehearse-s`` (tests): the same with stand-ins.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from ncu_advisor.collect.executor import Job, JobContext, JobResult, LocalExecutor
from ncu_advisor.collect.profile.runner import ProfileOptions, ProfileTarget, profile_files
from ncu_advisor.collect.profile.worker import TimingWorker

Span = tuple[str, str, float, float]  # GPU index, job key, start, end (time.monotonic())


def _timed(log: list[Span], fn: Callable[[JobContext], Any], key: str, ctx: JobContext) -> Any:
    start = time.monotonic()
    try:
        return fn(ctx)
    finally:
        log.append((str(ctx.slot.index), key, start, time.monotonic()))


class TimedExecutor(LocalExecutor):
    """``LocalExecutor`` that records when each job ran and on which GPU (``spans``), and, before it stops
    them, when each GPU's timing worker started (``worker_spans``)."""

    def __init__(self, gpus: int, schedule: str = "affinity") -> None:
        super().__init__(gpus=gpus, schedule=schedule)
        self.spans: list[Span] = []
        self.worker_spans: dict[str, list[tuple[float, float]]] = {}

    def run(self, jobs: list[Job]) -> Iterator[JobResult]:
        wrapped = [Job(j.key, partial(_timed, self.spans, j.fn, j.key), j.group) for j in jobs]
        yield from super().run(wrapped)

    def close(self) -> None:
        for slot in self.slots():
            for value in self.context(slot).state.values():
                if isinstance(value, TimingWorker):
                    self.worker_spans[str(slot.index)] = list(value.start_spans)
        super().close()


@contextlib.contextmanager
def triton_cache_at(path: Path) -> Iterator[None]:
    """``TRITON_CACHE_DIR=path`` while the block runs (the workers and children inherit it)."""
    old = os.environ.get("TRITON_CACHE_DIR")
    os.environ["TRITON_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TRITON_CACHE_DIR", None)
        else:
            os.environ["TRITON_CACHE_DIR"] = old


def timeline(executor: TimedExecutor, t0: float, wall: float, stems: list[str]) -> dict[str, Any]:
    """The step's timeline (see the module docstring); times in seconds from the step's start."""
    spans = sorted(executor.spans, key=lambda s: s[2])
    if not spans:
        return {}
    last_end = max(s[3] for s in spans)
    per_gpu: dict[str, Any] = {}
    for gpu in sorted({s[0] for s in spans}):
        mine = [s for s in spans if s[0] == gpu]
        files: dict[str, int] = {}
        for _, key, _, _ in mine:
            stem = stems[int(key.split("/", 1)[0])]
            files[stem] = files.get(stem, 0) + 1
        per_gpu[gpu] = {
            "jobs": len(mine),
            "busy_s": round(sum(e - s for _, _, s, e in mine), 2),
            "first_job_at_s": round(mine[0][2] - t0, 2),
            "idle_tail_s": round(last_end - max(e for *_, e in mine), 2),
            "files": files,
            "worker_start": [
                {"at_s": round(b - t0, 2), "took_s": round(r - b, 2)}
                for b, r in executor.worker_spans.get(gpu, [])
            ],
        }
    durations = [e - s for *_, s, e in spans]
    return {
        "setup_s": round(spans[0][2] - t0, 2),
        "jobs_s": round(last_end - spans[0][2], 2),
        "closing_s": round(wall - (last_end - t0), 2),
        "job_s_median": round(statistics.median(durations), 3),
        "job_s_max": round(max(durations), 3),
        "per_gpu": per_gpu,
        "jobs": [
            [g, f"{stems[int(k.split('/', 1)[0])]}:{k.split('/', 1)[1]}", round(s - t0, 3), round(e - t0, 3)]
            for g, k, s, e in spans
        ],
    }


def timed_sweep(
    targets: list[ProfileTarget], options: ProfileOptions, gpus: int, cache: Path, schedule: str = "affinity"
) -> dict[str, Any]:
    """``bench_scale.sweep``'s figures for one ``profile_files`` call, with the Triton cache at ``cache`` and
    the step's ``timeline``."""
    from bench_scale import summarize

    with triton_cache_at(cache):
        t0 = time.monotonic()
        executor = TimedExecutor(gpus, schedule)
        try:
            runs = profile_files(targets, options, executor=executor)
        finally:
            executor.close()
        wall = time.monotonic() - t0
    result = summarize(runs, gpus, wall)
    result["schedule"] = schedule
    result["triton_cache_entries_after"] = len(list(cache.iterdir())) if cache.is_dir() else 0
    result["timeline"] = timeline(executor, t0, wall, [t.kernel_file.stem for t in targets])
    return result


def part_s(
    results: dict[str, Any],
    options: ProfileOptions,
    targets: Callable[[int | None], list[ProfileTarget]],
    fits: Callable[[float, str], bool],
    profile_variants: int = 6,
    save: Callable[[], None] = lambda: None,
) -> None:
    """Steps 1-7 of the module docstring into ``results`` (each step's estimate from the walls before it);
    ``save()`` after each step (a run cut short keeps the steps done)."""
    from bench_scale import timing_agreement

    timing = replace(options, timing_only=True)
    every = targets(None)
    warm = Path(tempfile.mkdtemp(prefix="triton-cache-warm-"))
    scratch: list[Path] = [warm]

    def cold() -> Path:
        scratch.append(Path(tempfile.mkdtemp(prefix="triton-cache-cold-")))
        return scratch[-1]

    try:
        one = results["timing_1gpu"] = timed_sweep(every, timing, 1, warm)  # fills the warm cache
        results["timing_1gpu"]["triton_cache"] = "empty (kept as the warm cache)"
        save()
        if fits(one["wall_s"] * 0.6, "timing_2gpu"):
            two = results["timing_2gpu"] = timed_sweep(every, timing, 2, cold())
            two["triton_cache"] = "empty"
            results["timing_speedup"] = round(one["wall_s"] / two["wall_s"], 3)
            results["timing_agreement"] = timing_agreement(one, two)
            save()
        if fits(one["wall_s"] * 1.6, "timing_warm"):
            w1 = results["timing_1gpu_warm"] = timed_sweep(every, timing, 1, warm)
            save()
            w2 = results["timing_2gpu_warm"] = timed_sweep(every, timing, 2, warm)
            w1["triton_cache"] = w2["triton_cache"] = "warm (filled by timing_1gpu)"
            results["timing_warm_speedup"] = round(w1["wall_s"] / w2["wall_s"], 3)
            save()
        per_variant = 18.5  # s per variant with ncu on one H200 (220 s / 12, 2026-11-30-scale-h200x2-s3)
        if fits(per_variant * profile_variants * 1.6, "profile_with_ncu"):
            subset = targets(profile_variants)
            ncu = replace(options, ncu_lock="none")
            p2 = results[f"profile{profile_variants}_2gpu"] = timed_sweep(subset, ncu, 2, warm)
            save()
            if fits(p2["wall_s"] * 2.1, f"profile{profile_variants}_1gpu"):
                p1 = results[f"profile{profile_variants}_1gpu"] = timed_sweep(subset, ncu, 1, warm)
                results["profile_speedup_same_run"] = round(p1["wall_s"] / p2["wall_s"], 3)
                save()
        two = results.get("timing_2gpu")
        if two and fits(two["wall_s"] * 1.2, "timing_2gpu_fifo"):
            fifo = results["timing_2gpu_fifo"] = timed_sweep(every, timing, 2, cold(), schedule="fifo")
            fifo["triton_cache"] = "empty"
            results["timing_speedup_fifo"] = round(one["wall_s"] / fifo["wall_s"], 3)
    finally:
        for path in scratch:
            shutil.rmtree(path, ignore_errors=True)


def timeline_lines(results: dict[str, Any]) -> list[str]:
    """One line per step: setup, jobs and closing seconds, each GPU's jobs, worker start and idle tail."""
    lines = []
    for key, value in results.items():
        t = value.get("timeline") if isinstance(value, dict) else None
        if not t:
            continue
        gpus = "; ".join(
            f"GPU{g}: {p['jobs']} jobs {p['busy_s']} s busy, first job at {p['first_job_at_s']} s"
            + (f", worker ready in {p['worker_start'][0]['took_s']} s" if p["worker_start"] else "")
            + f", idle tail {p['idle_tail_s']} s"
            for g, p in t["per_gpu"].items()
        )
        lines.append(
            f"{key}: setup {t['setup_s']} s, jobs {t['jobs_s']} s, closing {t['closing_s']} s, "
            f"job median {t['job_s_median']} s max {t['job_s_max']} s | {gpus}"
        )
    return lines


#: (2-GPU step, its 1-GPU step) pairs of ``part_s``
PAIRS = (
    ("timing_2gpu", "timing_1gpu"),
    ("timing_2gpu_warm", "timing_1gpu_warm"),
    ("timing_2gpu_fifo", "timing_1gpu"),
)


def jobs_throughput_lines(results: dict[str, Any]) -> list[str]:
    """Per 2-GPU step: the jobs phase's speed-up over its 1-GPU step (``jobs_s`` ratio) beside the wall's, and
    the fixed part (setup + closing) of both walls."""
    lines = []
    found = [k for k in results if re.fullmatch(r"profile\d+_2gpu", k)]
    pairs = list(PAIRS) + [(k, k.replace("_2gpu", "_1gpu")) for k in found]
    for two_key, one_key in pairs:
        two, one = results.get(two_key), results.get(one_key)
        t2, t1 = (two or {}).get("timeline"), (one or {}).get("timeline")
        if not (t2 and t1 and t2.get("jobs_s") and t1.get("jobs_s")):
            continue
        fixed1 = round(t1["setup_s"] + t1["closing_s"], 2)
        fixed2 = round(t2["setup_s"] + t2["closing_s"], 2)
        lines.append(
            f"{two_key} vs {one_key}: jobs {t1['jobs_s']} s -> {t2['jobs_s']} s = "
            f"**{t1['jobs_s'] / t2['jobs_s']:.3f}x**; wall {one['wall_s']} s -> {two['wall_s']} s = "
            f"{one['wall_s'] / two['wall_s']:.3f}x; fixed (setup + closing) {fixed1} s / {fixed2} s"
        )
    return lines


def _row(results: dict[str, Any], key: str, work: str, ratio_key: str | None) -> str:
    step = results.get(key)
    if not step:
        return f"| {key} | | {work} | | | not run (see skipped) | |"
    ratio = (
        f"**{results[ratio_key]}**"
        if ratio_key and ratio_key in results
        else ("1.00" if "1gpu" in key else "")
    )
    cache = step.get("triton_cache", "warm (filled by timing_1gpu)" if key.startswith("profile") else "")
    return (
        f"| {key} | {step['gpus']} | {work} ({step['jobs']} jobs) | {cache} | {step.get('schedule', '')} | "
        f"{step['wall_s']} | {ratio} |"
    )


def draft_readme(results: dict[str, Any], command: str) -> str:
    """A README for the results folder, every figure taken from ``results`` (to check, then commit)."""
    found = [m.group(1) for k in results if (m := re.fullmatch(r"profile(\d+)_2gpu", k))]
    n = found[0] if found else "6"
    gpus = ", ".join(f"{g['index']}: {g['name']}" for g in results.get("gpus", []))
    lines = [
        "# Scale-out benchmark (issue 16): every `profile` figure in one run (part s)",
        "",
        f"GPUs {gpus}; {results.get('ncu', '')}; recorded {results.get('recorded', '')}.",
        "",
        f"    {command}",
        "",
        "| step | GPUs | work | Triton cache | schedule | wall s | speed-up vs 1 GPU |",
        "|---|---:|---|---|---|---:|---:|",
        _row(results, "timing_1gpu", "timing only, 24 variants", None),
        _row(results, "timing_2gpu", "timing only, 24 variants", "timing_speedup"),
        _row(results, "timing_1gpu_warm", "timing only, 24 variants", None),
        _row(results, "timing_2gpu_warm", "timing only, 24 variants", "timing_warm_speedup"),
        _row(results, f"profile{n}_1gpu", f"profile with ncu, {n} variants", None),
        _row(results, f"profile{n}_2gpu", f"profile with ncu, {n} variants", "profile_speedup_same_run"),
        _row(results, "timing_2gpu_fifo", "timing only, 24 variants", "timing_speedup_fifo"),
        "",
        "Where the time went (seconds from each step's start; `timeline` in the JSON):",
        "",
        *[f"- {line}" for line in timeline_lines(results)],
        "",
        "Throughput of the jobs (variants per second of the jobs phase, first job start to last job end; the",
        "setup is each GPU's timing-worker start, in parallel, and the closing builds the tables):",
        "",
        *[f"- {line}" for line in jobs_throughput_lines(results)],
        "",
        f"Timing agreement 2-GPU/1-GPU (empty caches): {results.get('timing_agreement', {})}.",
        *[f"Skipped: {s}" for s in results.get("skipped", [])],
    ]
    return "\n".join(lines) + "\n"
