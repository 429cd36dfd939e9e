"""The tune trajectory: every trial with its config, timings, correctness, proposing rule and verdict.

Written as ``tune.json`` in ``runs/<UTC time>-<stem>-tune/`` after every trial (temporary file, then rename),
so an interrupted tune leaves every finished trial on disk. Format (``format_version`` 1)::

    {"format_version": 1, "kind": "ncu-advisor-tune", "kernel_file": ..., "variant": ..., "kernel": ...,
     "options": {...}, "start": {config}, "best": {config}, "best_median_ms": float|null,
     "stop_reason": str|null, "complete": bool, "trials": [trial, ...]}

    trial: {"index", "config": {"params", "num_warps", "num_stages"}, "rule", "effect", "reason",
            "status": ok|incorrect|failed|crashed|timeout|rejected-limits, "median_ms", "reps_ms": [...],
            "correct": bool|null, "verdict": start|kept|reverted|rejected, "why": str,
            "n_regs", "n_spills", "metrics_moved": {metric: [before, after]}, "elapsed_s"}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ncu_advisor import rundir
from ncu_advisor.errors import RunError
from ncu_advisor.model import LaunchConfig

FORMAT_VERSION = 1
KIND = "ncu-advisor-tune"
TRAJECTORY_NAME = "tune.json"
VERDICTS = ("start", "kept", "reverted", "rejected")


@dataclass
class Trial:
    """One measured (or rejected) configuration."""

    index: int
    config: LaunchConfig
    rule: str
    effect: float
    reason: str
    status: str
    verdict: str
    why: str
    median_ms: float | None = None
    reps_ms: list[float] = field(default_factory=list)
    correct: bool | None = None
    n_regs: int | None = None
    n_spills: int | None = None
    metrics_moved: dict[str, list[float | None]] = field(default_factory=dict)
    elapsed_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"] = self.config.as_dict()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        values = dict(data)
        values["config"] = LaunchConfig.from_dict(values["config"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class Trajectory:
    """The whole tune session (see the module docstring for the JSON format)."""

    kernel_file: str
    variant: str
    kernel: str
    start: LaunchConfig
    options: dict[str, Any] = field(default_factory=dict)
    trials: list[Trial] = field(default_factory=list)
    best: LaunchConfig | None = None
    best_median_ms: float | None = None
    stop_reason: str | None = None
    complete: bool = False
    environment: dict[str, Any] = field(default_factory=dict)

    def tried(self) -> set[LaunchConfig]:
        return {t.config for t in self.trials}

    def measured_trials(self) -> int:
        """Trials that ran the kernel (limit rejections cost no GPU time and are not counted)."""
        return sum(1 for t in self.trials if t.status != "rejected-limits")

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "kernel_file": self.kernel_file,
            "variant": self.variant,
            "kernel": self.kernel,
            "options": self.options,
            "environment": self.environment,
            "start": self.start.as_dict(),
            "best": self.best.as_dict() if self.best else None,
            "best_median_ms": self.best_median_ms,
            "stop_reason": self.stop_reason,
            "complete": self.complete,
            "trials": [t.to_json() for t in self.trials],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trajectory:
        return cls(
            kernel_file=data["kernel_file"],
            variant=data["variant"],
            kernel=data["kernel"],
            start=LaunchConfig.from_dict(data["start"]),
            options=dict(data.get("options") or {}),
            trials=[Trial.from_json(t) for t in data.get("trials") or []],
            best=LaunchConfig.from_dict(data["best"]) if data.get("best") else None,
            best_median_ms=data.get("best_median_ms"),
            stop_reason=data.get("stop_reason"),
            complete=bool(data.get("complete")),
            environment=dict(data.get("environment") or {}),
        )


def write_trajectory(run_dir: Path, trajectory: Trajectory) -> Path:
    """Write ``tune.json`` atomically into ``run_dir``; return its path."""
    path = Path(run_dir) / TRAJECTORY_NAME
    rundir.write_json_atomic(path, trajectory.to_json())
    return path


def read_trajectory(path: Path) -> Trajectory:
    """Read a ``tune.json`` (or the one inside a tune run directory).

    Raises:
        RunError: missing, not JSON, not a tune trajectory, or of an unknown format version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / TRAJECTORY_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunError(f"cannot read the tune trajectory ({exc.strerror or exc})", path=path) from None
    except ValueError as exc:
        raise RunError(
            f"not JSON ({exc})", path=path, hint="the file is damaged; re-run ncu-advisor tune"
        ) from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise RunError("not an ncu-advisor tune trajectory", path=path)
    if data.get("format_version") != FORMAT_VERSION:
        raise RunError(
            f"unknown tune format version {data.get('format_version')!r}",
            path=path,
            hint=f"this ncu-advisor reads version {FORMAT_VERSION}",
        )
    try:
        return Trajectory.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(f"malformed tune trajectory ({type(exc).__name__}: {exc})", path=path) from None


def summary_rows(trajectory: Trajectory) -> list[dict[str, Any]]:
    """One row per trial for the summary table: index, config, rule, status, median, speed-up, verdict."""
    start_ms = next((t.median_ms for t in trajectory.trials if t.verdict == "start"), None)
    rows = []
    for trial in trajectory.trials:
        speedup = start_ms / trial.median_ms if start_ms and trial.median_ms else None
        rows.append(
            {
                "trial": trial.index,
                "config": trial.config.label(),
                "rule": trial.rule,
                "status": trial.status,
                "median_ms": trial.median_ms,
                "vs_start": speedup,
                "regs": trial.n_regs,
                "verdict": trial.verdict,
                "why": trial.why,
            }
        )
    return rows
