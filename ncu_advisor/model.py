"""Frozen value types shared by the rules engine, the profiler and the renderers.

The pivot of the whole tool is not here: it is the tidy pandas table (see ``ncu_advisor.table``).
These types describe what is derived from it.
"""

from __future__ import annotations

from collections.abc import Mapping
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
class LaunchConfig:
    """One launch configuration of one Triton kernel: constexpr values, ``num_warps``, ``num_stages``.

    The one config value type of the package (proposals, tune trials, tune reports). ``params`` may be
    given as a dict of ``tl.constexpr`` values (``{"BLOCK_M": 64, ...}``); it is kept as a sorted tuple of
    ``(name, value)`` pairs so that configurations are hashable and compare equal whatever the key
    order. ``param_dict`` gives it back as a dict.
    """

    params: tuple[tuple[str, int], ...]
    num_warps: int
    num_stages: int

    def __post_init__(self) -> None:
        pairs = self.params.items() if isinstance(self.params, Mapping) else self.params
        object.__setattr__(self, "params", tuple(sorted((str(k), int(v)) for k, v in pairs)))
        object.__setattr__(self, "num_warps", int(self.num_warps))
        object.__setattr__(self, "num_stages", int(self.num_stages))

    @classmethod
    def make(cls, params: Mapping[str, int], num_warps: int, num_stages: int) -> LaunchConfig:
        return cls(tuple(params.items()), num_warps, num_stages)

    @property
    def param_dict(self) -> dict[str, int]:
        return dict(self.params)

    def replace(
        self,
        params: Mapping[str, int] | None = None,
        num_warps: int | None = None,
        num_stages: int | None = None,
    ) -> LaunchConfig:
        """This configuration with ``params`` merged in and warps/stages replaced where given."""
        merged = {**self.param_dict, **(params or {})}
        return LaunchConfig.make(
            merged,
            num_warps if num_warps is not None else self.num_warps,
            num_stages if num_stages is not None else self.num_stages,
        )

    def label(self) -> str:
        """Short text such as ``BLOCK_M=64 BLOCK_N=32 w4 s2``."""
        parts = [f"{k}={v}" for k, v in self.params]
        return " ".join(parts + [f"w{self.num_warps}", f"s{self.num_stages}"])

    def as_dict(self) -> dict[str, Any]:
        return {"params": self.param_dict, "num_warps": self.num_warps, "num_stages": self.num_stages}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LaunchConfig:
        """Inverse of ``as_dict``. Raises KeyError, TypeError or ValueError on a malformed dict."""
        return cls.make(dict(data.get("params") or {}), int(data["num_warps"]), int(data["num_stages"]))

    def override(self, kernel: str) -> dict[str, Any]:
        """The tune child's ``--override`` payload (see ``ncu_advisor.collect.tune.pin``)."""
        return {"kernel": kernel, **self.as_dict()}

    def differs_in(self, other: LaunchConfig) -> int:
        """How many of params/num_warps/num_stages differ from ``other``."""
        mine, theirs = self.param_dict, other.param_dict
        changed = sum(1 for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        return changed + (self.num_warps != other.num_warps) + (self.num_stages != other.num_stages)

    def as_triton_config(self) -> str:
        """The ``triton.Config(...)`` line for this configuration."""
        inner = ", ".join(f"'{k}': {v}" for k, v in self.params)
        return f"triton.Config({{{inner}}}, num_warps={self.num_warps}, num_stages={self.num_stages})"


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

    @property
    def config(self) -> LaunchConfig:
        """The proposed configuration as the package's one config type."""
        return LaunchConfig.make(self.params, self.num_warps, self.num_stages)

    def as_triton_config(self) -> str:
        inner = ", ".join(f"'{k}': {v}" for k, v in self.params.items())
        return f"triton.Config({{{inner}}}, num_warps={self.num_warps}, num_stages={self.num_stages})"


NO_ESTIMATE = "none"  # Finding.effect_kind when the estimated_effect expression gave inf or NaN


@dataclass(frozen=True)
class Finding:
    """A rule that fired on one kernel launch.

    ``estimated_effect`` is the estimated fraction of the kernel's time that acting on the finding
    could save (0..1); ``effect_kind`` says whether it is ``local`` (this kernel) or ``global``, or is
    ``none`` (``NO_ESTIMATE``: the rule's expression gave inf or NaN; the effect is then 0 and ranks last).
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

    @property
    def effect_text(self) -> str:
        """``35% local`` (the effect and its kind), or ``no estimate`` (``effect_kind`` ``none``)."""
        if self.effect_kind == NO_ESTIMATE:
            return "no estimate"
        return f"{self.estimated_effect:.0%} {self.effect_kind}"
