"""ncu-advisor: Nsight Compute metrics in, Triton tuning advice out.

The Python entry is ``ncu_advisor.analyze(path)`` (docs/api.md): the analysis ``recommend`` and ``report``
print, as pandas DataFrames and plain data. It is imported on first use, so ``import ncu_advisor`` stays
light for the CLI and the profiling children.

Started as a command (``ncu-advisor``, ``python -m ncu_advisor[.module]``) with fd 0, 1 or 2 closed
(``2>&-``), the package's first import opens /dev/null onto each closed one (``reserve_standard_fds``),
before anything else is imported: else the first file an import opens takes fd 2, and the error line is
written into it or fails (EBADF, exit 1 instead of the error's own code).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any


def reserve_standard_fds() -> list[int]:
    """Open /dev/null onto each of fds 0, 1 and 2 that is closed (``os.fstat`` fails), and onto fd 1 or 2
    when it is open for reading only; returns the fds replaced.

    fd 0 is opened for reading, 1 and 2 for writing: what is written to a stream the shell closed is
    discarded, as its user asked, and no file opened later can take the stream's number. A read-only fd 2
    is what a closed stderr becomes behind a bash launcher (a pyenv shim, ``#!/usr/bin/env bash`` wrappers):
    bash opens its script on the lowest free fd, 2, and ``exec`` passes it on; every write to it fails.
    """
    reserved = []
    for fd in (0, 1, 2):
        if _usable(fd):
            continue
        null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
        if null != fd:  # the lowest free number: ``fd`` itself unless a lower one is also closed
            os.dup2(null, fd)
            os.close(null)
        reserved.append(fd)
    return reserved


def _usable(fd: int) -> bool:
    """``fd`` is open, and fd 1 or 2 is open for writing (where ``fcntl`` can tell)."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    if fd == 0:
        return True
    try:
        import fcntl  # noqa: PLC0415 - POSIX only

        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except (ImportError, OSError):
        return True
    return mode != os.O_RDONLY


def _started_as_command() -> bool:
    """True in the console script and under ``python -m`` (argv[0] is "-m" while the package imports)."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or os.path.basename(first).startswith("ncu-advisor")


if _started_as_command():
    reserve_standard_fds()

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ncu_advisor.api import FINDING_COLUMNS, VARIANT_COLUMNS, ProposalSet, Result, analyze

__all__ = ["FINDING_COLUMNS", "VARIANT_COLUMNS", "ProposalSet", "Result", "__version__", "analyze"]
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    """``analyze``, ``Result`` ... from ``ncu_advisor.api``, loaded on first access (PEP 562)."""
    if name in _API:
        from ncu_advisor import api  # noqa: PLC0415 - pandas and the rules load only when asked for

        return getattr(api, name)
    raise AttributeError(f"module 'ncu_advisor' has no attribute {name!r}")
