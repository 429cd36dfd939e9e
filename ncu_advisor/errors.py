"""One exception family. Each error carries the exit code the CLI returns for it.

Exit codes (documented in the README):
    0  success, no finding at or above ``--fail-on``
    1  findings at or above ``--fail-on`` / a regression in ``compare``
    2  bad input: a missing or malformed report, rule file, kernel file or run directory; usage errors
    3  the environment cannot profile: no GPU, no ncu, ncu too old, counter permission denied
"""

from __future__ import annotations

from pathlib import Path


def printable(text: str) -> str:
    """``text`` with the undecodable bytes of a file name (surrogate escapes, ``\\udcff``) as ``\\xff``.

    A path from the command line keeps bytes that are not UTF-8 as lone surrogates; printed, written to
    JSON/XML or handed to pyarrow they raise ``UnicodeEncodeError``. Shown as ``\\xNN`` they print anywhere.
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_utf8(text: str) -> bool:
    """True when ``text`` holds no surrogate escapes (every byte of the name it came from was UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class AdvisorError(Exception):
    """Base of every error ncu-advisor reports to the user.

    Args:
        message: what failed and why, one line.
        path: the file or directory the problem is in, if any.
        hint: what to do next.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str | None = None) -> None:
        self.message = message
        self.path = printable(str(path)) if path is not None else None
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class InputError(AdvisorError):
    """A file or directory given to ncu-advisor cannot be used (exit 2)."""


class ReportError(InputError):
    """A report (.ncu-rep or CSV) is missing, corrupt, truncated or has no kernels."""


class RuleError(InputError):
    """A rule file is malformed, unsafe or refers to unknown metrics."""


class RunError(InputError):
    """A run directory is incomplete, unreadable or of an unknown format version."""


class KernelFileError(InputError):
    """A kernel file cannot be parsed or has no variants."""


class OutputError(InputError):
    """An output path cannot be written."""


class EnvironmentNotReady(AdvisorError):
    """The machine cannot profile: no GPU, no ncu, an ncu too old, counters not permitted (exit 3)."""

    exit_code = 3


#: The largest kernel file read (bytes). The largest shipped kernel file (kernels/fused.py) is 21 kB and
#: KernelBench's largest level-3 problem about 20 kB; 16 MB leaves room for generated code while a
#: ``/dev/zero`` or a runaway file is refused before it is read.
MAX_KERNEL_FILE_BYTES = 16 << 20
#: The largest rule file read (bytes). The largest shipped rule (rules/NA320-*.yaml) is under 5 kB.
MAX_RULE_FILE_BYTES = 1 << 20


def check_regular_file(
    path: Path,
    *,
    what: str,
    error: type[InputError] = InputError,
    hint: str | None = None,
    max_bytes: int | None = None,
) -> None:
    """Refuse, before reading a byte, what is not a plain file of a sane size (exit 2 with ``error``).

    A FIFO would hang the reader forever and ``/dev/zero`` (or a link to it) would grow without bound;
    a directory or a missing path gets its own wording. Links are followed (``stat``).

    Args:
        path: the file to check.
        what: the kind of file in words, e.g. ``"kernel file"`` (used in the message).
        error: the ``InputError`` subclass to raise.
        hint: what to do instead (default: save the content to a regular file).
        max_bytes: refuse larger files (None: no cap).

    Raises:
        ``error``: missing, unreadable, a directory, a pipe/socket/device, or over ``max_bytes``.
    """
    import stat

    try:
        info = Path(path).stat()
    except FileNotFoundError:
        raise error(f"no such {what}", path=path, hint=hint or "check the path") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise error(f"cannot read the {what} ({reason})", path=path, hint=hint or "check the path") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"is a directory, not a {what}", path=path, hint=hint or f"pass the {what} itself")
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"is not a regular file (a pipe, socket or device): not read as a {what}",
            path=path,
            hint=hint or f"save the {what} to a regular file and pass that file",
        )
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(
            f"is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit for a {what}",
            path=path,
            hint=hint or f"pass the {what} itself, not another file",
        )


def check_kernel_file(path: Path) -> None:
    """``check_regular_file`` for a Triton kernel file (``KernelFileError``, ``MAX_KERNEL_FILE_BYTES``)."""
    check_regular_file(path, what="kernel file", error=KernelFileError, max_bytes=MAX_KERNEL_FILE_BYTES)


def read_kernel_text(path: Path, *, hint: str | None = None) -> str:
    """The text of a Triton kernel file, after ``check_kernel_file`` (Python source is UTF-8 by default).

    Args:
        path: the kernel file.
        hint: what to do instead when the path is not a plain file (``check_regular_file``'s ``hint``).

    Raises:
        KernelFileError: missing, not a plain file, over ``MAX_KERNEL_FILE_BYTES``, unreadable, or not UTF-8
            (the message names the byte offset and says to save the file as UTF-8).
    """
    check_regular_file(
        path, what="kernel file", error=KernelFileError, hint=hint, max_bytes=MAX_KERNEL_FILE_BYTES
    )
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise KernelFileError(
            f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
            path=path,
            hint="save the kernel file as UTF-8, the encoding Python and Triton read source in",
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise KernelFileError(
            f"cannot read the kernel file ({reason})", path=path, hint="check the file's permissions"
        ) from None


def yaml_problem(exc: Exception) -> str:
    """One line for a PyYAML error (``yaml.YAMLError``): ``line N: malformed YAML: PROBLEM`` (PyYAML's own
    text spans several lines, with a caret and ``in "<unicode string>"``)."""
    mark = getattr(exc, "problem_mark", None)
    line = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{line}malformed YAML: {problem}"
