"""The one number formatter of every rendered output: a value with its unit, never a raw Python float.

``quantity(value, unit)`` is what every renderer (text, markdown, HTML, JUnit, SARIF message text, prompt,
tune and compare reports) prints a measured or derived number with; plot axes use ``si`` and ``milliseconds``.
Units are the report's own (ncu_report's ``metric.unit()``: ``byte``, ``%``, ``ns``, ``cycle``, ``sector``,
``register/thread`` ...) plus the few the advisor gives its own figures:

- ``fraction`` (0..1, printed as a percentage: ``time_share`` 1 -> ``100%``),
- ``pp`` (percentage points: the gap between two percentages),
- ``boolean`` (a rule's comparison: ``yes`` / ``no``),
- ``line`` (a line of the kernel file: ``line 42``), ``cc`` (compute capability: ``9.0``),
- a noun (``block``, ``warp``, ``wave``, ``element``; ``x/y`` rates) for counts, pluralised.

``evidence_unit`` finds the unit of a finding's evidence entry: the rule's ``units`` (derived values and
counts whose report unit is empty), the report's units, the metric catalogue, then ``FACT_UNITS``
(``gpu_*``/``src_*`` facts and the advisor's own evidence). A number whose unit is unknown prints with at
most 4 significant digits; tests/test_units_everywhere.py fails when a shipped rule's evidence has none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
#: Time units of a milliseconds value: scaled so the text reads 250 us, 1.5 ms, 2 s.
_TIME_UNITS = ((1e3, "s", 1e-3), (1.0, "ms", 1.0), (1e-3, "us", 1e3), (0.0, "ns", 1e6))
#: Report units that are bytes or bytes per second (SI-prefixed as B, B/s).
_BYTE_UNITS = {"byte": "B", "bytes": "B", "B": "B", "byte/s": "B/s", "byte/second": "B/s", "B/s": "B/s"}
_NANOSECONDS = {"ns", "nsecond", "nanosecond"}
_PERCENT = {"%", "pct", "percent"}
#: Nouns that read the same in the plural ("12 inst", "3 SMs" is pluralised below).
_UNCOUNTABLE = {"inst", "hz", "Hz", "1/s", "%", "x", "FLOP", "B"}

#: Units of the evidence the advisor adds and of the per-launch facts rules read (``gpu_*`` from the
#: report's device attributes and the GPU catalogue, ``src_*`` from the kernel file); keys ending in
#: ``_line`` are lines, ``src_block_*`` block sizes in elements.
FACT_UNITS: dict[str, str] = {
    "time_share": "fraction",
    "global_effect": "fraction",
    "not_profiled": "boolean",
    "gpu_sm_count": "SM",
    "gpu_max_warps_per_sm": "warp/SM",
    "gpu_max_registers_per_sm": "register/SM",
    "gpu_l2_cache_bytes": "byte",
    "gpu_cc": "cc",
    "src_num_warps": "warp",
    "src_num_warps_min": "warp",
    "src_num_stages": "stage",
    "src_num_stages_min": "stage",
    "src_num_configs": "config",
    "src_num_loads": "load",
    "src_num_loops": "loop",
    "src_loop_invariant_loads": "load",
    "src_expensive_ops": "op",
    "src_uses_dot": "boolean",
    "src_has_baseline": "boolean",
    "src_chunk_block": "element",
    "src_tile_elements": "element",
    "src_chunk_other_blocks": "element",
}


def trim(number: float) -> str:
    """At most 3 significant digits, no trailing zeros (``2.5``, ``120``, ``0.05``)."""
    if number == 0:
        return "0"
    text = f"{number:.3g}"
    if "e" in text:  # 3 significant digits of a value >= 1000 after scaling: keep it whole
        text = f"{number:.0f}"
    return text


def si(value: float, unit: str) -> str:
    """``value`` with an SI prefix on ``unit``: ``si(4.27e12, "B/s")`` -> ``4.27 TB/s``.

    Values below 1 keep the bare unit with a decimal (``0.01 FLOP/B``): arithmetic intensity and shares read
    better that way than as milli-units.
    """
    magnitude = abs(value)
    for scale, prefix in _PREFIXES:
        if magnitude >= scale:
            return f"{trim(value / scale)} {prefix}{unit}"
    return f"{trim(value)} {unit}"


def milliseconds(value: float) -> str:
    """A time in ms in the unit that fits it: ``0.25`` -> ``250 us``, ``1500`` -> ``1.5 s``."""
    magnitude = abs(value)
    for threshold, unit, factor in _TIME_UNITS:
        if magnitude >= threshold or unit == "ns":
            if value == 0:
                return "0 ms"
            return f"{trim(value * factor)} {unit}"
    return f"{trim(value)} ms"  # pragma: no cover - the loop always returns


def number(value: float) -> str:
    """A plain number: integers with thousands separators, else 4 significant digits (3 below 1), never
    more than 4 decimals nor an exponent (``< 0.0001`` for smaller magnitudes)."""
    magnitude = abs(value)
    if float(value).is_integer() and magnitude < 1e15:
        return f"{int(value):,}"
    if magnitude >= 1e4:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.4g}"
    if magnitude >= 1e-4:
        return f"{value:.4f}".rstrip("0").rstrip(".") if magnitude < 1e-3 else f"{value:.3g}"
    return "< 0.0001" if value > 0 else "> -0.0001"


def percent(value: float) -> str:
    """A percentage already in percent: ``80.034`` -> ``80.0%``."""
    return f"{value:.1f}%" if abs(value) < 1000 else f"{value:,.0f}%"


def share(value: float) -> str:
    """A fraction 0..1 as a percentage: ``1`` -> ``100%``, ``0.4002`` -> ``40%``, ``0.0202`` -> ``2.0%``."""
    pct = value * 100
    if pct == 0 or abs(pct) >= 10:
        return f"{pct:.0f}%"
    return f"{pct:.1f}%" if abs(pct) >= 0.1 else f"{pct:.2g}%"


def _counted(value: float, noun: str) -> str:
    """``16 blocks``, ``1 block``, ``4 sectors/request``, ``31.03 waves``."""
    head, slash, tail = noun.partition("/")
    if value != 1 and head not in _UNCOUNTABLE and not head.endswith("s"):
        head += "s"
    return f"{number(value)} {head}{slash}{tail}"


def quantity(value: Any, unit: str | None) -> str:
    """``value`` with its ``unit`` as the reader sees it.

    ``None``/NaN read ``not measured``; infinity ``infinite``; strings as they are. ``unit`` None or empty
    gives a plain ``number`` (a dimensionless figure of unknown kind).
    """
    if value is None:
        return "not measured"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    if math.isnan(value):
        return "not measured"
    if math.isinf(value):
        return "infinite" if value > 0 else "-infinite"
    unit = (unit or "").strip()
    if unit == "boolean":
        return "yes" if value else "no"
    if unit in _PERCENT:
        return percent(float(value))
    if unit == "fraction":
        return share(float(value))
    if unit == "pp":
        return f"{float(value):.1f} pp"
    if unit == "line":
        return f"line {int(value)}"
    if unit == "cc":
        return f"CC {float(value):.1f}"
    if unit in _BYTE_UNITS:
        return si(float(value), _BYTE_UNITS[unit])
    if unit in _NANOSECONDS:
        return milliseconds(float(value) / 1e6)
    if unit == "ms":
        return milliseconds(float(value))
    if not unit:
        return number(float(value))
    return _counted(float(value), unit)


def evidence_unit(
    key: str,
    rule_units: Mapping[str, str] | None = None,
    report_units: Mapping[str, str] | None = None,
) -> str | None:
    """The unit of evidence entry ``key``; None when no source knows one (see the module docstring)."""
    if rule_units and key in rule_units:
        return rule_units[key]
    if report_units and report_units.get(key):
        return report_units[key]
    catalogued = _catalogue_unit(key)
    if catalogued:
        return catalogued
    if key in FACT_UNITS:
        return FACT_UNITS[key]
    if key.startswith("src_") and key.endswith("_line"):
        return "line"
    if key.startswith("src_block_"):
        return "element"
    return None


def _catalogue_unit(key: str) -> str | None:
    from ncu_advisor import metrics  # noqa: PLC0415 - read once, cached by metrics.catalogue()

    entries = metrics.catalogue()
    entry = entries.get(key)
    if entry is None:  # a fallback name: the unit of the quantity it stands for
        entry = next((e for e in entries.values() if key in e.fallbacks), None)
    return entry.unit if entry is not None and entry.unit else None


def evidence_items(
    evidence: Mapping[str, Any],
    rule_units: Mapping[str, str] | None = None,
    report_units: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """``(name, value with unit)`` for each evidence entry but the ``condition`` (printed apart)."""
    return [
        (key, quantity(value, evidence_unit(key, rule_units, report_units)))
        for key, value in evidence.items()
        if key != "condition"
    ]


class EvidenceUnits:
    """Evidence formatting for one analysis: each rule's declared units and the report's own units.

    ``EvidenceUnits.of(analysis)`` once per rendering, then ``items(finding)`` per finding.
    """

    def __init__(self, rules: Sequence[Any] = (), report_units: Mapping[str, str] | None = None) -> None:
        self._rules: dict[str, Mapping[str, str]] = {r.id: getattr(r, "units", {}) for r in rules}
        self._report_units: Mapping[str, str] = report_units or {}

    @classmethod
    def of(cls, analysis: Any) -> EvidenceUnits:
        """From an ``Analysis`` (its ``rules`` and its table's ``attrs["units"]``)."""
        table = getattr(analysis, "table", None)
        report_units = table.attrs.get("units", {}) if table is not None else {}
        return cls(getattr(analysis, "rules", ()), report_units)

    def unit(self, rule: str, key: str) -> str | None:
        """The unit of evidence ``key`` of a finding of ``rule``."""
        return evidence_unit(key, self._rules.get(rule), self._report_units)

    def items(self, finding: Any) -> list[tuple[str, str]]:
        """``(name, value with unit)`` for each evidence entry of ``finding`` but its ``condition``."""
        return evidence_items(finding.evidence, self._rules.get(finding.rule), self._report_units)

    def text(self, finding: Any, *, sep: str = ", ", code: bool = False) -> str:
        """The evidence as one line: ``name = value unit`` (names in backticks with ``code``)."""
        quote = "`" if code else ""
        return sep.join(f"{quote}{k}{quote} = {v}" for k, v in self.items(finding))
