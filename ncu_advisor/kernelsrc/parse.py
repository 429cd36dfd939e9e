"""Parsing a kernel file's text with ``ast`` (never importing or running it), with the one error every
kernel-source analysis raises for text that is not Python. Shared by ``facts`` and ``invariant``."""

from __future__ import annotations

import ast

from ncu_advisor.errors import KernelFileError

__all__ = ["parse_kernel_source"]


def parse_kernel_source(text: str, filename: str = "<source>") -> ast.Module:
    """Parse kernel source text (never executes it).

    Raises:
        KernelFileError: the text is not valid Python, with the line of the error.
    """
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError as exc:
        raise KernelFileError(
            f"line {exc.lineno}: not valid Python ({exc.msg})", path=filename, hint="fix the syntax error"
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise KernelFileError(f"cannot be parsed ({type(exc).__name__})", path=filename) from None
    return tree
