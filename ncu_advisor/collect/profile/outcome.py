"""What happened to one variant: its status, reason, timings, the GPU it ran on (its manifest entry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def median(values: list[float]) -> float | None:
    """Median of a list (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass
class VariantOutcome:
    """What happened to one variant (also its manifest entry, via ``manifest_entry``)."""

    name: str
    status: str = "pending"
    reason: str | None = None
    parameters: str | None = None
    timings_ms: list[float] = field(default_factory=list)
    correctness: dict[str, Any] | None = None
    triton_kernels: list[dict[str, Any]] = field(default_factory=list)
    ncu_passes: int | None = None
    pinned_config: str | None = None
    dir: str | None = None
    logs: dict[str, str] = field(default_factory=dict)
    gpu: dict[str, Any] | None = None
    attempts: int = 1
    retried_because: list[str] = field(default_factory=list)
    ncu_lock_wait_s: float | None = None

    def manifest_entry(self) -> dict[str, Any]:
        """The variant's entry in ``manifest.json`` (``gpu``: name, index, uuid, host it ran on)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "parameters": self.parameters,
            "pinned_config": self.pinned_config,
            "median_ms": median(self.timings_ms),
            "ncu_passes": self.ncu_passes,
            "dir": self.dir,
            "logs": self.logs,
            "gpu": self.gpu,
            "attempts": self.attempts,
            "retried_because": self.retried_because,
            "ncu_lock_wait_s": self.ncu_lock_wait_s,
        }
