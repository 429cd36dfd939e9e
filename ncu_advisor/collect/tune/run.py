"""One ``ncu-advisor tune`` session: plan, environment check, worker, search, final profile, files.

``TuneSession(settings)`` reads the kernel file statically, checks the environment and creates the run
directory ``runs/<UTC time>-<stem>-tune/``; ``run()`` starts one measurement worker
(``worker.MeasureWorker``) for every trial, runs the search (``loop.run_tune``), profiles the final
configuration under ncu (the start was profiled by the first recommendation; ncu runs for no other trial),
records which metrics moved between the two, and writes ``tune.json``, ``tune.svg`` and ``trials.jsonl``.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ncu_advisor import rundir
from ncu_advisor.analysis.trajectory import Trajectory, Trial, write_trajectory
from ncu_advisor.collect.tune.backend import Measurement, WorkerBackend
from ncu_advisor.collect.tune.searchspace import (
    PIN_OTHERS,
    SearchSpace,
    check_space_spec,
    is_tile_param,
    read_space_file,
    rule_values,
)
from ncu_advisor.collect.tune.space import TuneConfig
from ncu_advisor.errors import AdvisorError, EnvironmentNotReady

if TYPE_CHECKING:
    from ncu_advisor.collect.tune.worker import WorkerOptions

#: Relative change of a metric between the start and the final profile that counts as "moved".
MOVED_THRESHOLD = 0.05

#: The measurement settings ``tune`` uses unless told otherwise: the ones the tune benchmark measured its
#: quality with (>= 98% of the exhaustive sweep's best on 18 of 19 kernels, bench/results/
#: 2026-11-30-tune-h200x2-s4b: 3 repetitions of do_bench at 10 ms warm-up / 40 ms measurement each, 12
#: compile processes on a 16-core share of the host). Triton's do_bench defaults are 25 / 100 ms.
DEFAULT_REPS = 3
DEFAULT_WARMUP_MS = 10.0
DEFAULT_REP_MS = 40.0
MAX_COMPILE_PROCS = 12


def default_compile_procs() -> int:
    """Compile-ahead processes when none are asked for: the CPUs less four (the worker, the parent and the
    driver's threads), at most ``MAX_COMPILE_PROCS``; 0 (compile in the worker) on a machine of 4 CPUs or
    fewer."""
    return max(0, min(MAX_COMPILE_PROCS, (os.cpu_count() or 1) - 4))


@dataclass(frozen=True)
class TuneSettings:
    """The options of ``ncu-advisor tune`` (see ``ncu_advisor.cli.tune`` for each one's meaning)."""

    kernel_file: Path
    variant: str
    kernel: str | None = None
    budget: int | None = None
    time_limit: float | None = None
    space_file: Path | None = None
    #: the ``--space`` mapping itself (the bench passes its stated space); wins over ``space_file``
    space_spec: dict[str, Any] | None = None
    min_gain: float = 0.02
    use_ncu: bool = True
    exhaustive: bool = True
    reps: int = DEFAULT_REPS
    timeout: float = 300.0
    compile_threads: int = 1
    compile_procs: int = field(default_factory=default_compile_procs)
    rules: Path | None = None
    runs_dir: Path = Path("runs")
    python: str = "python3"
    gpu: str | None = None
    #: "cpu" runs the worker on the CPU (TRITON_INTERPRET=1, tests and bench rehearsals): no GPU check
    device: str = "cuda"
    #: module-level size constants set in the worker before it builds the inputs (small shapes)
    sets: dict[str, int] = field(default_factory=dict)
    #: correctness tolerance (relative L2 error); None: the profile child's default
    rtol: float | None = None
    #: do_bench settings of the worker (ms)
    warmup_ms: float = DEFAULT_WARMUP_MS
    rep_ms: float = DEFAULT_REP_MS
    #: time each candidate once first, the other reps only when it can still pass the keep test
    #: (``loop``'s screening)
    screen: bool = True


def worker_options_for(settings: TuneSettings) -> WorkerOptions:
    """The measurement worker's options from tune's settings (``tune`` and the bench's sweep use this one
    function, so both measure the same way)."""
    from ncu_advisor.collect.tune.worker import WorkerOptions  # noqa: PLC0415

    return WorkerOptions(
        python=settings.python,
        timeout_s=settings.timeout,
        reps=settings.reps,
        compile_threads=settings.compile_threads,
        compile_procs=settings.compile_procs,
        gpu=settings.gpu,
        warmup_ms=settings.warmup_ms,
        rep_ms=settings.rep_ms,
        rtol=settings.rtol,
        device=settings.device,
        sets=dict(settings.sets),
    )


class TuneSession:
    """Everything one tune run needs; ``run`` does it (see the module docstring).

    Raises (constructor):
        KernelFileError / InputError: the file, the variant, the kernel or the space file is bad.
        EnvironmentNotReady: no GPU, or no ncu without ``use_ncu=False``.
    """

    def __init__(self, settings: TuneSettings) -> None:
        from ncu_advisor.collect.profile import runner  # noqa: PLC0415
        from ncu_advisor.collect.tune.session import plan_tune  # noqa: PLC0415
        from ncu_advisor.collect.tune.worker import MeasureWorker, worker_command  # noqa: PLC0415
        from ncu_advisor.rules import load_rules  # noqa: PLC0415

        self.settings = settings
        self.plan = plan_tune(settings.kernel_file, settings.variant, settings.kernel)
        self.space_spec = settings.space_spec
        if self.space_spec is None and settings.space_file:
            self.space_spec = read_space_file(settings.space_file)
        if self.space_spec is not None:  # a bad entry fails now, not after the worker start and the start
            names = [p for p in self.plan.facts.params if is_tile_param(p)] + ["num_warps", "num_stages"]
            check_space_spec(self.space_spec, settings.space_file, names)
        ncu_path, metrics = self._environment(runner)
        self.run_dir = rundir.create_run_dir(
            Path(settings.runs_dir).resolve(), f"{Path(settings.kernel_file).stem}-tune"
        )
        (self.run_dir / rundir.KERNEL_COPY_NAME).write_bytes(Path(settings.kernel_file).read_bytes())
        worker_options = worker_options_for(settings)
        argv = worker_command(
            Path(settings.kernel_file).resolve(), self.plan.variant, self.plan.kernel, worker_options
        )
        worker = MeasureWorker(argv, worker_options, log_path=self.run_dir / "worker.log")
        self.backend = WorkerBackend(worker, self.plan.kernel, self.run_dir)
        # the worker imports torch and builds the model and the reference (5-9 s on the H200 machine) while
        # the rules load (0.4-0.9 s) and the rest is set up; run() waits for it
        self.backend.launch()
        try:
            self._set_up(settings, runner, load_rules(settings.rules), ncu_path, metrics)
        except BaseException:  # a bad --rules folder, Ctrl-C: no worker and no half-made run folder left
            self.backend.stop()
            shutil.rmtree(self.run_dir, ignore_errors=True)
            raise

    def _set_up(
        self, settings: TuneSettings, runner: Any, rule_set: Any, ncu_path: Path | None, metrics: list[str]
    ) -> None:
        from ncu_advisor.collect.tune.recommend import RuleRecommender  # noqa: PLC0415

        options = runner.ProfileOptions(
            timeout_s=settings.timeout,
            reps=settings.reps,
            python=settings.python,
            runs_root=settings.runs_dir,
            rules_dir=settings.rules,
        )
        from ncu_advisor.collect.tune.backend import ChildBackend  # noqa: PLC0415

        self.profiler = ChildBackend(
            Path(settings.kernel_file),
            self.plan.variant,
            self.plan.kernel,
            self.run_dir,
            options,
            ncu=ncu_path,
            metrics=metrics,
        )
        self.recommender = RuleRecommender(
            self.plan.kernel,
            self.plan.source,
            rule_set,
            self.plan.invariant,
            profile=self.profiler.profile if ncu_path is not None else None,
        )
        self.space: SearchSpace | None = None
        self.trajectory = Trajectory(
            kernel_file=str(Path(settings.kernel_file).resolve()),
            variant=self.plan.variant,
            kernel=self.plan.kernel,
            start=self.plan.start,
            options={
                "budget": settings.budget,
                "time_s": settings.time_limit,
                "min_gain": settings.min_gain,
                "reps": settings.reps,
                "screen": settings.screen,
                "ncu": ncu_path is not None,
                "method": self.plan.method,
                # what the paste text needs (render.tune_report.paste): the autotune key, the launch line
                "autotune_key": self.plan.facts.autotune_key,
                "launch_line": self.plan.facts.launch_lineno,
            },
        )

    def _environment(self, runner: Any) -> tuple[Path | None, list[str]]:
        if not self.settings.use_ncu:
            if self.settings.device != "cpu":
                runner.query_gpu()
            return None, []
        try:
            env = runner.check_environment()
        except EnvironmentNotReady as exc:
            if "ncu" not in exc.message:
                raise
            hint = f"{exc.hint}; or run tune --no-ncu (rules read Triton's n_regs/n_spills only)"
            raise EnvironmentNotReady(exc.message, path=exc.path, hint=hint) from None
        options = runner.ProfileOptions(rules_dir=self.settings.rules)
        return env.ncu, options.resolved_metrics()

    def save(self, t: Trajectory) -> None:
        from ncu_advisor.render.plot import trajectory_svg  # noqa: PLC0415

        t.options["recommendations"] = self.recommender.history
        write_trajectory(self.run_dir, t)
        (self.run_dir / "tune.svg").write_text(trajectory_svg(t), encoding="utf-8")

    def _space_for(self, start_m: Measurement) -> SearchSpace:
        from ncu_advisor.collect.tune.session import make_space  # noqa: PLC0415

        self.space = make_space(
            self.plan, self.trajectory.start, start_m, self.space_spec, self.settings.space_file
        )
        self.trajectory.options["space"] = self.space.as_dict()
        self.trajectory.options["space_size"] = self.space.size
        return self.space

    def run(self, on_trial: Callable[[Trial], None] | None = None) -> Trajectory:
        """Search, profile the final configuration, save; returns the trajectory.

        Raises:
            KeyboardInterrupt, AdvisorError: after saving the trajectory so far (the worker is stopped).
        """
        from ncu_advisor.collect.tune.loop import run_tune  # noqa: PLC0415
        from ncu_advisor.collect.tune.session import make_limits  # noqa: PLC0415

        s, t = self.settings, self.trajectory
        try:
            guess = self.first_round_guess()
            self.backend.prefetch([c for c, _ in guess], when=[w for _, w in guess])
            run_tune(
                t,
                None,
                self.recommender,
                lambda m: make_limits(self.plan, t.start, m),
                budget=s.budget,
                time_limit_s=s.time_limit,
                min_gain=s.min_gain,
                save=self.save,
                on_trial=on_trial,
                measure_many=self.backend.measure_many,
                space=self._space_for,
                exhaustive=s.exhaustive,
                screen=s.screen,
                prefetch=self.backend.prefetch,
                quiet=self.backend.quiet,
            )
        finally:
            self.backend.stop()
            t.options["worker"] = {
                "restarts": self.backend.worker.restarts,
                "build_s": self.backend.worker.build_s,
                "compile_ahead_s": round(self.backend.worker.compile_s, 3),
                "compile": self.backend.compile_summary(),
            }
        self.profile_final()
        self.save(t)
        return t

    def first_round_guess(self) -> list[tuple[TuneConfig, dict[str, int]]]:
        """The first round's candidates guessed before the start is measured (the worker compiles them while
        the start compiles and is timed): from the source's start, the space and limits without the start's
        runtime extents, no rule moves; then the coupled round. Each comes with the launch values it assumes
        (``{}``: none). A tile the launch computes at run time (``BLOCK_SIZE = next_power_of_2(n)``) has no
        static start value: the rounds from each value it may take (``start_values``) are sent, each with
        that value, and the worker keeps those of the value its first launch passes (``ahead``)."""
        from ncu_advisor.collect.tune.batch import limits_in_space, round_batch  # noqa: PLC0415
        from ncu_advisor.collect.tune.session import make_limits, make_space  # noqa: PLC0415

        none = Measurement("ok")
        out: list[tuple[TuneConfig, dict[str, int]]] = []
        for when in start_values(self.plan, self.space_spec):
            start = self.trajectory.start.replace(when)
            try:
                space = make_space(self.plan, start, none, self.space_spec, self.settings.space_file)
                limits = limits_in_space(make_limits(self.plan, start, none), space)
            except AdvisorError:  # a bad --space: the search reports it with the start's measurement
                continue
            rounds = [round_batch(start, [], limits, {start}, coupled=c)[0] for c in (False, True)]
            out += [(c.config, when) for r in rounds for c in r]
        return out

    def profile_final(self) -> None:
        """ncu on the final configuration (when ncu is used and it differs from the start); the metrics
        that moved between the start's profile and this one go to ``options["profiled"]``."""
        t = self.trajectory
        best = next((trial for trial in t.trials if trial.config == t.best and trial.reps_ms), None)
        if self.recommender.profile is None or best is None or t.best == t.start:
            return
        measurement = Measurement(
            "ok",
            list(best.reps_ms),
            True,
            n_regs=best.n_regs,
            n_spills=best.n_spills,
            environment=dict(t.environment),
        )
        self.recommender.final(best.config, measurement)
        profiled = dict(self.recommender.profiled)
        start, final = profiled.get("start", {}), profiled.get("final", {})
        profiled["moved"] = moved_metrics(start.get("metrics") or {}, final.get("metrics") or {})
        t.options["profiled"] = profiled


#: Values tried for a tile the launch computes at run time, when the space file does not list them (the
#: powers of two of ``searchspace``'s tile range), and at most this many combinations of such tiles.
RUNTIME_TILE_VALUES = tuple(2**i for i in range(4, 15))
MAX_START_GUESSES = 16


def start_values(plan: Any, spec: dict[str, Any] | None) -> list[dict[str, int]]:
    """The launch values a guess of the first round may assume for the tiles with no static start value:
    ``[{}]`` when every tile has one; else each combination of their values (the space file's, else
    ``RUNTIME_TILE_VALUES``), at most ``MAX_START_GUESSES``, the static guess ``{}`` first."""

    known = set(plan.start.param_dict)
    if spec:
        names = [n for n in spec if n not in ("num_warps", "num_stages", PIN_OTHERS) and n not in known]
    else:
        names = [n for n in plan.facts.constexpr_params if is_tile_param(n) and n not in known]
    if not names:
        return [{}]
    # a space entry may be a list or a mapping (add/min/max: the powers of two of the range)
    choices = [
        sorted(rule_values(spec[n], RUNTIME_TILE_VALUES)) if spec else RUNTIME_TILE_VALUES for n in names
    ]
    combos = itertools.islice(itertools.product(*choices), MAX_START_GUESSES)
    return [{}, *(dict(zip(names, combo, strict=True)) for combo in combos)]


def moved_metrics(before: dict[str, float], after: dict[str, float]) -> dict[str, list[float]]:
    """Metrics present in both whose relative change is at least ``MOVED_THRESHOLD`` (5%)."""
    moved: dict[str, list[float]] = {}
    for name in sorted(set(before) & set(after)):
        a, b = float(before[name]), float(after[name])
        if abs(b - a) / max(abs(a), 1e-12) >= MOVED_THRESHOLD:
            moved[name] = [a, b]
    return moved
