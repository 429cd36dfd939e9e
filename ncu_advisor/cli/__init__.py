"""The command line: a thin typer layer over the core.

Each subcommand lives in its own module in this package and registers itself on ``app`` when imported;
``_load_commands`` imports them all. Errors are mapped to exit codes in one place, ``handle_errors``.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from typer.core import TyperGroup

from ncu_advisor import __version__, reserve_standard_fds
from ncu_advisor.errors import AdvisorError, InputError, is_utf8, printable
from ncu_advisor.render import output
from ncu_advisor.render.output import protect_inputs

VERBOSE_FLAGS = ("-v", "--verbose")
QUIET_FLAGS = ("-q", "--quiet")


class _VerboseAnywhere(TyperGroup):
    """Accepts ``-v``/``--verbose`` and ``-q``/``--quiet`` anywhere on the line (before or after the
    command, before ``--``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: the (vendored) click Context
        end = args.index("--") if "--" in args else len(args)
        state.verbose = any(a in VERBOSE_FLAGS for a in args[:end])
        state.quiet = any(a in QUIET_FLAGS for a in args[:end])
        args = [a for a in args[:end] if a not in VERBOSE_FLAGS + QUIET_FLAGS] + args[end:]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_VerboseAnywhere,
    name="ncu-advisor",
    help="Profile Triton kernel variants under Nsight Compute and turn the metrics into tuning advice.",
    no_args_is_help=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
#: Errors only: never silenced by --quiet (which silences ``err_console``'s progress, notes and warnings).
error_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def print_wide(renderable: RenderableType, limit: int = 400) -> None:
    """Print a table at its natural width (up to ``limit`` columns) instead of the console's.

    Piped output (CI logs, ``| tee``) gets an 80-column console, which squashes a many-column table into
    unreadable wrapped cells; a terminal wider than the table is used as it is.
    """
    natural = Measurement.get(out_console, out_console.options.update(width=limit), renderable).maximum
    wide = Console(
        highlight=False,
        width=max(out_console.width, min(natural, limit)),
        force_terminal=out_console.is_terminal or None,
        file=out_console.file,
    )
    wide.print(renderable)


class _State:
    verbose: bool = False
    quiet: bool = False


state = _State()

F = TypeVar("F", bound=Callable[..., Any])


def _input_paths(kwargs: dict[str, Any]) -> list[Path]:
    """Every path argument of a command but its ``output``: the files ``-o`` must never overwrite."""
    paths: list[Path] = []
    for name, value in kwargs.items():
        if name == "output":
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        paths.extend(v for v in values if isinstance(v, Path))
    return paths


def check_utf8_names(paths: list[Path]) -> None:
    """Refuse an input path whose name is not valid UTF-8 (exit 2), before anything reads it.

    Paths become text in the table (``source``), in JSON, SARIF and JUnit, which hold UTF-8 only; a name
    with other bytes raised ``UnicodeEncodeError`` inside pyarrow (a traceback) or read as "the run was
    damaged". ``-o`` may have any name: it is only opened.

    Raises:
        InputError: naming the path with its bytes as ``\\xNN`` and the fix.
    """
    for path in paths:
        if not is_utf8(str(path)):
            raise InputError(
                "the name is not valid UTF-8 (the bytes shown as \\xNN); paths are written into the "
                "tables and the JSON, SARIF and JUnit outputs, which are UTF-8 text",
                path=path,
                hint="rename it, or pass a link with a UTF-8 name to it (ln -s)",
            )


def print_error(text: str) -> None:
    """Print ``error: text`` on stderr; ``text`` is shown literally (``[/]`` in a path is not markup).

    A stderr that cannot be written (EBADF, a full disk) loses the line, never the exit code: the caller
    goes on to exit with the error's code, not 1 from an OSError raised here.
    """
    try:
        error_console.print(f"[bold red]error:[/] {escape(printable(text))}", markup=True)
    except OSError:
        pass


#: Exit status when stdout's reader went away (``ncu-advisor report -o - | head -1``): 128 + SIGPIPE, what
#: a shell reports for git, cat or grep killed by SIGPIPE in the same pipeline. Distinct from 0 (a verdict
#: that was not fully delivered is not "clean") and from 1 (not "findings").
BROKEN_PIPE_EXIT = 141


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (a test's capture): nothing to flush later
        pass


def handle_errors(func: F) -> F:
    """Turn an ``AdvisorError`` into one line on stderr and its exit code; no traceback unless -v.

    An ``OSError`` that escaped the core (a path too long for the file system, a permission denied on
    a path no reader checked) is bad input too: exit 2 with the path and the system's reason.
    The command's path arguments are protected from being overwritten by ``-o`` while it runs.
    A reader that closed stdout early (``| head -1``) ends the command quietly with exit 141
    (``BROKEN_PIPE_EXIT``), never 1 ("findings") and never a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_utf8_names(_input_paths(kwargs))
            with protect_inputs(_input_paths(kwargs)):
                try:
                    return func(*args, **kwargs)
                finally:
                    if sys.stdout is not None:  # None: started with stdout closed (`>&-`)
                        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(BROKEN_PIPE_EXIT) from None
        except AdvisorError as exc:
            if state.verbose:
                traceback.print_exc()
            print_error(exc.render())
            raise typer.Exit(exc.exit_code) from None
        except UnicodeError as exc:  # text no reader checked (a name inside a file): bad input, not a crash
            if state.verbose:
                traceback.print_exc()
            print_error(
                f"text that is not valid UTF-8 ({printable(str(exc))}): check the names of the inputs"
            )
            raise typer.Exit(2) from None
        except OSError as exc:
            if state.verbose:
                traceback.print_exc()
            where = f"{printable(str(exc.filename))}: " if exc.filename else ""
            print_error(f"{where}{exc.strerror or exc} (check the path and its permissions)")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            error_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out_console.print(f"ncu-advisor {__version__}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and debug output."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only results and errors: no progress, notes or warnings on stderr."
    ),
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """ncu-advisor: with no command, runs `recommend` on the latest run or the shipped examples."""
    state.verbose = state.verbose or verbose  # -v and -q are taken off the line by _VerboseAnywhere
    state.quiet = state.quiet or quiet
    err_console.quiet = state.quiet
    if ctx.invoked_subcommand is None:
        default = ctx.command.get_command(ctx, "recommend") or ctx.command.get_command(ctx, "metrics")  # type: ignore[attr-defined]
        if default is None:
            out_console.print(ctx.get_help())
            raise typer.Exit(0)
        # its own arguments are none: sys.argv still holds -q/-v, which the default command does not take
        default.main(args=[], prog_name=ctx.command_path)


def _load_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    Started with stdout or stderr closed (``>&-``, ``2>&-``), Python has None there: status lines written to
    a closed stream are discarded instead of raising AttributeError, but a document meant for stdout is an
    error (exit 2: it was not delivered, as ``cat file >&-`` fails). The
    closed fds themselves got /dev/null on the package's first import (``ncu_advisor.reserve_standard_fds``),
    before any import could open a file onto them.
    """
    reserve_standard_fds()  # done already on the package's import when started as a command
    if sys.stdout is None:
        output.STDOUT_WAS_CLOSED = True  # a document for stdout is then an error (render.output)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    app(args=argv if argv is not None else sys.argv[1:], prog_name="ncu-advisor")
