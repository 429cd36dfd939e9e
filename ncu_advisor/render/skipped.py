"""Rules skipped for missing metrics, said in every output: a launch is never a bare "no findings".

A rule whose required metric (or ``gpu_*`` GPU fact) is absent from the report is skipped on that launch
(the engine records ``{"rule", "reason", "missing"}``). A launch with no finding but skipped rules was not
fully checked, so every format names how many rules were skipped and which metrics were missing (issue 11,
seed 001: a five-metric JSON block skips 30 of the rules). ``src_*`` facts are not counted: a rule whose
kernel-source fact is absent does not apply to that kernel (no BLOCK parameter, no loop), it is not unknown.

A rule that fails while it is evaluated on a launch (a division by zero in its expressions: the engine
records the skip with ``missing`` None) is said too, in every format, naming the rule, the launches and the
error (``rule_failures``): a user rule that divides by a metric that is zero on some launch would otherwise
check nothing there, silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: How many missing metric names a one-line text lists before "and N more".
MAX_NAMES = 40
#: How many launches a rule-failure line names before "and N more".
MAX_LAUNCHES = 5


@dataclass(frozen=True)
class Skipped:
    """The rules skipped on some launches because a metric was missing, and those metrics (sorted)."""

    rules: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def text(self, *, code: bool = False) -> str:
        """``4 rules skipped, metrics missing: a, b, c, d`` (names in backticks with ``code``); "" if none."""
        if not self.rules:
            return ""
        quote = "`" if code else ""
        names = [f"{quote}{m}{quote}" for m in self.metrics[:MAX_NAMES]]
        if len(self.metrics) > MAX_NAMES:
            names.append(f"and {len(self.metrics) - MAX_NAMES} more")
        count = len(self.rules)
        return f"{count} rule{'' if count == 1 else 's'} skipped, metrics missing: {', '.join(names)}"

    def after(self, word: str, *, code: bool = False) -> str:
        """``word`` (``no findings``), then ``; <text>`` when rules were skipped."""
        return f"{word}; {self.text(code=code)}" if self.rules else word

    def as_dict(self) -> dict[str, Any]:
        """JSON: ``{"rules": [...], "metrics": [...], "text": str}``."""
        return {"rules": list(self.rules), "metrics": list(self.metrics), "text": self.text()}


def skipped_for_missing(results: Iterable[Any]) -> Skipped:
    """The rules skipped for a missing metric or GPU fact on any of ``results`` (engine KernelResults)."""
    rules: set[str] = set()
    metrics: set[str] = set()
    for result in results:
        for entry in result.skipped:
            missing = entry.get("missing")
            if not missing or str(missing).startswith("src_"):
                continue
            rules.add(str(entry["rule"]))
            metrics.add(str(missing))
    return Skipped(tuple(sorted(rules)), tuple(sorted(metrics)))


def no_findings(results: Iterable[Any], *, code: bool = False, word: str = "no findings") -> str:
    """``word``, followed by what was not checked when rules were skipped for missing metrics."""
    return skipped_for_missing(results).after(word, code=code)


def of_analysis(analysis: Any, *, variant: str | None = None, kernel: str | None = None) -> Skipped:
    """``skipped_for_missing`` over an Analysis' launches (library ones included), optionally only those of
    one ``variant`` or one ``kernel``."""
    results = [*analysis.results, *analysis.library_results]
    if variant is not None:
        results = [r for r in results if (r.variant or "") == variant]
    if kernel is not None:
        results = [r for r in results if r.kernel == kernel]
    return skipped_for_missing(results)


@dataclass(frozen=True)
class RuleFailure:
    """A rule that could not be evaluated on some launches: its id, the error and those launches
    (``kernel [variant] launch N``, in result order)."""

    rule: str
    error: str
    launches: tuple[str, ...]

    def text(self, *, code: bool = False) -> str:
        """``rule UR901 failed on 1 launch (division by zero ...): k [v] launch 0; not checked there ...``."""
        quote = "`" if code else ""
        names = list(self.launches[:MAX_LAUNCHES])
        if len(self.launches) > MAX_LAUNCHES:
            names.append(f"and {len(self.launches) - MAX_LAUNCHES} more")
        count = len(self.launches)
        guard = f"{quote}a / b if b != 0 else 0{quote}"
        return (
            f"rule {self.rule} failed on {count} launch{'' if count == 1 else 'es'} ({self.error}): "
            f"{', '.join(names)}; it checked nothing there (fix the rule's expressions, e.g. guard a "
            f"divisor: {guard})"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON: ``{"rule", "error", "launches": [...], "text"}``."""
        return {"rule": self.rule, "error": self.error, "launches": list(self.launches), "text": self.text()}


def _launch_label(result: Any) -> str:
    variant = f" [{result.variant}]" if result.variant else ""
    return f"{result.kernel}{variant} launch {result.launch}"


def rule_failures(results: Iterable[Any]) -> list[RuleFailure]:
    """The rules that failed while evaluated (skips with no missing input), one entry per rule and error,
    in the order first met, over ``results`` (engine KernelResults)."""
    found: dict[tuple[str, str], list[str]] = {}
    for result in results:
        for entry in result.skipped:
            if entry.get("missing"):
                continue
            found.setdefault((str(entry["rule"]), str(entry["reason"])), []).append(_launch_label(result))
    return [RuleFailure(rule, error, tuple(launches)) for (rule, error), launches in found.items()]


def failures_of_analysis(analysis: Any) -> list[RuleFailure]:
    """``rule_failures`` over an Analysis' launches, library ones included."""
    return rule_failures([*analysis.results, *analysis.library_results])


def notes_of(analysis: Any) -> list[str]:
    """The analysis' notes, then one per rule that failed on some launches (what the reports list)."""
    return [*analysis.notes, *(failure.text() for failure in failures_of_analysis(analysis))]
