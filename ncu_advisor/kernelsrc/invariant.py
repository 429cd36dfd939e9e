"""Static analysis: ``tl.load`` calls whose address does not depend on an enclosing loop.

Such a load is repeated, with the same addresses, on every iteration of that loop. In seed 001's fused
conv the whole input gather (``x_ptrs``) sits inside ``for oc0 in range(0, C_out, BLOCK_N)`` and never
uses ``oc0``: the input is read ``ceil(C_out / BLOCK_N)`` times. A ``BLOCK_N`` that covers the loop's
extent makes the loop run once and removes the repeat.

The file is parsed with ``ast``, never imported or run. Dependence is tracked by name: a name is
*variant* in a loop when it is the loop variable, is assigned inside the loop from a variant name, is
updated in place inside the loop (``x_ptrs += ...``: loop-carried), or is the variable of an inner loop
whose range reads a variant name. A load is invariant when neither its pointer nor its mask reads a
variant name. Known limits: attribute and subscript stores are not followed; a value carried through a
function call is assumed to depend on all its arguments.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from ncu_advisor.errors import read_kernel_text
from ncu_advisor.kernelsrc.parse import parse_kernel_source

_RANGE_CALLS = ("range", "static_range")


@dataclass(frozen=True)
class InvariantLoad:
    """One ``tl.load`` repeated on every iteration of a loop it does not depend on.

    Attributes:
        kernel: the ``@triton.jit`` function.
        loop_line: the ``for`` statement's line.
        loop_var: the loop variable (``oc0``).
        loop_bound: the range's upper bound as written (``C_out``), or None when not ``range(a, b, step)``.
        loop_step: the step as written (``BLOCK_N``), or None.
        step_param: the ``tl.constexpr`` parameter that is the step (``BLOCK_N``), or None.
        load_line: the ``tl.load`` call's line.
        pointer: the load's pointer expression as written (``x_ptrs``).
    """

    kernel: str
    loop_line: int
    loop_var: str
    loop_bound: str | None
    loop_step: str | None
    step_param: str | None
    load_line: int
    pointer: str

    def describe(self, extent: int | None = None) -> str:
        """One sentence naming the loop, the load and the parameter change."""
        text = (
            f"{self.kernel}: the tl.load of {self.pointer} (line {self.load_line}) does not depend on "
            f"'{self.loop_var}' and is repeated on every iteration of the loop at line {self.loop_line}"
        )
        if self.step_param and self.loop_bound:
            target = suggested_block(extent) if extent is not None else None
            value = f"{target} (>= {self.loop_bound} = {extent})" if target is not None else self.loop_bound
            text += f"; set {self.step_param} -> {value} so the loop runs once"
        return text


def suggested_block(extent: int) -> int:
    """The smallest power of two >= ``extent`` (Triton block sizes are powers of two)."""
    return 1 << max(0, int(extent) - 1).bit_length()


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_jit(function: ast.FunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        text = ast.unparse(target)
        if text.split(".")[-1] == "jit":
            return True
    return False


def _is_range(call: ast.expr) -> bool:
    return isinstance(call, ast.Call) and ast.unparse(call.func).split(".")[-1] in _RANGE_CALLS


def _is_load(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    text = ast.unparse(node.func)
    return text.split(".")[-1] == "load" and text.split(".")[0] in ("tl", "triton")


def _targets(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [n for element in node.elts for n in _targets(element)]
    return []


def _variant_names(loop: ast.For) -> set[str]:
    """Names whose value changes from one iteration of ``loop`` to the next (fixed point)."""
    variant = set(_targets(loop.target))
    body = [n for statement in loop.body for n in ast.walk(statement)]
    for node in body:
        if isinstance(node, ast.AugAssign):
            variant.update(_targets(node.target))
    changed = True
    while changed:
        changed = False
        for node in body:
            assigned: list[str] = []
            reads: set[str] = set()
            if isinstance(node, ast.Assign):
                assigned = [n for t in node.targets for n in _targets(t)]
                reads = _names(node.value)
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                assigned, reads = _targets(node.target), _names(node.value)
            elif isinstance(node, ast.AugAssign):
                assigned, reads = _targets(node.target), _names(node.value)
            elif isinstance(node, ast.For):
                assigned, reads = _targets(node.target), _names(node.iter)
            new = [name for name in assigned if name not in variant and reads & variant]
            if new:
                variant.update(new)
                changed = True
    return variant


def _range_parts(loop: ast.For) -> tuple[str | None, str | None]:
    if not _is_range(loop.iter):
        return None, None
    args = loop.iter.args  # type: ignore[attr-defined]
    if len(args) >= 2:
        return ast.unparse(args[1]), ast.unparse(args[2]) if len(args) >= 3 else None
    if len(args) == 1:
        return ast.unparse(args[0]), None
    return None, None


def find_invariant_loads_in_function(function: ast.FunctionDef) -> list[InvariantLoad]:
    """The invariant loads of one ``@triton.jit`` function, outermost loop first."""
    arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
    constexpr = {
        a.arg
        for a in arguments
        if a.annotation is not None and ast.unparse(a.annotation).split(".")[-1] == "constexpr"
    }
    found: list[InvariantLoad] = []
    for loop in (n for n in ast.walk(function) if isinstance(n, ast.For)):
        variant = _variant_names(loop)
        bound, step = _range_parts(loop)
        step_param = step if step in constexpr else None
        for node in (n for statement in loop.body for n in ast.walk(statement)):
            if not isinstance(node, ast.Call) or not _is_load(node):
                continue
            pointer = (
                node.args[0]
                if node.args
                else next((k.value for k in node.keywords if k.arg == "pointer"), None)
            )
            if pointer is None:
                continue
            reads = _names(pointer)
            for keyword in node.keywords:
                if keyword.arg == "mask":
                    reads |= _names(keyword.value)
            if reads & variant:
                continue
            found.append(
                InvariantLoad(
                    kernel=function.name,
                    loop_line=loop.lineno,
                    loop_var=",".join(_targets(loop.target)),
                    loop_bound=bound,
                    loop_step=step,
                    step_param=step_param,
                    load_line=node.lineno,
                    pointer=ast.unparse(pointer),
                )
            )
    found.sort(key=lambda f: (f.loop_line, f.load_line))
    return found


def find_invariant_loads_in_source(text: str, filename: str = "<source>") -> list[InvariantLoad]:
    """Every invariant load of every ``@triton.jit`` function in kernel source text.

    Raises:
        KernelFileError: the text is not valid Python.
    """
    tree = parse_kernel_source(text, filename)
    found: list[InvariantLoad] = []
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and _is_jit(n)):
        found.extend(find_invariant_loads_in_function(function))
    return found


def find_invariant_loads(path: Path | str) -> list[InvariantLoad]:
    """Every invariant load of a kernel file (parsed, never run).

    Raises:
        KernelFileError: the file cannot be read or parsed.
    """
    text = read_kernel_text(path := Path(path))
    return find_invariant_loads_in_source(text, str(path))


def kernel_assignments(text: str, kernel: str) -> dict[str, str]:
    """Simple ``name = expr`` assignments of one jit function (first one wins), as source text."""
    tree = ast.parse(text)
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == kernel):
        assigned: dict[str, str] = {}
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                assigned.setdefault(node.targets[0].id, ast.unparse(node.value))
        return assigned
    return {}


def resolve_extent(
    expression: str, values: dict[str, int], assignments: dict[str, str] | None = None, depth: int = 0
) -> int | None:
    """The integer value of a loop bound such as ``C_out`` or ``K`` (``K = C_in * KH * KW``).

    Only integer literals, names (from ``values``, else followed through ``assignments``) and ``+ - * //``
    are understood; anything else gives None. Nothing is evaluated with ``eval``.
    """
    if depth > 10:
        return None
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return None
    return _evaluate(node, values, assignments or {}, depth)


def _evaluate(node: ast.AST, values: dict[str, int], assignments: dict[str, str], depth: int) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in values:
            return values[node.id]
        if node.id in assignments:
            return resolve_extent(assignments[node.id], values, assignments, depth + 1)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)):
        left = _evaluate(node.left, values, assignments, depth)
        right = _evaluate(node.right, values, assignments, depth)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        return left // right if right else None
    return None


def loop_extents(text: str, kernel: str) -> list[tuple[str, str]]:
    """``(step parameter, bound as written)`` of each ``for v in range(start, BOUND, BLOCK_X)`` loop of
    ``kernel``
    whose step is a ``tl.constexpr`` parameter: the BLOCK covers at most the bound's extent."""
    tree = ast.parse(text)
    found: list[tuple[str, str]] = []
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == kernel):
        arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
        constexpr = {
            a.arg
            for a in arguments
            if a.annotation is not None and ast.unparse(a.annotation).split(".")[-1] == "constexpr"
        }
        for loop in (n for n in ast.walk(function) if isinstance(n, ast.For)):
            bound, step = _range_parts(loop)
            if bound is not None and step in constexpr:
                found.append((step, bound))
    return found
