"""Reading the metrics of launches (``ncu_report`` actions) out of a loaded report: one dict per launch
(values as float or str, None when absent), the units seen, the NVTX ranges of each launch. The module
object and the report context come from ``ncu_report_reader``, the only place that imports ``ncu_report``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ncu_advisor.ingest.common import _format_cc

__all__ = ["read_actions"]

# Metrics that describe the device or the machine, not the launch: ncu stores them with every action, but
# their values are the same for every launch on one device. They are read once per device index and copied,
# which is most of the speed on large reports (166 of 254 metrics per launch in the 10k-launch report).
_DEVICE_LEVEL_PREFIXES = ("device__attribute_", "nvlink__", "numa__", "c2clink__")
_DEVICE_INDEX = "device__attribute_device_index"
_NAMES_READ = "\x00names"  # key in a device cache: the metric-name tuple its values were read for


def _nvtx_names(action: Any) -> str | None:
    """The NVTX push/pop ranges active at the launch, outermost first, joined with " > "."""
    try:
        state = action.nvtx_state()
    except Exception:  # noqa: BLE001 - older reports may lack NVTX data; the column is then empty
        return None
    if state is None:
        return None
    names: list[str] = []
    for domain_id in state.domains():
        domain = state.domain_by_id(domain_id)
        if domain is None:
            continue
        domain_name = domain.name()
        for range_name in domain.push_pop_ranges():
            # Ranges of a named domain are written as ncu's --nvtx-include writes them: domain@range.
            if domain_name and domain_name != "<default domain>":
                names.append(f"{domain_name}@{range_name}")
            else:
                names.append(str(range_name))
    return " > ".join(names) if names else None


class _ActionReader:
    """Reads the metrics of launches (``ncu_report`` actions) of one report, keeping what repeats between
    launches: each metric's unit, its numeric getter, the split of a name list into launch-level and
    device-level names, and each device's values.

    Uses the raw SWIG functions of ``ncu_report`` (``_ncu_report``) where available: the convenience
    wrappers cost several times more per call, and a report can hold millions of values.
    """

    def __init__(self, module: ModuleType) -> None:
        raw = getattr(module, "_ncu_report", None)
        metric_class = module.IMetric
        if raw is not None:
            self.metric_names = raw.IAction_metric_names
            self.metric_by_name = raw.IAction_metric_by_name
            self.metric_kind = raw.IMetric_kind
            self.has_value = raw.IMetric_has_value
            self.unit_of = raw.IMetric_unit
            as_double, as_uint64, self.as_string = (
                raw.IMetric_as_double,
                raw.IMetric_as_uint64,
                raw.IMetric_as_string,
            )
        else:  # ncu's own copy of the module may lack the flat functions: use the methods
            self.metric_names = lambda a: a.metric_names()
            self.metric_by_name = lambda a, n: a.metric_by_name(n)
            self.metric_kind = lambda m: m.kind()
            self.has_value = lambda m: m.has_value()
            self.unit_of = lambda m: m.unit()
            as_double, as_uint64, self.as_string = (
                metric_class.as_double,
                metric_class.as_uint64,
                metric_class.as_string,
            )
        self.to_float: dict[Any, Any] = {
            metric_class.ValueKind_DOUBLE: as_double,
            metric_class.ValueKind_FLOAT: as_double,
            metric_class.ValueKind_UINT32: as_uint64,
            metric_class.ValueKind_UINT64: as_uint64,
        }
        self.string_kind = metric_class.ValueKind_STRING
        self.units: dict[str, str] = {}
        self.numeric_getter: dict[str, Any] = {}
        self.device_values: dict[Any, dict[str, Any]] = {}
        # Launches of one report nearly always carry the same metric names: split them once into
        # launch-level and device-level names and reuse the split while the names stay the same.
        self.previous_names: tuple[str, ...] | None = None
        self.launch_level: list[str] = []
        self.device_level: list[str] = []

    def read_value(self, metric: Any) -> float | str | None:
        """One metric's value: a float, a non-empty string, or None (no value)."""
        kind = self.metric_kind(metric)
        getter = self.to_float.get(kind)
        if getter is not None:
            number = getter(metric)
            # has_value() is checked only for zeros: an instanced-only metric (no aggregate) reads 0.0.
            if number == 0 and not self.has_value(metric):
                return None
            return float(number)
        if kind == self.string_kind:
            text = self.as_string(metric)
            return text if text else None  # an empty string metric reads as missing, as in the CSV export
        return None

    def names_of(self, action: Any) -> tuple[str, ...]:
        """The action's metric names (the previous launch's tuple object when equal), with the split into
        launch-level and device-level names and the units of names not seen before."""
        names = tuple(self.metric_names(action))
        if names == self.previous_names:
            return self.previous_names  # the same object, so device caches can check it by identity
        self.previous_names = names
        self.launch_level = [n for n in names if not n.startswith(_DEVICE_LEVEL_PREFIXES)]
        self.device_level = [n for n in names if n.startswith(_DEVICE_LEVEL_PREFIXES)]
        for name in names:
            if name not in self.units:
                metric = self.metric_by_name(action, name)
                if metric is not None:
                    self.units[name] = self.unit_of(metric) or ""
        return names

    def device_record(self, action: Any, names: tuple[str, ...]) -> dict[str, Any]:
        """The device-level values of the action's device, read once per device and name list."""
        device_level = self.device_level
        device_key: Any = None
        if _DEVICE_INDEX in device_level:
            device_key = self.read_value(self.metric_by_name(action, _DEVICE_INDEX))
        cached = self.device_values.get(device_key) if device_key is not None else None
        if cached is None or cached.get(_NAMES_READ) is not names:
            cached = self.device_values.setdefault(device_key, {}) if device_key is not None else {}
            for name in device_level:
                metric = self.metric_by_name(action, name)
                if metric is not None:
                    cached[name] = self.read_value(metric)
            cached[_NAMES_READ] = names
        return {name: cached[name] for name in device_level if name in cached}

    def read_launch_level(self, action: Any, record: dict[str, Any]) -> None:
        """Add the action's launch-level values to ``record``."""
        metric_by_name, numeric_getter, has_value = self.metric_by_name, self.numeric_getter, self.has_value
        for name in self.launch_level:
            metric = metric_by_name(action, name)
            if metric is None:
                continue
            # A metric's value kind is fixed by its name: remember the numeric getter and skip kind().
            getter = numeric_getter.get(name)
            if getter is None:
                getter = self.to_float.get(self.metric_kind(metric))
                if getter is None:
                    record[name] = self.read_value(metric)
                    continue
                numeric_getter[name] = getter
            number = getter(metric)
            record[name] = None if number == 0 and not has_value(metric) else float(number)


def read_actions(
    module: ModuleType, context: Any, work: list[tuple[int, int]]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Read the metrics of the given (range, action) pairs: one dict per launch, plus the units seen
    (see ``_ActionReader``)."""
    reader = _ActionReader(module)
    records: list[dict[str, Any]] = []
    ranges: dict[int, Any] = {}
    for range_index, action_index in work:
        profiled_range = ranges.get(range_index)
        if profiled_range is None:
            profiled_range = ranges[range_index] = context.range_by_idx(range_index)
        action = profiled_range.action_by_idx(action_index)
        names = reader.names_of(action)
        record = reader.device_record(action, names)
        reader.read_launch_level(action, record)
        gpu = record.get("device__attribute_display_name")
        record.update(
            range=range_index,
            action=action_index,
            kernel=action.name(action.NameBase_FUNCTION),
            demangled=action.name(action.NameBase_DEMANGLED),
            nvtx=_nvtx_names(action),
            gpu=gpu if isinstance(gpu, str) else None,
            cc=_format_cc(
                record.get("device__attribute_compute_capability_major"),
                record.get("device__attribute_compute_capability_minor"),
            ),
        )
        records.append(record)
    return records, reader.units
