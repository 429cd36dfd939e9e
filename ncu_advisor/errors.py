"""One exception family. Each error carries the exit code the CLI returns for it.

Exit codes (documented in the README):
    0  success, no finding at or above ``--fail-on``
    1  findings at or above ``--fail-on`` / a regression in ``compare``
    2  bad input: a missing or malformed report, rule file, kernel file or run directory; usage errors
    3  the environment cannot profile: no GPU, no ncu, ncu too old, counter permission denied
"""

from __future__ import annotations

from pathlib import Path


class AdvisorError(Exception):
    """Base of every error ncu-advisor reports to the user.

    Args:
        message: what failed and why, one line.
        path: the file or directory the problem is in, if any.
        hint: what to do next.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str | None = None) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class InputError(AdvisorError):
    """A file or directory given to ncu-advisor cannot be used (exit 2)."""


class ReportError(InputError):
    """A report (.ncu-rep or CSV) is missing, corrupt, truncated or has no kernels."""


class RuleError(InputError):
    """A rule file is malformed, unsafe or refers to unknown metrics."""


class RunError(InputError):
    """A run directory is incomplete, unreadable or of an unknown format version."""


class KernelFileError(InputError):
    """A kernel file cannot be parsed or has no variants."""


class OutputError(InputError):
    """An output path cannot be written."""


class EnvironmentNotReady(AdvisorError):
    """The machine cannot profile: no GPU, no ncu, an ncu too old, counters not permitted (exit 3)."""

    exit_code = 3
