"""Rules skipped for missing metrics, said in every output: a launch is never a bare "no findings".

A rule whose required metric (or ``gpu_*`` GPU fact) is absent from the report is skipped on that launch
(the engine records ``{"rule", "reason", "missing"}``). A launch with no finding but skipped rules was not
fully checked, so every format names how many rules were skipped and which metrics were missing (issue 11,
seed 001: a five-metric JSON block skips 30 of the rules). ``src_*`` facts are not counted: a rule whose
kernel-source fact is absent does not apply to that kernel (no BLOCK parameter, no loop), it is not unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: How many missing metric names a one-line text lists before "and N more".
MAX_NAMES = 40


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
