"""The direct .ncu-rep reader (ncu_advisor.ingest.ncurep) against NVIDIA's ncu_report, on every real report.

Both readers must give the same table (values, dtypes, id columns, units) for every binary report in the
repository and in ../shared/reports-public (16 GPUs, ncu 2019..2026). What the direct reader was not
built for falls back to ncu_report; what is broken still gets the same clear errors.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pandas as pd
import pytest

from ncu_advisor.ingest import ncurep
from ncu_advisor.ingest import ncu_report_reader
from ncu_advisor.ingest import readers as report_module
from ncu_advisor.errors import ReportError
from tests.conftest import EXAMPLES, FIXTURES, ROOT

REPO_REPORTS = sorted(
    {*EXAMPLES.rglob("*.ncu-rep.gz"), *FIXTURES.rglob("*.ncu-rep.gz"), *FIXTURES.rglob("*.ncu-rep")}
)
SMALL = EXAMPLES / "reports" / "h200-seed" / "ModelNew_seed000_small.ncu-rep.gz"
LAUNCHES_10K = ROOT / "bench" / "data" / "launches10k.ncu-rep.gz"


def both_tables(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    direct = report_module._read_binary(path, None, reader="direct")
    reference = report_module._read_binary(path, None, workers=0, reader="ncu_report")
    return direct, reference


def assert_same(direct: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert direct.attrs["reader"] == "direct"
    assert reference.attrs["reader"] == "ncu_report"
    pd.testing.assert_frame_equal(direct, reference, check_exact=True)
    assert direct.attrs["units"] == reference.attrs["units"]
    assert direct.attrs["fallbacks"] == reference.attrs["fallbacks"]


def test_the_repository_holds_reports_to_compare() -> None:
    assert len(REPO_REPORTS) >= 20


@pytest.mark.parametrize("path", REPO_REPORTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_table_as_ncu_report_on_recorded_reports(path: Path) -> None:
    assert_same(*both_tables(path))


def test_same_table_as_ncu_report_on_public_reports(public_reports: dict[str, Path]) -> None:
    for name, path in public_reports.items():
        direct, reference = both_tables(path)
        try:
            assert_same(direct, reference)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def head_of(data: bytes, launches: int) -> bytes:
    """The valid report made of the blocks up to the one holding launch ``launches - 1``."""
    parsed = ncurep.read_launches(data)
    return data[: parsed.block_ends[launches - 1]]


def test_first_300_launches_of_the_10k_report(tmp_path: Path) -> None:
    # The run cache (byte runs shared between launches) does its work on this report: 10,000 launches
    # of one kernel. Its first 300 launches are themselves a valid report that ncu_report reads quickly.
    plain = tmp_path / "head300.ncu-rep"
    plain.write_bytes(head_of(gzip.decompress(LAUNCHES_10K.read_bytes()), 300))
    direct, reference = both_tables(plain)
    assert len(direct) == 300
    assert_same(direct, reference)
    durations = direct["gpu__time_duration.sum"]
    assert durations.nunique() > 3  # per-launch values (32 ns steps) differ, and were not copied by the cache


def test_run_cache_reuses_shared_bytes() -> None:
    parsed = ncurep.read_launches(head_of(gzip.decompress(LAUNCHES_10K.read_bytes()), 50))
    assert len(parsed.launches) == 50
    # Device attributes are the same bytes in every launch, so they are shared objects, not re-sliced.
    name = parsed.strings.index("device__attribute_display_name")
    raws = {id(launch.values[name]) for launch in parsed.launches[5:]}
    assert len(raws) == 1
    assert ncurep.decode_value(parsed.launches[-1].values[name]) == "NVIDIA H200"


def test_decode_value_kinds() -> None:
    assert ncurep.decode_value(b"") is None
    assert ncurep.decode_value(b"\x0a\x03abc") == "abc"  # string
    assert ncurep.decode_value(b"\x0a\x00") is None  # empty string reads as missing, as in the CSV export
    assert ncurep.decode_value(b"\x15" + struct.pack("<f", 1.5)) == 1.5  # float
    assert ncurep.decode_value(b"\x19" + struct.pack("<d", 2.25)) == 2.25  # double
    assert ncurep.decode_value(b"\x20\x07") == 7.0  # uint32
    assert ncurep.decode_value(b"\x28\xac\x02") == 300.0  # uint64, two-byte varint


def test_other_file_versions_fall_back_to_ncu_report(tmp_path: Path) -> None:
    data = bytearray(gzip.decompress(SMALL.read_bytes()))
    assert data[8:10] == b"\x08\x07"  # FileHeader{version: 7}
    data[9] = 8
    with pytest.raises(ncurep.UnsupportedReport, match="version 8"):
        ncurep.read_launches(bytes(data))
    changed = tmp_path / "v8.ncu-rep"
    changed.write_bytes(bytes(data))
    with pytest.raises(ReportError, match="direct reader cannot read it"):
        report_module._read_binary(changed, None, reader="direct")
    # auto: ncu_report reads it (it does not check the version the way the direct reader does).
    table = report_module.read_report(changed)
    assert table.attrs["reader"] == "ncu_report"
    assert len(table) == 5


def test_truncated_report_keeps_its_error(tmp_path: Path) -> None:
    data = gzip.decompress(SMALL.read_bytes())
    cut = tmp_path / "cut.ncu-rep"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ncurep.UnsupportedReport):
        ncurep.read_launches(cut.read_bytes())
    with pytest.raises(ReportError) as info:
        report_module.read_report(cut)
    assert "truncated or corrupt" in str(info.value)
    assert str(cut) in str(info.value)


def test_report_without_results(tmp_path: Path) -> None:
    # A real report cut before its first profile result: well formed, and no launch in it.
    data = gzip.decompress(SMALL.read_bytes())
    parsed = ncurep.read_launches(data)
    first_result_block_end = parsed.block_ends[0]
    pos, blocks = 8 + struct.unpack_from("<I", data, 4)[0], []
    while pos < first_result_block_end:
        start = pos
        (size,) = struct.unpack_from("<I", data, pos)
        header = data[pos + 4 : pos + 4 + size]
        payload = next(v for n, w, v in ncurep._fields(header) if n == 5)
        pos += 4 + size + payload
        blocks.append(start)
    empty = tmp_path / "empty.ncu-rep"
    empty.write_bytes(data[: blocks[-1]])
    assert ncurep.read_launches(empty.read_bytes()).launches == []
    with pytest.raises(ReportError, match="no kernel launches"):
        report_module.read_report(empty)


def test_values_without_ncu_report_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # The direct reader needs ncu_report only for the units, which the file does not store.
    def missing() -> None:
        raise ReportError("cannot read .ncu-rep files: the ncu_report module is not installed")

    reference = report_module._read_binary(SMALL, None, workers=0, reader="ncu_report")
    monkeypatch.setattr(ncu_report_reader, "load_ncu_report_module", missing)
    direct = report_module._read_binary(SMALL, None, reader="direct")
    pd.testing.assert_frame_equal(direct, reference, check_exact=True)
    assert set(direct.attrs["units"].values()) == {""}


def test_unknown_reader_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(report_module.READER_ENV, "protobuf")
    with pytest.raises(ReportError, match="unknown reader 'protobuf'"):
        report_module.read_report(SMALL)
