"""How a configuration is measured and profiled: the ``Measurement`` record and the backends.

- ``WorkerBackend``: one long-lived measurement worker (``worker.MeasureWorker``) for every trial: the model,
  inputs and reference are built once; candidates are measured in batches (``measure_many``), compiled ahead.
- ``ChildBackend``: the profile child under ncu (``profile``: one ncu run of a configuration), and ``measure``
  in a fresh process per trial (kept for a kernel file that does not survive a long-lived process).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncu_advisor.collect.tune.space import TuneConfig
from ncu_advisor.errors import AdvisorError, InputError

TUNE_CHILD_MODULE = "ncu_advisor.collect.tune.child"


@dataclass
class Measurement:
    """What one run of a configuration gave."""

    status: str
    reps_ms: list[float] = field(default_factory=list)
    correct: bool | None = None
    reason: str | None = None
    n_regs: int | None = None
    n_spills: int | None = None
    shared: int | None = None
    launched_with: dict[str, int] = field(default_factory=dict)
    int_args: dict[str, int] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    #: timed once only: its first repetition was not below the screen (the best's fastest repetition)
    screened: bool = False

    @property
    def median_ms(self) -> float | None:
        if not self.reps_ms:
            return None
        ordered = sorted(self.reps_ms)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    @property
    def usable(self) -> bool:
        return self.status == "ok" and self.correct is not False and bool(self.reps_ms)


class WorkerBackend:
    """Measures configurations in one measurement worker (see ``ncu_advisor.collect.tune.worker``).

    Every result is appended to ``run_dir/trials.jsonl`` (the raw event: timings, errors, the pin record).
    """

    def __init__(self, worker: Any, kernel: str, run_dir: Path | None = None) -> None:
        self.worker = worker
        self.kernel = kernel
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.count = 0
        self.started = False
        #: how each measured candidate's compile was found (``worker_child``'s ``"compile"``: ready, waited,
        #: own; ``none``: no compile ahead, e.g. the start or a config this worker compiled before)
        self.compile_found: dict[str, int] = {}
        #: the pool's last counts (``compile_pool.CompilePool.stats``)
        self.pool_stats: dict[str, float] = {}
        #: prefetch lists sent to the worker (none to a worker without a compile pool)
        self.prefetch_lists = 0
        self._prefetch: list[dict[str, Any]] | None = None
        self._in_batch = False

    def prefetch(self, configs: list[TuneConfig], when: list[dict[str, int]] | None = None) -> None:
        """Configurations the search will likely ask for next (``prefetch.Prefetcher``): sent to the worker
        now while a batch runs, else with the next batch, after its candidates. ``when`` (one per config):
        the launch values of the first launch a guess assumes (``ahead.AheadCompiler.prefetch``)."""
        send = getattr(self.worker, "prefetch", None)
        if send is None:
            return
        self._prefetch = [c.as_dict() for c in configs]
        for config, values in zip(self._prefetch, when or [], strict=False):
            if values:
                config["when"] = dict(values)
        if self._in_batch:
            self._send_prefetch()

    def quiet(self, close: bool) -> None:
        """No compile ahead beside the next timings (the confirmation's and the final pick's): the worker
        drops the queued guesses and waits for the running compiles, or closes its pool (``close``: the final
        pick, after which nothing is compiled)."""
        self._prefetch = None
        send = getattr(self.worker, "prefetch", None)
        if send is not None and self.started:
            send([], quiet="close" if close else "wait")

    def _send_prefetch(self) -> None:
        if self._prefetch is not None:
            if self.worker.prefetch(self._prefetch) is not False:
                self.prefetch_lists += 1
            self._prefetch = None

    def compile_summary(self) -> dict[str, Any]:
        """What compiling ahead and prefetching bought (``trajectory.options["worker"]["compile"]``)."""
        found, pool = dict(self.compile_found), dict(self.pool_stats)
        return {"found": found, "pool": pool, "lists": self.prefetch_lists}

    def launch(self) -> None:
        """Start the worker process now without waiting for it (``MeasureWorker.launch``): it builds the
        model and the reference while the caller goes on; the first ``measure_many`` waits for it."""
        if not self.started:
            self.worker.launch()

    def _ensure_started(self) -> None:
        if not self.started:
            self.worker.start()
            self.started = True

    def measure(self, config: TuneConfig | None) -> Measurement:
        return next(iter(self.measure_many([config])))

    def measure_many(
        self, configs: list[TuneConfig | None], screen_ms: float | None = None
    ) -> Iterator[Measurement]:
        """Measure ``configs`` in one batch (compiled ahead together); yields results in the same order.
        ``screen_ms``: each candidate is timed once, and ``reps`` times only when that is below it."""
        self._ensure_started()
        if self.count == 0:  # before the start: the worker holds it until its first launch, whenever it comes
            self._send_prefetch()
        start_id = "0000" if self.count == 0 and configs and configs[0] is None else None
        ids = []
        for config in configs:
            ids.append(f"{self.count:04d}")
            self.count += 1
            self.worker.submit(ids[-1], None if config is None else config.as_dict(), screen_ms)
        self._send_prefetch()
        self._in_batch = True
        try:
            for event in self.worker.results():
                if self.run_dir is not None:
                    with (self.run_dir / "trials.jsonl").open("a", encoding="utf-8") as log:
                        log.write(json.dumps(event, default=str) + "\n")
                found = str(event.get("compile") or "none")
                self.compile_found[found] = self.compile_found.get(found, 0) + 1
                self.pool_stats = dict(event.get("pool") or self.pool_stats)
                seen = ("launched_with", "int_args", "n_regs")  # what a launch of the kernel leaves
                if (
                    event.get("id") == start_id
                    and event.get("status") == "ok"
                    and not any(map(event.get, seen))
                ):
                    # the pin acts on that kernel's launches: every candidate would time the start again
                    raise InputError(
                        f"the variant ran without launching kernel {self.kernel}: no configuration of it can "
                        "change what is timed",
                        hint="pass --kernel with a @triton.jit kernel the variant's forward launches",
                    )
                yield measurement_from_event(event, self.worker.environment)
        finally:
            self._in_batch = False

    def stop(self) -> None:
        self.worker.stop()  # also a worker launched and never waited for
        self.started = False


def measurement_from_event(event: dict[str, Any], environment: dict[str, Any]) -> Measurement:
    """A ``Measurement`` from one worker result event."""
    status = str(event.get("status") or "failed")
    reason = event.get("reason")
    if event.get("fixed_grid_changed") and event.get("correct") is False:
        changed = ", ".join(event["fixed_grid_changed"])
        reason = f"{reason} ({changed} changed under a fixed launch grid that depends on it)"
    return Measurement(
        status=status,
        reps_ms=[float(t) for t in event.get("reps_ms") or []],
        correct=event.get("correct"),
        reason=reason,
        n_regs=event.get("n_regs"),
        n_spills=event.get("n_spills"),
        shared=event.get("shared"),
        launched_with=dict(event.get("launched_with") or {}),
        int_args=dict(event.get("int_args") or {}),
        environment=dict(environment),
        screened=bool(event.get("screened")),
    )


class ChildBackend:
    """Measures and profiles configurations in child processes (``ncu_advisor.collect.profile.child``).

    Each trial gets ``run_dir/trials/NNN/`` with ``result.json``, ``child.log`` and, when profiled,
    ``profile.ncu-rep`` and ``ncu.log``.
    """

    def __init__(
        self,
        kernel_file: Path,
        variant_class: str,
        kernel: str,
        run_dir: Path,
        options: Any,
        ncu: Path | None = None,
        metrics: list[str] | None = None,
    ) -> None:
        self.kernel_file = Path(kernel_file).resolve()
        self.variant_class = variant_class
        self.kernel = kernel
        self.run_dir = Path(run_dir)
        self.options = options
        self.ncu = ncu
        self.metrics = metrics or []
        self.count = 0
        self.profiles = 0

    def _override(self, config: TuneConfig | None) -> str:
        if config is None:
            return json.dumps({"kernel": self.kernel})
        return json.dumps(config.override(self.kernel), sort_keys=True)

    def _argv(self, config: TuneConfig | None, mode: str, folder: Path, out: Path) -> list[str]:
        from ncu_advisor.collect.profile import runner  # noqa: PLC0415

        argv = runner.child_command(
            self.options.python,
            self.kernel_file,
            [
                self.variant_class,
                "--override",
                self._override(config),
                "--override-record",
                str(folder / "override.json"),
            ],
            mode,
            out,
            self.options,
        )
        return [TUNE_CHILD_MODULE if a == runner.CHILD_MODULE else a for a in argv]

    def _folder(self, label: str) -> Path:
        folder = self.run_dir / "trials" / label
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def measure(self, config: TuneConfig | None) -> Measurement:
        """Run the bare child (correctness + do_bench reps + n_regs) with ``config`` pinned."""
        from ncu_advisor.collect.profile import runner  # noqa: PLC0415

        folder = self._folder(f"{self.count:03d}")
        self.count += 1
        argv = self._argv(config, "bench", folder, folder / "result.json")
        (folder / "command.json").write_text(json.dumps(argv))
        log = folder / "child.log"
        process = runner.run_process(argv, log, self.options.timeout_s)
        result = runner._read_json(folder / "result.json")
        outcome = runner.VariantOutcome(name=self.variant_class)
        runner.judge_bench(process, result, log, self.options.timeout_s, outcome)
        record = runner._read_json(folder / "override.json") or {}
        return measurement_from_result(
            outcome.status, outcome.reason, {**(result or {}), "override": record}, self.kernel
        )

    def profile(self, config: TuneConfig, measurement: Measurement) -> Any:
        """One ncu run of ``config`` (None without ncu or when the run failed: the rules then use n_regs)."""
        if self.ncu is None:
            return None
        from ncu_advisor.collect.profile import ncu as ncu_module  # noqa: PLC0415
        from ncu_advisor.collect.profile import runner  # noqa: PLC0415

        folder = self._folder(f"profile-{self.profiles:03d}")
        self.profiles += 1
        target = self._argv(config, "ncu", folder, folder / "ncu_result.json")
        argv = ncu_module.build_ncu_command(
            self.ncu,
            report_base=folder / "profile",
            target=target,
            metrics=self.metrics,
            clock_control=self.options.clock_control,
            cache_control=self.options.cache_control,
        )
        (folder / "command.json").write_text(json.dumps(argv))
        log = folder / "ncu.log"
        process = runner.run_process(argv, log, self.options.timeout_s)
        outcome = runner.VariantOutcome(name=self.variant_class)
        report = folder / "profile.ncu-rep"
        runner.judge_ncu(process, log, report, self.options.timeout_s, outcome)
        if outcome.status in ("failed", "crashed", "timeout") or not report.is_file():
            return None
        from ncu_advisor.ingest.readers import read_report  # noqa: PLC0415

        try:
            table = read_report(report, variant=self.variant_class)
        except AdvisorError:  # a truncated or unreadable report: the rules fall back to Triton's counts
            return None
        kernels = [
            {"name": name, "n_regs": measurement.n_regs, "n_spills": measurement.n_spills}
            for name in table["kernel"].astype(str).unique()
            if name.startswith(self.kernel)
        ]
        from ncu_advisor.rundir import merge_triton_counts  # noqa: PLC0415

        return merge_triton_counts(table, self.variant_class, kernels)


def measurement_from_result(
    status: str, reason: str | None, result: dict[str, Any], kernel: str
) -> Measurement:
    """Build a ``Measurement`` from the child's result JSON and the judged status."""
    correctness = result.get("correctness") or {}
    correct = correctness.get("passed") if isinstance(correctness, dict) and correctness else None
    if status == "incorrect":
        status, correct = "ok", False
    record = result.get("override") or {}
    n_regs = n_spills = shared = None
    for entry in list(result.get("triton_kernels") or []) + list(result.get("triton_compiled") or []):
        name = str(entry.get("name") or "")
        if name == kernel or name.startswith(kernel):
            n_regs, n_spills, shared = entry.get("n_regs"), entry.get("n_spills"), entry.get("shared")
            break
    return Measurement(
        status=status,
        reps_ms=[float(t) for t in result.get("timings_ms") or []],
        correct=correct,
        reason=reason,
        n_regs=n_regs,
        n_spills=n_spills,
        shared=shared,
        launched_with=dict(record.get("launched_with") or {}),
        int_args=dict(record.get("int_args") or {}),
        environment=dict(result.get("environment") or {}),
    )
