"""The run manifest ``profile`` writes first and fills as variants finish (see ``ncu_advisor.rundir``)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ncu_advisor import __version__, rundir

if TYPE_CHECKING:
    from ncu_advisor.collect.profile.runner import Environment, ProfileOptions
    from ncu_advisor.collect.profile.variants import Variant


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def initial_manifest(
    kernel_file: Path,
    options: ProfileOptions,
    env: Environment,
    metrics: list[str],
    plan: dict[str, dict[str, list[str]]],
    variants: list[Variant],
    reference_name: str,
) -> dict[str, Any]:
    """The manifest written before the first variant runs: every variant ``pending``."""
    return {
        "format_version": rundir.FORMAT_VERSION,
        "tool": {"name": "ncu-advisor", "version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "finished": None,
        "gpu": dict(env.gpu),
        "versions": {
            "ncu": env.ncu_version,
            "torch": None,
            "triton": None,
            "python": None,
            "cuda": None,
            "ncu_path": str(env.ncu),
        },
        "kernel_file": {
            "path": str(kernel_file),
            "sha256": sha256_of(kernel_file),
            "copy": rundir.KERNEL_COPY_NAME,
        },
        "options": {
            "clock_control": options.clock_control,
            "cache_control": options.cache_control,
            "timeout_s": options.timeout_s,
            "rtol": options.rtol if options.rtol is not None else "per output dtype",
            "reps": options.reps,
            "seed": options.seed,
            "profile_reference": options.profile_reference,
            "metrics": metrics,
            "extra_metrics": list(options.extra_metrics),
            "ncu_set": options.ncu_set,
            "sections": list(options.sections),
            "ncu_lock": options.ncu_lock,
            "timing_only": options.timing_only,
        },
        "commands": plan,
        "reference": {"name": reference_name, "status": "pending"},
        "variants": {v.name: {"status": "pending"} for v in variants},
        "tables": None,
        "complete": False,
    }


def absorb_environment(manifest: dict[str, Any], result: dict[str, Any] | None) -> None:
    """Fill the versions and GPU facts a child reported that the manifest does not have yet."""
    env = (result or {}).get("environment") or {}
    for key in ("torch", "triton", "python", "cuda"):
        if env.get(key) and not manifest["versions"].get(key):
            manifest["versions"][key] = env[key]
    gpu = env.get("gpu") or {}
    for key in ("sm_count", "cc", "name", "memory_bytes"):
        if gpu.get(key) is not None and not manifest["gpu"].get(key):
            manifest["gpu"][key] = gpu[key]
