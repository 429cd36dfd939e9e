"""Loop and argument facts of one ``@triton.jit`` function (``ast`` only, nothing is run).

* chunk loops: ``for start in range(a, N, BLOCK)`` (also ``tl.range``) whose step is a ``tl.constexpr``
  parameter: the kernel walks an extent ``N`` in chunks of ``BLOCK`` elements. Whether the chunk is "far
  smaller than the row" is measured, not read: the rule compares the chunk with the bytes each program moves.
* size parameters: non-constexpr parameters used as sizes (compared with offsets in a mask, or passed to
  ``range``/``tl.range``/``tl.cdiv``), never load/store base pointers or strides. These are the only
  arguments an ``@triton.autotune`` ``key`` should name: a tensor there re-tunes whenever the tensor object
  changes, a float (``eps``) on every new value.
"""

from __future__ import annotations

import ast

_RANGE_CALLS = frozenset({"range", "tl.range", "triton.language.range", "tl.static_range"})
_SIZE_CALLS = _RANGE_CALLS | {"tl.cdiv", "triton.cdiv", "cdiv"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def chunk_loops(function: ast.FunctionDef, constexpr: list[str]) -> list[tuple[str, int]]:
    """``(step parameter, line)`` of each loop stepping over a range by a constexpr parameter."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(function):
        if not (isinstance(node, ast.For) and isinstance(node.iter, ast.Call)):
            continue
        if _dotted(node.iter.func) not in _RANGE_CALLS or len(node.iter.args) < 3:
            continue
        step = node.iter.args[2]
        if isinstance(step, ast.Name) and step.id in constexpr:
            found.append((step.id, node.lineno))
    return found


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _memory_bases(function: ast.FunctionDef, params: set[str]) -> set[str]:
    """Parameters that appear in the pointer argument of a ``tl.load``/``tl.store``/``tl.atomic_*``."""
    assigned: dict[str, ast.expr] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigned.setdefault(node.targets[0].id, node.value)
    bases: set[str] = set()
    for node in ast.walk(function):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        called = _dotted(node.func).split(".")[-1]
        if called not in ("load", "store", "make_block_ptr") and not called.startswith("atomic_"):
            continue
        pending = [node.args[0]]
        seen: set[str] = set()
        while pending:
            names = _names(pending.pop())
            for name in names - seen:
                seen.add(name)
                if name in params:
                    bases.add(name)
                elif name in assigned:
                    pending.append(assigned[name])
    return bases


def size_params(function: ast.FunctionDef, params: list[str], constexpr: list[str]) -> list[str]:
    """Non-constexpr parameters used as sizes (see the module docstring), in parameter order.

    A parameter that also appears in a pointer expression counts as a size only when it is compared or
    passed to a range (``offs < N`` and ``X + row * N`` both use ``N``); pointer bases and ``stride*`` never.
    """
    candidates = set(params) - set(constexpr)
    used_as_size: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                used_as_size |= _names(operand) & candidates
        elif isinstance(node, ast.Call) and _dotted(node.func) in _SIZE_CALLS:
            for argument in node.args:
                used_as_size |= _names(argument) & candidates
    pointer_bases = _memory_bases(function, candidates)
    pointers_only = {p for p in pointer_bases if p.lower().endswith("ptr") or p not in used_as_size}
    return [
        p
        for p in params
        if p in used_as_size and p not in pointers_only and not p.lower().startswith("stride")
    ]
