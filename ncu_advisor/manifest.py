"""The run directory's ``manifest.json`` and ``timings.csv`` as typed, validated models (pydantic).

What ``ncu-advisor profile`` writes is known field by field, so unknown keys are errors
(``extra="forbid"``): a typo or a hand edit fails loudly instead of being ignored. Only the environment
sections (``gpu``, ``versions``), filled from whatever the machine reports, accept more keys.

``parse_manifest`` and ``parse_timings`` raise ``RunError`` (exit 2) naming the file and the first problem;
a malformed file (deeply nested JSON, a 5000-digit number, wrong types, NaN or non-positive timings) is
never a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ncu_advisor.errors import RunError

FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 16 << 20  # the largest manifest in examples/ is 40 KB; a run of 500 variants ~2 MB

Status = Literal["ok", "incorrect", "failed", "timeout", "crashed", "skipped", "pending"]
_HINT = "the run was damaged or edited by hand; profile again"
#: The smallest time ``profile`` can record (ms): triton's do_bench times each repetition with CUDA events,
#: whose elapsed time "has a resolution of around 0.5 microseconds" (CUDA Runtime API,
#: cudaEventElapsedTime). A smaller median (1e-300 ms was read as "faster -100%") is not a measurement.
#: The fastest variant recorded in examples/runs took 0.0066 ms.
MIN_TIMING_MS = 0.0005


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Tool(_Strict):
    name: str
    version: str


class GpuInfo(_Open):
    name: str | None = None
    driver: str | None = None
    cc: str | None = None
    sm_count: int | None = None
    count: int | None = None
    memory_bytes: int | None = None


class Versions(_Open):
    ncu: str | None = None
    torch: str | None = None
    triton: str | None = None
    python: str | None = None
    cuda: str | None = None
    ncu_path: str | None = None


class KernelFile(_Strict):
    path: str
    sha256: str | None = None
    copy_name: str = Field(default="kernel.py", alias="copy")


class Options(_Strict):
    clock_control: str | None = None
    cache_control: str | None = None
    timeout_s: float | None = None
    rtol: float | str | None = None  # a number, or "per output dtype"
    reps: int | None = None
    seed: int | None = None
    profile_reference: bool | None = None
    metrics: list[str] = Field(default_factory=list)
    extra_metrics: list[str] = Field(default_factory=list)
    ncu_set: str | None = None
    sections: list[str] = Field(default_factory=list)
    ncu_lock: str | bool | None = None
    timing_only: bool | None = None


class Executor(_Open):
    """Where the variants ran (``collect.executor.Executor.describe``): kind and GPU slots."""

    kind: str | None = None
    gpus: list[dict[str, Any]] = Field(default_factory=list)


class Entry(_Strict):
    """One variant's (or the reference's) outcome, as ``VariantOutcome.manifest_entry`` writes it."""

    name: str | None = None  # the reference only
    status: Status = "pending"
    reason: str | None = None
    parameters: str | None = None
    pinned_config: str | None = None
    median_ms: float | None = None
    ncu_passes: int | None = None
    dir: str | None = None
    logs: dict[str, str] = Field(default_factory=dict)
    gpu: dict[str, Any] | None = None  # name, index, uuid, host the variant ran on
    attempts: int = Field(default=1, ge=0)
    retried_because: list[str] = Field(default_factory=list)
    ncu_lock_wait_s: float | None = None

    @field_validator("median_ms")
    @classmethod
    def _positive_time(cls, value: float | None) -> float | None:
        return None if value is None else _measurable(value)


class Manifest(_Strict):
    """``manifest.json`` of a run directory (``format_version`` 1)."""

    format_version: int = Field(ge=1)
    tool: Tool | None = None
    created: str | None = None
    finished: str | None = None
    gpu: GpuInfo = Field(default_factory=GpuInfo)
    versions: Versions = Field(default_factory=Versions)
    kernel_file: KernelFile | None = None
    options: Options = Field(default_factory=Options)
    commands: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    executor: Executor | None = None
    reference: Entry | None = None
    variants: dict[str, Entry] = Field(default_factory=dict)
    tables: str | None = None
    complete: bool = False

    def missing_variants(self) -> list[str]:
        """Names of the variants the run has not finished (status ``pending``)."""
        return [name for name, entry in self.variants.items() if entry.status == "pending"]

    def entries(self) -> list[tuple[str, Entry]]:
        """(name, entry) of the profiled reference (when it has a folder) and of every variant."""
        reference = self.reference
        head = [(reference.name or "Model", reference)] if reference is not None and reference.dir else []
        return head + list(self.variants.items())


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "the top level"
    return f"{where}: {error['msg']}"


def parse_manifest(path: Path) -> Manifest:
    """Read and validate ``path`` (a ``manifest.json``).

    Raises:
        RunError: unreadable, over ``MAX_MANIFEST_BYTES``, not JSON (including nesting too deep for the
            parser and integers over Python's 4300-digit limit), of a newer ``format_version``, or not
            matching ``Manifest``.
    """
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise RunError(f"manifest.json is over {MAX_MANIFEST_BYTES:,} bytes", path=path, hint=_HINT)
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        if "int_max_str_digits" in str(exc) or "integer string conversion" in str(exc):
            reason = "a number in it has over 4300 digits (no ncu-advisor manifest holds such a number)"
        raise RunError(f"manifest.json is unreadable: {reason}", path=path, hint=_HINT) from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise RunError(
            "manifest.json has no format_version",
            path=path,
            hint="pass a folder written by `ncu-advisor profile`",
        )
    version = data["format_version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise RunError(
            f"run format_version {version!r} is newer than this ncu-advisor reads ({FORMAT_VERSION})",
            path=path,
            hint="upgrade ncu-advisor",
        )
    try:
        return Manifest.model_validate(data, strict=False)
    except ValidationError as exc:
        raise RunError(f"manifest.json is malformed: {_first_error(exc)}", path=path, hint=_HINT) from None
    except RecursionError:
        raise RunError("manifest.json is malformed: nested too deeply", path=path, hint=_HINT) from None


class TimingRow(_Strict):
    """One row of ``timings.csv``: one timing repetition of one variant (milliseconds, median of a rep)."""

    variant: str = Field(min_length=1)
    rep: int = Field(ge=0)
    median_ms: float

    @field_validator("median_ms")
    @classmethod
    def _positive_time(cls, value: float) -> float:
        return _measurable(value)


def _measurable(value: float) -> float:
    """``value`` (ms) when do_bench could have measured it: finite and at least ``MIN_TIMING_MS``."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"median_ms must be a positive, finite time, not {value!r}")
    if value < MIN_TIMING_MS:
        raise ValueError(
            f"median_ms {value!r} is below {MIN_TIMING_MS} ms, the resolution of the CUDA events do_bench "
            "times with: not a measurement"
        )
    return value


def parse_timings(path: Path, records: list[dict[str, Any]]) -> list[TimingRow]:
    """Validate the rows of ``timings.csv`` (as read by pandas).

    Raises:
        RunError: a row is not a variant name, a whole repetition number >= 0 and a positive, finite time
            (NaN, zero and negative timings were judged "faster" by ``compare`` before).
    """
    rows: list[TimingRow] = []
    for number, record in enumerate(records, start=2):  # line 1 is the header
        try:
            rows.append(TimingRow.model_validate(record))
        except ValidationError as exc:
            raise RunError(
                f"timings.csv line {number} is invalid: {_first_error(exc)}", path=path, hint=_HINT
            ) from None
    return rows
