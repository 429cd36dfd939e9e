"""Reading how a variant's processes ended into its ``VariantOutcome`` (statuses, reasons, exit codes).

Raises ``EnvironmentNotReady`` for what no variant can fix: no GPU in the child, no counter permission.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ncu_advisor.collect.profile import child as child_module
from ncu_advisor.collect.profile import ncu as ncu_module
from ncu_advisor.collect.profile.outcome import VariantOutcome
from ncu_advisor.collect.profile.process import ProcessResult
from ncu_advisor.errors import EnvironmentNotReady


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def judge_bench(
    process: ProcessResult,
    result: dict[str, Any] | None,
    log_path: Path,
    timeout_s: float,
    outcome: VariantOutcome,
) -> None:
    """Fill ``outcome`` from the bare child's exit and result; raise when the child saw no GPU."""
    result = result or {}
    outcome.parameters = result.get("parameters", outcome.parameters)
    outcome.timings_ms = [float(t) for t in result.get("timings_ms") or []]
    outcome.correctness = result.get("correctness")
    outcome.triton_kernels = list(result.get("triton_kernels") or [])
    outcome.pinned_config = result.get("pinned_config")
    if process.timed_out:
        if result.get("status") in ("crashed", "failed") and result.get(
            "reason"
        ):  # failed, then hung on exit
            outcome.status = result["status"]
            outcome.reason = f"{result.get('reason')} (then hung on exit; killed); log {log_path}"
            return
        outcome.status = "timeout"
        outcome.reason = (
            f"ran past the {timeout_s:g} s timeout (step: {process.last_step or 'start'}); log {log_path}"
        )
        return
    if process.returncode == child_module.EXIT_NO_GPU or result.get("status") == "no-gpu":
        reason = result.get("reason") or "torch.cuda.is_available() is False"
        raise EnvironmentNotReady(
            f"the variant process cannot use the GPU: {reason}",
            path=log_path,
            hint="install a CUDA build of torch (and triton) for that python",
        )
    if process.returncode == 0 and result.get("status") in ("ok", "incorrect"):
        outcome.status = result["status"]
        outcome.reason = result.get("reason")
        return
    if process.returncode is not None and process.returncode < 0:
        outcome.status = "crashed"
        outcome.reason = f"killed by signal {-process.returncode} (step: {process.last_step}); log {log_path}"
        return
    status = result.get("status")
    outcome.status = (
        "crashed" if process.returncode == child_module.EXIT_CUDA_CRASH or status == "crashed" else "failed"
    )
    reason = result.get("reason") or _tail(log_path) or f"exit code {process.returncode}"
    outcome.reason = f"{reason} (exit {process.returncode}); log {log_path}"


def judge_ncu(
    process: ProcessResult, log_path: Path, report: Path, timeout_s: float, outcome: VariantOutcome
) -> None:
    """Fill ``outcome`` from the ncu run; raise when the counters are not permitted."""
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.is_file() else ""
    log = ncu_module.parse_ncu_log(text)
    if log.passes:
        outcome.ncu_passes = max(p for _, p in log.passes)
    if log.permission_denied:
        raise EnvironmentNotReady(
            "ncu has no permission to read the GPU performance counters (ERR_NVGPUCTRPERM)",
            path=log_path,
            hint=ncu_module.PERMISSION_HINT,
        )
    if process.timed_out:
        outcome.status = "timeout"
        outcome.reason = f"ncu ran past the {timeout_s:g} s timeout; log {log_path}"
        return
    message = log.error_message()
    if any("LaunchFailed" in e or "illegal" in e.lower() for e in log.errors):
        outcome.status = "crashed"
        outcome.reason = f"ncu: {message}; log {log_path}"
    elif log.errors or process.returncode != 0:
        outcome.status = "failed"
        outcome.reason = (
            f"ncu: {message or _tail(log_path) or 'exit code ' + str(process.returncode)}; log {log_path}"
        )
    elif log.no_kernels or not report.is_file():
        outcome.status = "failed"
        outcome.reason = (
            f"ncu profiled no kernels (nothing ran inside the NVTX range "
            f"'{ncu_module.NVTX_RANGE}'); log {log_path}"
        )
