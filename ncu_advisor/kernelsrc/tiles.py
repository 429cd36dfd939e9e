"""The tile each memory access of a ``@triton.jit`` function moves, as the BLOCK constexprs that shape it
(``ast`` only, nothing is run).

A program's loads and stores take tiles whose shape is set by ``tl.arange(0, BLOCK_*)`` ranges (broadcast
with ``[:, None]`` / ``[None, :]`` into 2-D tiles) or by a block pointer's ``block_shape``. The elements one
access moves per program are the product of those BLOCK values: ``rows = pid * BLOCK_M + tl.arange(0,
BLOCK_M)`` and ``cols = tl.arange(0, BLOCK_D)`` in ``src + rows[:, None] * stride + cols[None, :]`` make a
``BLOCK_M x BLOCK_D`` tile. ``src_block_max`` names the largest single BLOCK, which is not the elements per
program when a tile has two dimensions (a 4 x 256 tile moves 1,024 elements, not 256).
"""

from __future__ import annotations

import ast

from ncu_advisor.kernelsrc.loops import _dotted

_ACCESS_CALLS = frozenset({"load", "store"})


def _assignments(function: ast.FunctionDef) -> dict[str, list[ast.expr]]:
    """Every value assigned to each local name (``=``, ``+=``), to follow pointer arithmetic back."""
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            assigned.setdefault(node.target.id, []).append(node.value)
    return assigned


def _shape_names(expression: ast.expr, constexpr: set[str]) -> set[str]:
    """Constexpr names used as ``tl.arange`` ends or ``block_shape`` entries inside ``expression``."""
    found: set[str] = set()
    for node in ast.walk(expression):
        if not isinstance(node, ast.Call):
            continue
        called = _dotted(node.func).split(".")[-1]
        if called == "arange":
            ends = node.args[1:2] or [k.value for k in node.keywords if k.arg == "end"]
            found |= {
                n.id for e in ends for n in ast.walk(e) if isinstance(n, ast.Name) and n.id in constexpr
            }
        elif called == "make_block_ptr":
            shapes = [k.value for k in node.keywords if k.arg == "block_shape"] or node.args[5:6]
            found |= {
                n.id for s in shapes for n in ast.walk(s) if isinstance(n, ast.Name) and n.id in constexpr
            }
    return found


def access_tiles(function: ast.FunctionDef, constexpr: list[str]) -> list[tuple[str, ...]]:
    """Per ``tl.load`` / ``tl.store`` / ``tl.atomic_*`` (in source order): the sorted BLOCK constexprs that
    shape its pointer tile; accesses without any (scalar loads) are left out."""
    names = set(constexpr)
    assigned = _assignments(function)
    tiles: list[tuple[str, ...]] = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        called = _dotted(node.func)
        last = called.split(".")[-1]
        if called.split(".")[0] not in ("tl", "triton") or not (
            last in _ACCESS_CALLS or last.startswith("atomic_")
        ):
            continue
        pointer = (
            node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "pointer"), None)
        )
        if pointer is None:
            continue
        shape: set[str] = set()
        pending: list[ast.expr] = [pointer]
        seen: set[str] = set()
        while pending:
            expression = pending.pop()
            shape |= _shape_names(expression, names)
            for name in {n.id for n in ast.walk(expression) if isinstance(n, ast.Name)} - seen:
                seen.add(name)
                pending.extend(assigned.get(name, []))
        if shape:
            tiles.append(tuple(sorted(shape)))
    return tiles
