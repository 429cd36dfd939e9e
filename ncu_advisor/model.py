"""Frozen value types shared by the rules engine, the profiler and the renderers.

The pivot of the whole tool is not here: it is the tidy pandas table (see ``ncu_advisor.table``).
These types describe what is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]


@dataclass(frozen=True)
class Proposal:
    """One concrete Triton launch configuration to try.

    ``params`` holds the ``tl.constexpr`` block sizes (``{"BLOCK_M": 64, ...}``).
    """

    params: dict[str, int]
    num_warps: int
    num_stages: int
    reason: str = ""
    baseline: bool = False

    def as_triton_config(self) -> str:
        inner = ", ".join(f"'{k}': {v}" for k, v in self.params.items())
        return f"triton.Config({{{inner}}}, num_warps={self.num_warps}, num_stages={self.num_stages})"


@dataclass(frozen=True)
class Finding:
    """A rule that fired on one kernel launch.

    ``estimated_effect`` is the estimated fraction of the kernel's time that acting on the finding
    could save (0..1); ``effect_kind`` says whether it is ``local`` (this kernel) or ``global``.
    """

    rule: str
    name: str
    stage: str
    severity: Severity
    kernel: str
    launch: int
    message: str
    recommendation: str
    evidence: dict[str, Any] = field(default_factory=dict)
    estimated_effect: float = 0.0
    effect_kind: str = "local"
    effect_basis: str = ""
    variant: str | None = None
