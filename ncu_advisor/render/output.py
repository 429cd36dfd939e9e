"""Writing an output file so that a failure leaves nothing behind: a temp file beside it, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ncu_advisor.errors import OutputError


def write_atomic(out: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, then rename the temp file to ``out``.

    Raises:
        OutputError: ``out`` is a directory, its folder does not exist or cannot be written; no partial file
            is left behind.
    """
    out = Path(out)
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise OutputError("output path is a directory", path=out, hint="give a file name with -o")
    if not folder.is_dir():
        raise OutputError("output folder does not exist", path=out, hint="create the folder first")
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"cannot write here ({exc.strerror})", path=out, hint="choose a writable location with -o"
        ) from None
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(
            f"cannot write ({exc.strerror})", path=out, hint="choose a writable location with -o"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(out: Path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``out`` through ``write_atomic``."""

    write_atomic(out, lambda tmp: tmp.write_text(text, encoding="utf-8", newline=""))
