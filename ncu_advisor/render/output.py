"""Writing an output file (``-o``) safely.

* A regular file is written to a temp file in the same folder and renamed over the target, so a failure
  leaves nothing behind; an existing file keeps its permission bits, a new one gets ``0o666 & ~umask``
  (as ``open`` would give it; ``mkstemp``'s 0600 is not kept).
* A symlink is followed: the file it points to is replaced, the link stays.
* ``-`` is stdout; a character device (``/dev/null``, ``/dev/stdout``, a terminal) or a FIFO is written
  as a stream, never replaced by a regular file.
* An output that resolves to one of the command's inputs is refused (``OutputError``, exit 2): ``metrics
  r.ncu-rep.gz -f parquet -o r.ncu-rep.gz`` destroyed the only copy of a profile before. The CLI
  registers every path argument of a command as an input (``protect_inputs``) before running it.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ncu_advisor.errors import OutputError

_HINT = "choose a writable location with -o"
_protected: list[Path] = []


@contextmanager
def protect_inputs(paths: Iterable[Path]) -> Iterator[None]:
    """While the block runs, refuse to write over any of ``paths`` (files, or files inside folders)."""
    added = []
    for path in paths:
        try:
            added.append(Path(os.path.realpath(path)))
        except (OSError, ValueError):
            continue
    _protected.extend(added)
    try:
        yield
    finally:
        for path in added:
            _protected.remove(path)


def _check_not_input(target: Path, shown: Path) -> None:
    for guarded in _protected:
        same = target == guarded
        inside = guarded.is_dir() and guarded in target.parents and target.exists()
        if same or inside:
            raise OutputError(
                "the output would overwrite an input of this command",
                path=shown,
                hint="write to another file name with -o",
            )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _stream_to(write: Callable[[Path], object], sink: Callable[[bytes], object]) -> None:
    """Render into a temp file (writers want a path), then copy its bytes to ``sink``."""
    with tempfile.TemporaryDirectory(prefix="ncu-advisor-out-") as folder:
        tmp = Path(folder) / "out"
        write(tmp)
        with open(tmp, "rb") as handle:
            while chunk := handle.read(1 << 20):
                sink(chunk)


def write_atomic(out: Path | str, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` and put the result at ``out`` as the module docstring says.

    Raises:
        OutputError: ``out`` is a directory or an input of the command, its folder does not exist or
            cannot be written, or the name is too long; no partial file is left behind.
    """
    if str(out) == "-":  # as ``write_stdout``: a closed stdout is an error, a reader gone a broken pipe
        fd = _stdout_fd()
        if fd is None:
            _stream_to(write, sys.stdout.buffer.write)
            sys.stdout.buffer.flush()
        else:
            _stream_to(write, lambda chunk: _write_fd(fd, chunk))
        return
    shown = Path(out)
    try:
        target = Path(os.path.realpath(shown))  # through symlinks: write the file a link points to
        mode = target.stat().st_mode if target.exists() else None
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror})", path=shown, hint=_HINT) from None
    _check_not_input(target, shown)
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError("output path is a directory", path=shown, hint="give a file name with -o")
    try:
        if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            with open(target, "ab") as device:
                _stream_to(write, device.write)
            return
        _replace(target, shown, write, None if mode is None else stat.S_IMODE(mode))
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror})", path=shown, hint=_HINT) from None


def _replace(target: Path, shown: Path, write: Callable[[Path], object], mode: int | None) -> None:
    folder = target.parent
    if not folder.is_dir():
        raise OutputError("output folder does not exist", path=shown, hint="create the folder first")
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".tmp", dir=folder)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(out: Path | str, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``out`` through ``write_atomic``."""

    write_atomic(out, lambda tmp: tmp.write_text(text, encoding="utf-8", newline=""))


#: Set by the CLI when the process started with stdout closed (``>&-``): a document written to stdout
#: then is an error (exit 2, as ``cat file >&-`` fails), while status lines are discarded.
STDOUT_WAS_CLOSED = False


def write_stdout(text: str) -> None:
    """Write ``text`` to stdout whole, or raise ``BrokenPipeError`` when its reader went away.

    Through ``os.write`` in a loop on stdout's file descriptor: Python's buffered stdout, given a document
    larger than the pipe's buffer whose reader closed early (``metrics r.ncu-rep -f csv | head -c 10``,
    787 KB), wrote the first 64 KB and exited 0 without an error on this machine (strace: one partial
    write, SIGPIPE, exit 0), so a cut document looked delivered. A stream without a file descriptor (a
    test's capture) is written as a stream. The CLI turns ``BrokenPipeError`` into exit 141.
    """
    fd = _stdout_fd()
    if fd is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    _write_fd(fd, text.encode(sys.stdout.encoding or "utf-8", errors="surrogateescape"))


def _stdout_fd() -> int | None:
    """Stdout's file descriptor, its buffered text flushed first (None: a stream without one, a test's
    capture). Raises ``OutputError`` when the command started with stdout closed."""
    stream = sys.stdout
    if stream is None or STDOUT_WAS_CLOSED:
        raise OutputError(
            "stdout is closed (>&-): the document was not written", path="-", hint="pass -o FILE, or leave "
            "stdout open"
        )
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    stream.flush()
    return fd


def _write_fd(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd`` (``os.write`` in a loop: ``BrokenPipeError`` when the reader went away)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


__all__ = ["protect_inputs", "write_atomic", "write_stdout", "write_text_atomic"]
