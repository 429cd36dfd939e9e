"""Everything about the ``ncu`` executable: finding it, its version, the command line, reading its log.

Defaults and why:

- ``--clock-control none``: the GPU runs at the clocks it runs at outside the profiler, as during the
  ``do_bench`` timings; ncu's own default (``base``) locks lower clocks, which changes throughput
  percentages (one kernel read sm__throughput 40.2% with ``base`` against 30.9% with ``none``).
- ``--cache-control all`` (ncu's default): caches are flushed before every replay pass, so every pass
  starts alike and L2 hit rates are cold-cache figures.

Both are recorded in the run manifest; never compare runs made with different values.
The oldest supported Nsight Compute is 2023.1 (``MIN_NCU_VERSION``): the NVTX push/pop filtering
(``--nvtx-include "name/"``) and the ``launch__occupancy_limit_*`` metrics the rules read behave as
documented from that release on; older versions are refused with exit code 3.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ncu_advisor.errors import EnvironmentNotReady

MIN_NCU_VERSION: tuple[int, int] = (2023, 1)
CLOCK_CONTROLS = ("none", "base")
CACHE_CONTROLS = ("all", "none")
NVTX_RANGE = "ncu_advisor"

#: Used only while ``ncu_advisor.metrics`` (the metric catalogue) is not available.
FALLBACK_CORE_METRICS: tuple[str, ...] = (
    "gpu__time_duration.sum",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
    "lts__throughput.avg.pct_of_peak_sustained_elapsed",
    "l1tex__throughput.avg.pct_of_peak_sustained_active",
    "lts__t_sector_hit_rate.pct",
    "sm__warps_active.avg.pct_of_peak_sustained_active",
    "sm__maximum_warps_per_active_cycle_pct",
    "launch__grid_size",
    "launch__block_size",
    "launch__thread_count",
    "launch__registers_per_thread",
    "launch__occupancy_limit_registers",
    "launch__occupancy_limit_shared_mem",
    "launch__occupancy_limit_warps",
    "launch__occupancy_limit_blocks",
    "launch__waves_per_multiprocessor",
    "launch__shared_mem_per_block_dynamic",
    "launch__shared_mem_per_block_static",
    "l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum",
    "l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum",
    "dram__bytes_read.sum",
    "dram__bytes_write.sum",
    "sm__cycles_elapsed.avg.per_second",
    "profiler__replayer_passes",
)


def ncu_fallback_locations() -> list[str]:
    """Where ncu is looked for when it is not on PATH (newest Nsight Compute install first)."""
    return ["/usr/local/cuda/bin/ncu", *sorted(glob.glob("/opt/nvidia/nsight-compute/*/ncu"), reverse=True)]


def find_ncu(path_env: str | None = None) -> Path:
    """Locate ``ncu``: on PATH, then ``/usr/local/cuda/bin``, then ``/opt/nvidia/nsight-compute/*``.

    Raises:
        EnvironmentNotReady: no ncu found.
    """
    found = shutil.which("ncu", path=path_env if path_env is not None else os.environ.get("PATH"))
    if found:
        return Path(found)
    for candidate in ncu_fallback_locations():
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    raise EnvironmentNotReady(
        "ncu (Nsight Compute) not found on PATH, in /usr/local/cuda/bin or /opt/nvidia/nsight-compute",
        hint="install Nsight Compute >= 2023.1 or add its folder to PATH",
    )


_VERSION_RE = re.compile(r"Version\s+(\d{4})\.(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_ncu_version(text: str) -> tuple[int, ...] | None:
    """Read the version out of ``ncu --version`` output (``Version 2025.3.1.0 (build ...)``)."""
    match = _VERSION_RE.search(text)
    if match is None:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


def ncu_version(ncu: Path, timeout_s: float = 60) -> tuple[tuple[int, ...], str]:
    """Run ``ncu --version``; return the parsed version and its full version line.

    Raises:
        EnvironmentNotReady: ncu does not run, prints no version, or is older than ``MIN_NCU_VERSION``.
    """
    try:
        proc = subprocess.run([str(ncu), "--version"], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentNotReady(
            f"`{ncu} --version` failed: {exc}", hint="check the Nsight Compute install"
        ) from None
    version = parse_ncu_version(proc.stdout + proc.stderr)
    if proc.returncode != 0 or version is None:
        raise EnvironmentNotReady(
            f"`{ncu} --version` printed no version (exit {proc.returncode})",
            hint="check the Nsight Compute install",
        )
    if version[:2] < MIN_NCU_VERSION:
        have = ".".join(map(str, version))
        need = ".".join(map(str, MIN_NCU_VERSION))
        raise EnvironmentNotReady(
            f"Nsight Compute {have} is too old (need >= {need})",
            path=ncu,
            hint="install a newer Nsight Compute or put it first on PATH",
        )
    line = next((ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if "Version" in ln), "")
    return version, line.replace("Version", "").strip()


def is_ncu_metric(name: str) -> bool:
    """True for names ncu can collect (``unit__counter...``); False for columns such as ``n_spills`` and for
    section-only values (``derived__*``, which ``--metrics`` rejects)."""
    return "__" in name and not name.startswith(("_", "derived__"))


def metric_set(rules_dir: Path | None = None) -> list[str]:
    """The metrics to collect: the core set plus what the active rules require, ncu metrics only.

    Uses ``ncu_advisor.metrics.CORE_METRICS`` and ``ncu_advisor.rules.required_metrics`` when those
    modules are available, ``FALLBACK_CORE_METRICS`` otherwise. ``profiler__replayer_passes`` is always in.
    """
    names: list[str] = []
    try:
        from ncu_advisor.metrics import CORE_METRICS

        names += list(CORE_METRICS)
    except ImportError:
        names += list(FALLBACK_CORE_METRICS)
    try:
        from ncu_advisor.rules import load_rules, required_metrics

        rules = load_rules(rules_dir) if rules_dir is not None else load_rules()
        names += list(required_metrics(rules))
    except ImportError:
        pass
    try:
        from ncu_advisor.analysis.roofline import ROOFLINE_METRICS

        names += list(ROOFLINE_METRICS)
    except ImportError:
        pass
    names.append("profiler__replayer_passes")
    return [n for n in dict.fromkeys(names) if is_ncu_metric(n)]


_SECTION_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def check_section_name(kind: str, name: str) -> str:
    """Return ``name`` when it can be an ncu set or section identifier (letters, digits, ``_.-``).

    Raises:
        ValueError: anything else (ncu itself says which names exist: ``ncu --list-sets``,
            ``ncu --list-sections``).
    """
    if not _SECTION_NAME_RE.match(name):
        raise ValueError(f"{kind} {name!r} is not an ncu {kind} identifier (see `ncu --list-{kind}s`)")
    return name


def split_metric_list(text: str) -> list[str]:
    """Split a ``--metrics a,b,c`` value into names (empty items dropped, order kept, duplicates removed).

    Raises:
        ValueError: a name holds whitespace.
    """
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if any(c.isspace() for c in m)]
    if bad:
        raise ValueError(f"metric names cannot hold spaces: {', '.join(map(repr, bad))}")
    return list(dict.fromkeys(names))


def build_ncu_command(
    ncu: Path | str,
    *,
    report_base: Path,
    target: list[str],
    metrics: list[str],
    clock_control: str = "none",
    cache_control: str = "all",
    ncu_set: str | None = None,
    sections: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """Build the ncu argument list that profiles the launches inside the ``ncu_advisor`` NVTX range.

    ncu collects the union of ``--set``, every ``--section`` and ``--metrics``; without ``--set`` or
    ``--section`` it collects only ``--metrics`` (no default set, fewer replay passes).

    Args:
        ncu: the ncu executable.
        report_base: the report path without ``.ncu-rep`` (ncu appends it).
        target: the command ncu starts (python -m ncu_advisor.collect.profile.child ... --mode ncu).
        metrics: the metrics to collect (the rules' metrics and the user's ``--metrics``).
        clock_control: ``none`` or ``base``.
        cache_control: ``all`` or ``none``.
        ncu_set: ncu ``--set NAME`` (e.g. ``full``), passed through.
        sections: ncu ``--section NAME`` values, passed through in order.

    Raises:
        ValueError: an unknown clock or cache control, or a set/section name that is not an identifier.
    """
    if clock_control not in CLOCK_CONTROLS:
        raise ValueError(f"clock_control must be one of {CLOCK_CONTROLS}")
    if cache_control not in CACHE_CONTROLS:
        raise ValueError(f"cache_control must be one of {CACHE_CONTROLS}")
    collect: list[str] = []
    if ncu_set is not None:
        collect += ["--set", check_section_name("set", ncu_set)]
    for section in sections:
        collect += ["--section", check_section_name("section", section)]
    return [
        str(ncu),
        "--clock-control",
        clock_control,
        "--cache-control",
        cache_control,
        "--nvtx",
        "--nvtx-include",
        f"{NVTX_RANGE}/",
        *collect,
        "--metrics",
        ",".join(metrics),
        "--target-processes",
        "all",
        "-o",
        str(report_base),
        "-f",
        *target,
    ]


@dataclass
class NcuLog:
    """What an ncu log says.

    Attributes:
        errors: the ``==ERROR==`` lines, prefix removed.
        warnings: the ``==WARNING==`` lines, prefix removed.
        no_kernels: ncu said "No kernels were profiled".
        permission_denied: ncu printed ``ERR_NVGPUCTRPERM`` (no access to the GPU counters).
        passes: replay passes per profiled kernel (kernel name, passes), from ``==PROF== Profiling`` lines.
        app_exit_code: the code ncu said the application returned, if it said so.
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    no_kernels: bool = False
    permission_denied: bool = False
    passes: list[tuple[str, int]] = field(default_factory=list)
    app_exit_code: int | None = None

    def error_message(self) -> str:
        """One line summarising the errors (empty when there were none)."""
        if self.permission_denied:
            return "no permission to read the GPU performance counters (ERR_NVGPUCTRPERM)"
        useful = [e for e in self.errors if not e.startswith("An error was reported by the driver")]
        return "; ".join(useful or self.errors)


_PROFILING_RE = re.compile(r'==PROF== Profiling "(?P<kernel>[^"]*)" - \d+: .*?(?P<passes>\d+) pass')
_APP_RC_RE = re.compile(r"The application returned an error code \((-?\d+)\)")


def parse_ncu_log(text: str) -> NcuLog:
    """Read errors, warnings, replay passes and the permission problem out of ncu's output."""
    log = NcuLog()
    for line in text.splitlines():
        if line.startswith("==ERROR=="):
            message = line[len("==ERROR==") :].strip()
            log.errors.append(message)
            match = _APP_RC_RE.search(message)
            if match:
                log.app_exit_code = int(match.group(1))
        elif line.startswith("==WARNING=="):
            message = line[len("==WARNING==") :].strip()
            log.warnings.append(message)
            if "No kernels were profiled" in message:
                log.no_kernels = True
        match = _PROFILING_RE.search(line)
        if match:
            log.passes.append((match.group("kernel"), int(match.group("passes"))))
        if "ERR_NVGPUCTRPERM" in line:
            log.permission_denied = True
    return log


PERMISSION_HINT = (
    "allow profiling for all users (sudo modprobe nvidia NVreg_RestrictProfilingToAdminUsers=0, or "
    "options nvidia NVreg_RestrictProfilingToAdminUsers=0 in /etc/modprobe.d, then reboot) or run as root; "
    "see https://developer.nvidia.com/ERR_NVGPUCTRPERM"
)
