"""A roofline headline per launch: achieved DRAM bytes/s against the copy bandwidth, and the busy share of
the compute pipe the kernel uses (tensor cores for ``tl.dot`` kernels, the FP32 FMA pipe otherwise).

Pure: a function of the table (base units, one row per launch), the GPU spec and, optionally, whether the
kernel's source calls ``tl.dot``. Sources of the roofs:

* bandwidth: the GPU catalogue's measured copy bandwidth (``copy_bw_gbs``: bytes read + written per second;
  H200 4.27 TB/s and H100 3.02 TB/s measured with a device-to-device copy, ../shared/NCU_NOTES.md), else the
  datasheet figure (``mem_bw_gbs``), else the bandwidth the report's device attributes give.
* compute: the pipe's own utilisation metric (``sm__pipe_tensor_cycles_active`` or
  ``sm__inst_executed_pipe_fma``, % of the pipe's peak), which is the achieved fraction of that pipe's
  FLOP/s roof; the FLOP/s figure is that fraction times the catalogue peak (FP32, or BF16 dense for tensor
  cores; a TF32 kernel's roof is half of that, so its FLOP/s figure is an upper estimate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Metrics the roofline reads; ``profile`` collects them with the rules' metrics.
ROOFLINE_METRICS = (
    "dram__bytes_read.sum",
    "dram__bytes_write.sum",
    "gpu__time_duration.sum",
    "sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_elapsed",
    "sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_elapsed",
)
#: Within this fraction of its roof a launch is "at the roof": launch-parameter advice is withheld (issue 13:
#: "within ~10% of its roof").
AT_ROOF = 0.9
#: Within this fraction occupancy and grid-shape warnings are stated as info (analysis.advice): Nsight
#: Compute's SOLBottleneck rule calls a unit at >= 80% of its peak "at the roof".
NEAR_ROOF = 0.8
def roof_percent(fraction: float) -> str:
    """A roof fraction as a percentage, with one decimal within a point of ``AT_ROOF`` (89.6% and 90.4%
    would both read "90%", on either side of the edge where advice is withheld)."""
    return f"{fraction:.1%}" if abs(fraction - AT_ROOF) < 0.01 else f"{fraction:.0%}"


#: A tensor pipe busier than this (percent) marks a tensor-core kernel when the source is unknown.
_TENSOR_IN_USE_PCT = 1.0


@dataclass(frozen=True)
class Roofline:
    """One launch against its roofs. Fractions are 0..1 (None: not measured)."""

    bytes_per_s: float | None
    bandwidth_roof: float | None
    bandwidth_source: str
    memory_fraction: float | None
    pipe: str
    pipe_fraction: float | None
    flops_per_s: float | None
    flops_roof: float | None

    @property
    def fraction(self) -> float | None:
        """The larger of the memory and the compute fraction: how close the launch is to its roof."""
        known = [f for f in (self.memory_fraction, self.pipe_fraction) if f is not None]
        return max(known) if known else None

    @property
    def bound(self) -> str | None:
        """``memory`` or ``compute``: which roof is the closer one."""
        if self.fraction is None:
            return None
        return "memory" if (self.memory_fraction or 0.0) >= (self.pipe_fraction or 0.0) else "compute"

    @property
    def at_roof(self) -> bool:
        return self.fraction is not None and self.fraction >= AT_ROOF

    def headline(self) -> str:
        """One line, e.g. ``roofline: DRAM 3.91 TB/s = 91% of 4.27 TB/s (measured copy); FP32 pipe 12%``."""
        parts: list[str] = []
        if self.bytes_per_s is not None and self.bandwidth_roof and self.memory_fraction is not None:
            parts.append(
                f"DRAM {self.bytes_per_s / 1e12:.2f} TB/s = {roof_percent(self.memory_fraction)} of "
                f"{self.bandwidth_roof / 1e12:.2f} TB/s ({self.bandwidth_source})"
            )
        elif self.bytes_per_s is not None:
            parts.append(f"DRAM {self.bytes_per_s / 1e12:.2f} TB/s (no bandwidth roof for this GPU)")
        if self.pipe_fraction is not None:
            flops = ""
            if self.flops_per_s is not None and self.flops_roof:
                flops = f", {self.flops_per_s / 1e12:.1f} of {self.flops_roof / 1e12:.0f} TFLOP/s"
            parts.append(f"{self.pipe} pipe {self.pipe_fraction:.0%} busy{flops}")
        text = "; ".join(parts) if parts else "not measured"
        if self.at_roof:
            text += f" -> at {roof_percent(self.fraction or 0.0)} of its {self.bound} roof"
        return f"roofline: {text}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (units: bytes/s, FLOP/s, fractions 0..1)."""
        return {
            "bytes_per_s": self.bytes_per_s,
            "bandwidth_roof": self.bandwidth_roof,
            "bandwidth_source": self.bandwidth_source,
            "memory_fraction": self.memory_fraction,
            "pipe": self.pipe,
            "pipe_fraction": self.pipe_fraction,
            "flops_per_s": self.flops_per_s,
            "flops_roof": self.flops_roof,
            "fraction": self.fraction,
            "bound": self.bound,
            "at_roof": self.at_roof,
            "headline": self.headline(),
        }


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    from ncu_advisor import metrics  # noqa: PLC0415 - the catalogue resolves fallback names

    series, used = metrics.column(table, name)
    if used is None and name not in table.columns:
        return np.full(len(table), np.nan)
    values: np.ndarray = pd.to_numeric(series, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return values


def _bandwidth(spec: Any) -> tuple[float | None, str]:
    """The bandwidth roof in bytes/s and where it comes from."""
    if spec is None:
        return None, "unknown GPU"
    copy = getattr(spec, "copy_bw_gbs", None)
    if copy:
        return float(copy) * 1e9, "measured copy"
    datasheet = getattr(spec, "mem_bw_gbs", None)
    if datasheet:
        return float(datasheet) * 1e9, "datasheet"
    return None, "unknown"


def _gpu_spec(table: pd.DataFrame, gpu: Any) -> Any:
    if gpu is not None and hasattr(gpu, "mem_bw_gbs"):
        return gpu
    if not len(table):
        return None
    from ncu_advisor import gpus  # noqa: PLC0415
    from ncu_advisor.errors import InputError  # noqa: PLC0415

    try:
        spec, _warnings = gpus.spec_for(table)
    except InputError:
        return None
    return spec


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def rooflines(
    table: pd.DataFrame, gpu: Any = None, uses_dot: list[bool | None] | None = None
) -> list[Roofline | None]:
    """The roofline of every row (None where neither DRAM bytes and duration nor a pipe metric is present).

    Args:
        table: the tidy table, base units (bytes, ns).
        gpu: a ``gpus.GpuSpec``; None: matched from the table's device attributes.
        uses_dot: per row, whether the kernel's source calls ``tl.dot`` (None: unknown, then the tensor pipe
            metric decides: busier than 1% means a tensor-core kernel).
    """
    spec = _gpu_spec(table, gpu)
    roof, roof_source = _bandwidth(spec)
    moved = np.nan_to_num(_column(table, "dram__bytes_read.sum")) + np.nan_to_num(
        _column(table, "dram__bytes_write.sum")
    )
    has_bytes = ~(
        np.isnan(_column(table, "dram__bytes_read.sum"))
        & np.isnan(_column(table, "dram__bytes_write.sum"))
    )
    seconds = _column(table, "gpu__time_duration.sum") / 1e9
    tensor = _column(table, "sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_elapsed")
    fma = _column(table, "sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_elapsed")
    out: list[Roofline | None] = []
    for i in range(len(table)):
        rate = _finite(moved[i] / seconds[i]) if has_bytes[i] and seconds[i] > 0 else None
        dot = uses_dot[i] if uses_dot is not None else None
        if dot is None:
            dot = bool(np.isfinite(tensor[i]) and tensor[i] > _TENSOR_IN_USE_PCT)
        pipe_pct = tensor[i] if dot else fma[i]
        pipe_fraction = _finite(pipe_pct / 100)
        peak_tflops = None if spec is None else (spec.bf16_tflops if dot else spec.fp32_tflops)
        flops_roof = float(peak_tflops) * 1e12 if peak_tflops else None
        if rate is None and pipe_fraction is None:
            out.append(None)
            continue
        out.append(
            Roofline(
                bytes_per_s=rate,
                bandwidth_roof=roof,
                bandwidth_source=roof_source,
                memory_fraction=rate / roof if rate is not None and roof else None,
                pipe="tensor" if dot else "FP32",
                pipe_fraction=pipe_fraction,
                flops_per_s=pipe_fraction * flops_roof
                if pipe_fraction is not None and flops_roof
                else None,
                flops_roof=flops_roof,
            )
        )
    return out
