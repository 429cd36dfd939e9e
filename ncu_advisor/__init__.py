"""ncu-advisor: Nsight Compute metrics in, Triton tuning advice out.

The Python entry is ``ncu_advisor.analyze(path)`` (docs/api.md): the analysis ``recommend`` and ``report``
print, as pandas DataFrames and plain data. It is imported on first use, so ``import ncu_advisor`` stays
light for the CLI and the profiling children.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
