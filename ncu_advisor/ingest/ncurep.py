"""A direct reader of the ``.ncu-rep`` file layout, for large reports.

NVIDIA's ``ncu_report`` builds a C++ object per launch (measured: 0.69 ms each, about 1 ms of CPU per
launch with the metric reads), so a 10,000-launch report takes 7.5 s through it on a 2-core machine.
This module reads the same file directly: the report is a sequence of length-prefixed protobuf messages
(layout documented by NVIDIA as ``extras/FileFormat/*.proto`` in every Nsight Compute install), and only
the few fields the table needs are decoded, with a hand-written wire-format decoder (no protobuf
dependency, no generated code).

Layout, as read here (file-header version 7, the only one seen in reports from ncu 2019.x to 2025.x)::

    b"NVR\\0"  <u32 size> FileHeader{1: version}
    then blocks:  <u32 size> BlockHeader{1: sources, 2: results, 4: StringTable{1: repeated string},
                                         5: payload size, 7: range results}
                  payload: sources x <u32 size> ProfileSource, results x <u32 size> ProfileResult, ...
    ProfileResult{5: mangled name, 6: function name, 7: demangled name, 13: repeated MetricResult,
                  16: range id, 21: NVTX state}
    MetricResult{1: name id (into the string tables, which accumulate block after block),
                 2: MetricValue{1: string, 2: float, 3: double, 4: uint32, 5: uint64}, 3: instances}

Large reports repeat most metrics byte for byte from launch to launch (every device attribute, and the
launch configuration of a kernel launched many times). The decoder keeps the byte runs the previous
launch shared with the one before it and skips a run with one ``bytes.startswith`` when it recurs, which
is exact: identical bytes decode to identical values.

``read_launches`` raises ``UnsupportedReport`` for anything it was not built for (another file-header
version, a field of an unexpected wire type, a truncated message); ``report.read_report`` then falls back
to ``ncu_report``. The test suite checks that both readers give the same table for every recorded
report in the repository and every public report in ``shared/reports-public``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

KNOWN_FILE_VERSIONS = frozenset({7})

_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")

_MISSING = object()
_METRIC_TAG = 0x6A  # field 13, wire type 2: one MetricResult of a ProfileResult
# ncu writes a few metrics twice in one result (seen in --set full reports), always byte for byte the same:
# the same name with another value is a corrupted name id.
_TWICE = "a profile result gives one metric two different values (a corrupted name id)"


class UnsupportedReport(Exception):
    """The file is not laid out as this reader expects; use ``ncu_report`` instead."""


class DamagedReport(UnsupportedReport):
    """The file breaks the protobuf framing or the report layout: truncated or corrupt, whatever reads it.

    Protobuf framing is independent of the schema (a varint cannot run past its message, a length cannot
    point past the end, wire types 3, 4, 6 and 7 are not used by proto3), so a defect found here is damage,
    not a newer layout: ``ncu_report`` would return an empty or partial launch for it instead of failing.
    """


@dataclass
class Launch:
    """One ProfileResult: the identifying fields and the raw metric values by name id."""

    range_id: int
    kernel: str | None
    demangled: str | None
    nvtx: str | None
    values: dict[int, bytes]  # name id -> raw MetricValue bytes (b"" when the metric has no aggregate)


@dataclass
class Report:
    version: int
    strings: list[str]
    launches: list[Launch] = field(default_factory=list)
    # Per launch: the file offset where the block holding it ends. buf[:ends[i]] is itself a valid report
    # holding launches 0..i (used to hand ncu_report a small file for the unit lookup).
    block_ends: list[int] = field(default_factory=list)
    # Per launch: where its ProfileResult message starts and ends in the file (the fuzz test aims there).
    result_spans: list[tuple[int, int]] = field(default_factory=list)
    # Where the last block that adds names to the string table ends. Results may name metrics through
    # strings a later block adds (seen in an ncu 2025 report), so a cut copy must reach this far too.
    strings_end: int = 0


# --------------------------------------------------------------------------------------------------
# Wire format
# --------------------------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        try:
            byte = buf[pos]
        except IndexError:
            raise DamagedReport("a varint runs past the end of its message") from None
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DamagedReport("a varint is longer than 10 bytes")


def _skip(buf: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 2:
        length, pos = _varint(buf, pos)
        return pos + length
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    raise DamagedReport(f"wire type {wire} (groups) is not used by any report this reader knows")


def _fields(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value) of one message: int for varints, bytes otherwise."""
    pos = start
    end = len(buf) if end is None else end
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DamagedReport("a field has number 0 (invalid in protobuf)")
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos : pos + length]
            if len(value) != length:
                raise DamagedReport("a length-delimited field runs past the end of its message")
            pos += length
        elif wire == 1:
            value = buf[pos : pos + 8]
            pos += 8
        elif wire == 5:
            value = buf[pos : pos + 4]
            pos += 4
        else:
            raise DamagedReport(f"wire type {wire} is not used by any report this reader knows")
        yield number, wire, value
    if pos != end:
        raise DamagedReport("a field runs past the end of its message")


def decode_value(raw: bytes) -> float | str | None:
    """A MetricValue's bytes as the table holds them: float, str, or None (no value / empty string).

    Raises:
        DamagedReport: the value is not exactly one of MetricValue's fields with its wire type, or a
            uint32 holds more than 32 bits (every value in the recorded and public reports is one field).
    """
    if not raw:
        return None
    fields = list(_fields(raw))
    if len(fields) != 1:
        raise DamagedReport(f"a metric value holds {len(fields)} fields (one expected)")
    number, wire, value = fields[0]
    if number == 1 and wire == 2:
        assert isinstance(value, bytes)
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise DamagedReport("a string metric value is not UTF-8") from None
        return text if text else None
    if number == 2 and wire == 5:
        assert isinstance(value, bytes)
        return float(_F32.unpack(value)[0])
    if number == 3 and wire == 1:
        assert isinstance(value, bytes)
        return float(_F64.unpack(value)[0])
    if number in (4, 5) and wire == 0:
        assert isinstance(value, int)
        if number == 4 and value > 0xFFFFFFFF:
            raise DamagedReport("a uint32 metric value holds more than 32 bits")
        return float(value)
    raise DamagedReport(f"a metric value has field {number} of wire type {wire} (MetricValue has 1..5)")


def _text(raw: bytes | None) -> str | None:
    """A name as text. ncu writes UTF-8: anything else is a corrupted byte, not a name to show."""
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedReport("a name is not valid UTF-8") from None
    if not text.isprintable():
        raise DamagedReport(f"a name holds control characters ({text[:60]!r})")
    return text


# --------------------------------------------------------------------------------------------------
# NVTX
# --------------------------------------------------------------------------------------------------


def _nvtx(raw: bytes | None) -> str | None:
    """The push/pop ranges of a result's NVTX state, outermost first, joined as ``report`` joins them.

    NvtxState{1: repeated Domain{1: id, 2: name}, 2: repeated Thread{1: tid, 2: repeated
    DomainState{1: domain id, 3: repeated PushPopRange{1: name, ...}}}}.
    """
    if not raw:
        return None
    domain_names: dict[int, str] = {}
    threads: list[bytes] = []
    for number, wire, value in _fields(raw):
        if number == 1 and wire == 2:
            domain_id, name = 0, ""
            for n2, w2, v2 in _fields(value):
                if n2 == 1 and w2 == 0:
                    domain_id = v2
                elif n2 == 2 and w2 == 2:
                    name = _text(v2) or ""
            domain_names[domain_id] = name
        elif number == 2 and wire == 2:
            threads.append(value)
    names: list[str] = []
    for thread in threads:
        for n2, w2, state in _fields(thread):
            if n2 != 2 or w2 != 2:
                continue
            domain_id = 0
            ranges: list[str] = []
            for n3, w3, v3 in _fields(state):
                if n3 == 1 and w3 == 0:
                    domain_id = v3
                elif n3 == 3 and w3 == 2:
                    for n4, w4, v4 in _fields(v3):
                        if n4 == 1 and w4 == 2:
                            ranges.append(_text(v4) or "")
                            break
            domain_name = domain_names.get(domain_id, "")
            for range_name in ranges:
                if domain_name and domain_name != "<default domain>":
                    names.append(f"{domain_name}@{range_name}")
                else:
                    names.append(range_name)
    return " > ".join(names) if names else None


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


class _RunCache:
    """Byte runs of consecutive MetricResults that recent launches shared, keyed by entry index.

    ``previous`` maps entry index -> (entry bytes, name id, value bytes) for the last launch learnt from.
    """

    MIN_RUN = 4  # entries; shorter runs are not worth a startswith
    RELEARN = 8  # entries read one by one in a launch that make the cache learn from it

    def __init__(self) -> None:
        self.runs: dict[int, tuple[bytes, list[tuple[int, bytes]]]] = {}
        self.previous: dict[int, tuple[bytes, int, bytes]] = {}
        self.nvtx: dict[bytes, str | None] = {}  # NVTX state bytes -> joined range names

    def learn(self, current: dict[int, tuple[bytes, int, bytes]], count: int) -> None:
        """Learn from a launch of ``count`` entries; ``current`` holds those read one by one.

        Entries not in ``current`` were skipped as part of a run, so they equal ``previous``'s.
        """
        previous = self.previous
        merged: dict[int, tuple[bytes, int, bytes]] = {}
        runs: dict[int, tuple[bytes, list[tuple[int, bytes]]]] = {}
        first = 0
        for index in range(count + 1):
            same = False
            if index < count:
                entry = current.get(index)
                if entry is None:
                    entry = previous.get(index)
                    if entry is None:
                        raise UnsupportedReport("a skipped metric result has no recorded bytes")
                    same = True
                else:
                    before = previous.get(index)
                    same = before is not None and before[0] == entry[0]
                merged[index] = entry
            if not same:
                if index - first >= self.MIN_RUN:
                    stretch = [merged[i] for i in range(first, index)]
                    runs[first] = (b"".join(e[0] for e in stretch), [(e[1], e[2]) for e in stretch])
                first = index + 1
        self.previous = merged
        self.runs = runs


def _read_result(buf: bytes, start: int, end: int, cache: _RunCache) -> Launch:
    values: dict[int, bytes] = {}
    entries: dict[int, tuple[bytes, int, bytes]] = {}  # read one by one: index -> (bytes, name id, value)
    kernel = demangled = mangled = nvtx_raw = None
    range_id = 0
    entry_index = 0
    runs = cache.runs
    pos = start
    varint = _varint
    while pos < end:
        if buf[pos] == _METRIC_TAG:
            run = runs.get(entry_index)
            if run is not None and buf.startswith(run[0], pos):
                run_bytes, run_entries = run
                for run_nid, run_value in run_entries:
                    if values.setdefault(run_nid, run_value) != run_value:
                        raise DamagedReport(_TWICE)
                pos += len(run_bytes)
                entry_index += len(run_entries)
                continue
            length, body = varint(buf, pos + 1)
            entry_end = body + length
            nid = None
            value = b""
            inner = body
            while inner < entry_end:
                key, inner = varint(buf, inner)
                number, wire = key >> 3, key & 7
                if number == 1 and wire == 0:
                    nid, inner = varint(buf, inner)
                elif number == 2 and wire == 2:
                    vlen, inner = varint(buf, inner)
                    value = buf[inner : inner + vlen]
                    inner += vlen
                else:
                    inner = _skip(buf, inner, wire)
            if inner != entry_end or nid is None:
                raise DamagedReport("a metric result is malformed")
            if values.setdefault(nid, value) != value:
                raise DamagedReport(_TWICE)
            entries[entry_index] = (buf[pos:entry_end], nid, value)
            entry_index += 1
            pos = entry_end
            continue
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = varint(buf, pos)
            if number in (5, 6, 7, 21):
                chunk = buf[pos : pos + length]
                if number == 5:
                    mangled = _text(chunk)
                elif number == 6:
                    kernel = _text(chunk)
                elif number == 7:
                    demangled = _text(chunk)
                else:
                    nvtx_raw = chunk
            pos += length
        elif wire == 0:
            value_int, pos = varint(buf, pos)
            if number == 16:
                range_id = value_int
        else:
            pos = _skip(buf, pos, wire)
    if pos != end or not (kernel or mangled or demangled):
        raise DamagedReport("a profile result runs past its declared size or has no kernel name")
    if len(entries) >= _RunCache.RELEARN or not cache.runs:
        # Many entries read one by one: learn the runs this launch shares with the last one learnt from
        # (costs one pass over the entry list, less than reading those entries did).
        cache.learn(entries, entry_index)
    # A kernel with C linkage has no demangled form: ncu_report then gives the name as written.
    demangled = demangled or mangled or kernel
    nvtx: str | None = None
    if nvtx_raw is not None:
        cached = cache.nvtx.get(nvtx_raw, _MISSING)
        nvtx = cache.nvtx[nvtx_raw] = _nvtx(nvtx_raw) if cached is _MISSING else cached  # type: ignore[assignment]
    return Launch(range_id, kernel or None, demangled or None, nvtx, values)


def read_launches(buf: bytes) -> Report:
    """Decode every ProfileResult of an un-gzipped report held in ``buf``."""
    if buf[:4] != b"NVR\x00":
        raise UnsupportedReport("the file does not start with NVR")
    try:
        (size,) = _U32.unpack_from(buf, 4)
    except struct.error:
        raise DamagedReport("the file ends inside its header") from None
    pos = 8
    version: int | None = None
    for number, wire, value in _fields(buf, pos, pos + size):
        if number == 1 and wire == 0:
            version = value
    if version is None or version not in KNOWN_FILE_VERSIONS:
        raise UnsupportedReport(
            f"file-header version {version} (this reader knows {sorted(KNOWN_FILE_VERSIONS)})"
        )
    pos += size
    report = Report(version=version, strings=[])
    cache = _RunCache()
    total = len(buf)
    while pos < total:
        if pos + 4 > total:
            raise DamagedReport("the file ends inside a block header's size")
        (size,) = _U32.unpack_from(buf, pos)
        pos += 4
        header_end = pos + size
        if header_end > total:
            raise DamagedReport("the file ends inside a block header")
        sources = results = payload = 0
        for number, wire, value in _fields(buf, pos, header_end):
            if wire == 0:
                if number == 7 and value:
                    raise UnsupportedReport("range results (range replay) are not read directly")
                if number == 1:
                    sources = value
                elif number == 2:
                    results = value
                elif number == 5:
                    payload = value
            elif number == 4 and wire == 2:
                added = [_text(v) or "" for n, w, v in _fields(value) if n == 1 and w == 2]
                if added:
                    report.strings.extend(added)
                    report.strings_end = header_end + payload
        pos = header_end
        payload_end = pos + payload
        if payload_end > total:
            raise DamagedReport("the file ends inside a block's payload (truncated report)")
        item = pos
        for _ in range(sources):  # ProfileSource messages: cubins and SASS, not needed for the table
            if item + 4 > payload_end:
                raise DamagedReport("a block declares more sources than its payload holds")
            (size,) = _U32.unpack_from(buf, item)
            item += 4 + size
            if item > payload_end:
                raise DamagedReport("a profile source runs past its block")
        for _ in range(results):
            if item + 4 > payload_end:
                raise DamagedReport("a block declares more results than its payload holds")
            (size,) = _U32.unpack_from(buf, item)
            item += 4
            if item + size > payload_end:
                raise DamagedReport("a profile result runs past its block")
            report.launches.append(_read_result(buf, item, item + size, cache))
            report.result_spans.append((item, item + size))
            report.block_ends.append(payload_end)
            item += size
        pos = payload_end
    return report


def table_records(report: Report) -> tuple[list[dict[str, Any]], list[int]]:
    """One dict per launch (metric name -> value, plus range/action/kernel/demangled/nvtx), and the
    indices of the launches that first carry each metric name (where a unit lookup has to look)."""
    strings = report.strings
    unique: set[bytes] = set()
    for launch in report.launches:
        unique.update(launch.values.values())
    decoded = {raw: decode_value(raw) for raw in unique}
    records: list[dict[str, Any]] = []
    first_carriers: list[int] = []
    seen_names: set[int] = set()
    action_in_range: dict[int, int] = {}
    range_order: dict[int, int] = {}
    for index, launch in enumerate(report.launches):
        if not seen_names.issuperset(launch.values):
            seen_names.update(launch.values)
            first_carriers.append(index)
            if max(launch.values, default=-1) >= len(strings):
                raise DamagedReport("a metric name id is outside the string table")
        record: dict[str, Any] = {strings[nid]: decoded[raw] for nid, raw in launch.values.items()}
        range_index = range_order.setdefault(launch.range_id, len(range_order))
        action = action_in_range.get(range_index, 0)
        action_in_range[range_index] = action + 1
        record.update(
            range=range_index,
            action=action,
            kernel=launch.kernel,
            demangled=launch.demangled,
            nvtx=launch.nvtx,
        )
        records.append(record)
    if len(range_order) > 1:
        # No recorded report has more than one range; how ncu_report numbers them is not verified.
        raise UnsupportedReport(f"{len(range_order)} ranges (only single-range reports are read directly)")
    return records, first_carriers
