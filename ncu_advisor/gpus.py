"""The GPU catalogue: datasheet figures of the GPUs ncu-advisor knows (data in ``gpus.yaml``).

``spec_for`` matches a report's device attributes to an entry; a GPU not in the catalogue gets a spec
built from the ``device__attribute_*`` metrics of the report, and a warning saying so.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ncu_advisor.errors import InputError

CATALOGUE_FILE = "ncu_advisor/gpus.yaml"

_ARCHITECTURE_BY_MAJOR = {6: "Pascal", 7: "Volta", 8: "Ampere", 9: "Hopper", 10: "Blackwell", 12: "Blackwell"}


class GpuSpec(BaseModel):
    """One GPU's figures. Tensor TFLOPS are dense with FP32 accumulate; None where the GPU lacks the unit.

    Attributes:
        key: catalogue key (``rtx4090``); ``unknown:<display name>`` for a spec built from a report.
        name: short name as the prompt block prints it (``4090``, ``H100 SXM``).
        source: where the figures come from.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    name: str
    architecture: str
    cc: str
    sm_count: int
    mem_bw_gbs: float | None
    tf32_tflops: float | None
    bf16_tflops: float | None
    fp16_tflops: float | None
    fp32_tflops: float | None
    max_regs_per_thread: int
    max_threads_per_block: int
    max_threads_per_sm: int
    warp_size: int
    max_warps_per_sm: int
    regs_per_sm: int
    smem_per_sm_kb: float
    smem_per_block_kb: float
    l2_mb: float
    match: list[str]
    source: str
    #: Measured copy bandwidth (bytes read + written per second, in GB/s) where one was measured: the
    #: practical DRAM roof. None: use ``mem_bw_gbs`` (the datasheet figure).
    copy_bw_gbs: float | None = None


@functools.cache
def catalogue() -> dict[str, GpuSpec]:
    """All GPU entries by key, in file order.

    Raises:
        InputError: ``gpus.yaml`` is malformed (a typo in a field name fails here).
    """
    text = resources.files("ncu_advisor").joinpath("gpus.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise InputError("the GPU catalogue is not a mapping of key -> spec", path=CATALOGUE_FILE)
    specs: dict[str, GpuSpec] = {}
    for key, fields in raw.items():
        try:
            specs[key] = GpuSpec(key=key, **fields)
        except (TypeError, ValidationError) as exc:
            first = str(exc).splitlines()[0:3]
            raise InputError(
                f"GPU entry {key!r} is invalid: {' '.join(first)}", path=CATALOGUE_FILE
            ) from None
    return specs


def _row_of(table_or_row: pd.DataFrame | pd.Series | dict[str, Any]) -> dict[str, Any]:
    if isinstance(table_or_row, pd.DataFrame):
        if table_or_row.empty:
            return {}
        return {str(k): v for k, v in table_or_row.iloc[0].to_dict().items()}
    if isinstance(table_or_row, pd.Series):
        return {str(k): v for k, v in table_or_row.to_dict().items()}
    return dict(table_or_row)


def _number(row: dict[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None or isinstance(value, str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _row_cc(row: dict[str, Any]) -> str | None:
    cc = row.get("cc")
    if isinstance(cc, str) and cc:
        return cc
    major = _number(row, "device__attribute_compute_capability_major")
    minor = _number(row, "device__attribute_compute_capability_minor")
    if major is None or minor is None:
        return None
    return f"{int(major)}.{int(minor)}"


def _match(display_name: str, cc: str | None, sm_count: float | None) -> GpuSpec | None:
    """The catalogue entry for a device: name substring and CC agree, and the SM count when known."""
    lowered = display_name.lower()
    best: tuple[int, GpuSpec] | None = None
    for spec in catalogue().values():
        matched = [m for m in spec.match if m.lower() in lowered]
        if not matched:
            continue
        if cc is not None and spec.cc != cc:
            continue
        # Same name, other SM count: another variant (SXM vs PCIe, a cut-down part): not this entry.
        if sm_count is not None and int(sm_count) != spec.sm_count:
            continue
        score = max(len(m) for m in matched)
        if best is None or score > best[0]:
            best = (score, spec)
    return best[1] if best else None


def spec_from_attributes(row: dict[str, Any]) -> GpuSpec:
    """A spec built from a report's ``device__attribute_*`` metrics (TFLOPS unknown: None)."""
    display = row.get("device__attribute_display_name") or row.get("gpu") or "unknown GPU"
    cc = _row_cc(row) or "0.0"
    major = int(cc.split(".")[0]) if cc.split(".")[0].isdigit() else 0
    architecture = _ARCHITECTURE_BY_MAJOR.get(major, "unknown")
    if cc == "7.5":
        architecture = "Turing"
    elif cc == "8.9":
        architecture = "Ada Lovelace"

    def attr(name: str, default: float = 0.0) -> float:
        value = _number(row, f"device__attribute_{name}")
        return default if value is None else value

    mem_clock_khz = _number(row, "device__attribute_max_mem_frequency_khz") or _number(
        row, "device__attribute_memory_clock_rate"
    )
    bus_width_bits = _number(row, "device__attribute_global_memory_bus_width")
    # Double data rate: bytes/s = 2 x memory clock x bus width / 8 (gives 1008 GB/s on the RTX 4090 report).
    bandwidth = (
        2 * mem_clock_khz * 1e3 * bus_width_bits / 8 / 1e9 if mem_clock_khz and bus_width_bits else None
    )
    return GpuSpec(
        key=f"unknown:{display}",
        name=str(display),
        architecture=architecture,
        cc=cc,
        sm_count=int(attr("multiprocessor_count")),
        mem_bw_gbs=round(bandwidth, 1) if bandwidth else None,
        tf32_tflops=None,
        bf16_tflops=None,
        fp16_tflops=None,
        fp32_tflops=None,
        max_regs_per_thread=int(attr("max_registers_per_thread", 255)),
        max_threads_per_block=int(attr("max_threads_per_block", 1024)),
        max_threads_per_sm=int(attr("max_threads_per_multiprocessor")),
        warp_size=int(attr("warp_size", 32)),
        max_warps_per_sm=int(attr("max_warps_per_multiprocessor")),
        regs_per_sm=int(attr("max_registers_per_multiprocessor")),
        smem_per_sm_kb=attr("max_shared_memory_per_multiprocessor") / 1024,
        smem_per_block_kb=attr("max_shared_memory_per_block_optin") / 1024,
        l2_mb=attr("l2_cache_size") / (1024 * 1024),
        match=[],
        source="built from the report's device__attribute_* metrics (not in the GPU catalogue)",
    )


def spec_for(table_or_row: pd.DataFrame | pd.Series | dict[str, Any]) -> tuple[GpuSpec, list[str]]:
    """The GPU spec for a table (its first row) or one row, and warnings.

    Matches ``device__attribute_display_name`` (or the ``gpu`` column), the compute capability and the
    SM count against the catalogue. An unknown GPU gets ``spec_from_attributes`` and a warning; a table
    holding several GPUs is matched on its first row, with a warning.
    """
    warnings: list[str] = []
    if isinstance(table_or_row, pd.DataFrame) and "gpu" in table_or_row.columns:
        names = sorted({str(g) for g in table_or_row["gpu"].dropna().unique()})
        if len(names) > 1:
            warnings.append(f"the table holds several GPUs ({', '.join(names)}); using the first row's GPU")
    row = _row_of(table_or_row)
    display = row.get("device__attribute_display_name") or row.get("gpu")
    if not isinstance(display, str) or not display:
        spec = spec_from_attributes(row)
        warnings.append(
            "the report names no GPU (no device__attribute_display_name): "
            "using a spec built from its attributes"
        )
        return spec, warnings
    matched = _match(display, _row_cc(row), _number(row, "device__attribute_multiprocessor_count"))
    if matched is not None:
        return matched, warnings
    built = spec_from_attributes(row)
    warnings.append(
        f"GPU {display!r} (CC {built.cc}, {built.sm_count} SMs) is not in the GPU catalogue: "
        "using figures built "
        "from the report's device attributes (no TFLOPS); add it to ncu_advisor/gpus.yaml"
    )
    return built, warnings


_NUMERIC_FIELDS = (
    "sm_count",
    "mem_bw_gbs",
    "copy_bw_gbs",
    "tf32_tflops",
    "bf16_tflops",
    "fp16_tflops",
    "fp32_tflops",
    "max_regs_per_thread",
    "max_threads_per_block",
    "max_threads_per_sm",
    "warp_size",
    "max_warps_per_sm",
    "regs_per_sm",
    "smem_per_sm_kb",
    "smem_per_block_kb",
    "l2_mb",
)


def spec_fields(spec: GpuSpec) -> dict[str, float]:
    """Numeric fields as ``gpu_<field>`` names for rule expressions (None or 0 -> NaN: a spec built from a
    report without the attribute holds 0, and no GPU has 0 SMs or 0 bytes of L2; a rule reading it is then
    skipped as missing its input, never failed by a division by zero); ``gpu_cc`` too."""
    fields: dict[str, float] = {}
    for name in _NUMERIC_FIELDS:
        value = getattr(spec, name)
        fields[f"gpu_{name}"] = float("nan") if value is None or value == 0 else float(value)
    fields["gpu_cc"] = float(spec.cc)
    return fields


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:g}"


def _quantity(value: float | int | None, unit: str = "") -> str:
    """A spec figure as the prompt shows it; 0 or None (a spec built from a report without the attribute)
    reads ``unknown``, never a made-up 0 with a unit."""
    if value is None or value == 0:
        return "unknown"
    return f"{_fmt(value)}{' ' + unit if unit else ''}"


def prompt_block(spec: GpuSpec) -> str:
    """The "# Target GPU" block in seed 001's format (ends without a trailing newline); figures the spec
    does not know read ``unknown``."""
    lines = [
        "# Target GPU",
        f"GPU Name: {spec.name}",
        f"Architecture: {spec.architecture}",
        f"• Compute Capability: {'unknown' if spec.cc in ('0.0', '0', '') else spec.cc}",
        f"• Number of SMs: {_quantity(spec.sm_count)}",
        f"• Memory Bandwidth: {_quantity(spec.mem_bw_gbs, 'GB/s')}",
        f"• TF32 Tensor Core TFLOPS: {_quantity(spec.tf32_tflops)} with dense",
        f"• BFLOAT16 Tensor Core TFLOPS: {_quantity(spec.bf16_tflops)} with dense",
        f"• FP16 Tensor Core TFLOPS: {_quantity(spec.fp16_tflops)} with dense",
        f"• Maximum number of registers per thread: {_quantity(spec.max_regs_per_thread)}",
        f"• Maximum threads per block: {_quantity(spec.max_threads_per_block)}",
        f"• Maximum threads per SM: {_quantity(spec.max_threads_per_sm)}",
        f"• Warp size: {_quantity(spec.warp_size)}",
        f"• Maximum concurrent warps per SM: {_quantity(spec.max_warps_per_sm)}",
        f"• Shared memory capacity per SM: {_quantity(spec.smem_per_sm_kb, 'KB')}",
        f"• Maximum shared memory per thread block: {_quantity(spec.smem_per_block_kb, 'KB')}",
        f"• L2 cache (global, all SM shared): {_quantity(spec.l2_mb, 'MB')}",
    ]
    return "\n".join(lines)
