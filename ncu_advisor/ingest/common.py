"""What every report reader shares: checking an input path, reading its bytes within limits, un-gzipping,
and building the tidy table from per-launch records.

Limits (each a ``ReportError``, exit 2, naming the file and the reason):

* the input must be a regular file: a FIFO would block forever and ``/dev/zero`` never ends;
* a report may hold at most ``$NCU_ADVISOR_MAX_INFLATE`` bytes un-gzipped (default 4 GiB; bytes or a
  K/M/G suffix). Why this figure: the largest report recorded for this project, the 10,000-launch
  ``bench/data/launches10k.ncu-rep.gz``, is 1.5 MB gzip'd and 147 MB plain (97x, the highest ratio of
  every recorded and public report, so a ratio cap would have to be generous anyway), and ncu_report
  needs several times a report's size in memory, so a report past 4 GiB cannot be read on the machines
  this runs on; a 26 MB gzip bomb that inflated to 12 GB before now stops at the cap;
* and at most ``max(64 MiB, MAX_INFLATE_RATIO x the gzip's size)``: 4 GiB is still far too much for a
  2-core, 24 GB CI machine (a 14 MB bomb of 3.2 GB ran past 120 s at 6.4 GB RSS). Measured ratios of
  real reports (``zcat F | wc -c`` over the size of F, every .ncu-rep.gz in examples/, tests/fixtures/,
  bench/data/ and ../shared/reports-public, 2026-11-30): 13x for ordinary reports (examples/runs/baseline,
  alife_cuda), 25x for spyinfer, and the maximum, 96x, for the 10,000-launch
  ``bench/data/launches10k.ncu-rep.gz`` (1,521,350 -> 147,173,925 bytes). ``MAX_INFLATE_RATIO`` = 150
  keeps a margin over that maximum. The content is first inflated and counted in 1 MiB chunks and then
  dropped, so a bomb is refused in constant memory before anything is kept.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ncu_advisor.errors import ReportError

REPORT_MAGIC = b"NVR\x00"  # first bytes of every .ncu-rep / .nsight-cuprof-report seen (2019..2025)
GZIP_MAGIC = b"\x1f\x8b"

MAX_INFLATE_ENV = "NCU_ADVISOR_MAX_INFLATE"
DEFAULT_MAX_INFLATE = 4 << 30  # bytes; see the module docstring for why
MAX_INFLATE_RATIO = 150  # un-gzipped / gzip'd size; the measured maximum is 96x (module docstring)
MIN_RATIO_CAP = 64 << 20  # bytes: small reports may inflate this far whatever their ratio


def _is_gzip_name(path: Path) -> bool:
    return path.name.endswith(".gz")


def _base_name(path: Path) -> str:
    return path.name[: -len(".gz")] if _is_gzip_name(path) else path.name


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise ReportError(
            "no such file", path=path, hint="check the path; reports end in .ncu-rep, .ncu-rep.gz or .csv"
        )
    if path.is_dir():
        raise ReportError("is a directory, not a report", path=path, hint="pass the report files inside it")


def _check_magic(head: bytes, path: Path, *, unzipped: bool) -> None:
    """Raise the not-a-report error unless ``head`` starts with the report header."""
    if head[:4] == REPORT_MAGIC:
        return
    if unzipped:
        raise ReportError(
            "is not an Nsight Compute report (the un-gzipped file does not start with NVR)",
            path=path,
            hint="pass a report written by `ncu -o`",
        )
    raise ReportError(
        "is not an Nsight Compute report (the file does not start with the report header NVR)",
        path=path,
        hint="pass a report written by `ncu -o NAME` (NAME.ncu-rep), or its CSV export with a .csv name",
    )


def _gzip_error(path: Path, exc: BaseException) -> ReportError:
    return ReportError(
        f"the gzip file is truncated or corrupt ({exc})", path=path, hint="copy or download the report again"
    )


@contextmanager
def _plain_report_file(path: Path) -> Iterator[Path]:
    """Yield a path to the un-gzipped report (a temp copy for ``.gz``), checking its magic bytes."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] == GZIP_MAGIC:
        with tempfile.TemporaryDirectory(prefix="ncu-advisor-") as tmp:
            target = Path(tmp) / (
                _base_name(path) if _base_name(path) != path.name else path.name + ".ncu-rep"
            )
            with open(target, "wb") as dst:
                for chunk in _inflated_chunks(path):
                    dst.write(chunk)
            with open(target, "rb") as handle:
                _check_magic(handle.read(4), path, unzipped=True)
            yield target
        return
    _check_magic(head, path, unzipped=False)
    yield path


def _format_cc(major: float | str | None, minor: float | str | None) -> str | None:
    if major is None or minor is None or isinstance(major, str) or isinstance(minor, str):
        return None
    if math.isnan(major) or math.isnan(minor):
        return None
    return f"{int(major)}.{int(minor)}"


def max_inflate() -> int:
    """The most bytes a report may hold un-gzipped: ``$NCU_ADVISOR_MAX_INFLATE`` (bytes, or with a K/M/G
    suffix), default 4 GiB (see the module docstring).

    Raises:
        ReportError: the variable is set to something other than a positive size.
    """
    text = os.environ.get(MAX_INFLATE_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_INFLATE
    factor = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1].upper(), 1)
    digits = text[:-1] if factor != 1 else text
    if not digits.isdigit() or len(digits) > 15 or int(digits) == 0:
        raise ReportError(f"${MAX_INFLATE_ENV}={text!r} is not a size", hint="give bytes or K/M/G, e.g. 8G")
    return int(digits) * factor


def _too_large(path: Path, cap: int, what: str) -> ReportError:
    return ReportError(
        f"{what} the limit of {cap:,} bytes un-gzipped (a gzip bomb or not a report)",
        path=path,
        hint=f"if it is a real report, raise the limit: {MAX_INFLATE_ENV}=16G",
    )


def _inflate_cap(path: Path) -> tuple[int, bool]:
    """The most bytes ``path`` may inflate to, and whether the ratio (not the absolute cap) sets it."""
    cap = max_inflate()
    ratio_cap = max(MIN_RATIO_CAP, MAX_INFLATE_RATIO * path.stat().st_size)
    return (ratio_cap, True) if ratio_cap < cap else (cap, False)


def _inflated_chunks(path: Path) -> Iterator[bytes]:
    """The un-gzipped content of ``path`` in 1 MiB chunks, stopping with ``ReportError`` past the cap
    (``_inflate_cap``: the absolute cap or ``MAX_INFLATE_RATIO`` times the gzip's size)."""
    cap, by_ratio = _inflate_cap(path)
    total = 0
    try:
        with gzip.open(path, "rb") as source:
            while chunk := source.read(1 << 20):
                total += len(chunk)
                if total > cap and by_ratio:
                    raise ReportError(
                        f"inflates past {MAX_INFLATE_RATIO}x its size ({cap:,} bytes; real reports "
                        "inflate 13-96x): a gzip bomb or not a report",
                        path=path,
                        hint="un-gzip it yourself and pass the .ncu-rep if it is a real report",
                    )
                if total > cap:
                    raise _too_large(path, cap, "inflates past")
                yield chunk
    except (OSError, EOFError, zlib.error) as exc:
        raise _gzip_error(path, exc) from None


def _report_bytes(path: Path) -> bytes:
    """The un-gzipped bytes of a binary report, with the same checks as ``_plain_report_file``."""
    cap = max_inflate()
    with open(path, "rb") as handle:
        data = handle.read(cap + 1)
    if data[:2] == GZIP_MAGIC:
        for _ in _inflated_chunks(path):  # count first, keep nothing: a bomb stops in constant memory
            pass
        data = b"".join(_inflated_chunks(path))
        _check_magic(data, path, unzipped=True)
    elif len(data) > cap:
        raise _too_large(path, cap, "is larger than")
    else:
        _check_magic(data, path, unzipped=False)
    return data


def _is_csv(path: Path) -> bool:
    return _base_name(path).lower().endswith(".csv")
