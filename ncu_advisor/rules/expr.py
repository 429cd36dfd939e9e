"""A safe, vectorised expression evaluator for rule files.

Expressions are parsed with ``ast.parse(mode="eval")`` and checked node by node against a whitelist
before anything is evaluated; evaluation walks the checked tree itself. Nothing is ever passed to
``eval``/``exec``/``compile``, so a rule file cannot run code.

Allowed: numbers (and ``True``/``False``), names, ``+ - * / // %``, ``**`` with a literal exponent of
at most ``MAX_EXPONENT`` in magnitude, unary ``-``/``+``, ``not``, ``and``/``or``, comparisons (chained),
``a if c else b``, and calls to ``min``, ``max``, ``abs``. Everything else (attribute access, subscripts,
other calls, lambdas, comprehensions, strings, f-strings, walrus ...) is rejected with a ``RuleError``.

Values are numpy arrays (one element per table row) or Python floats, so one evaluation covers every
kernel launch of a table at once. Division by zero gives ``inf``/``nan`` instead of raising; a
comparison with ``nan`` is false. ``Expression.zero_divisions`` tells which rows divide by zero in a
branch that counts (not in the untaken side of ``a if c else b`` nor after a false ``and`` guard), so the
rule engine skips those rows with a stated reason instead of letting ``inf`` fire a rule.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ncu_advisor.errors import RuleError

MAX_LENGTH = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_EXPONENT = 16
MAX_CONSTANT = 1e18

ALLOWED_FUNCTIONS = ("min", "max", "abs")

_BINARY_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}

_COMPARE_OPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its tree and the free names it reads."""

    text: str
    tree: ast.Expression
    names: frozenset[str]

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        """Evaluate over ``env`` (name -> float or numpy array); returns a float or an array.

        Raises:
            RuleError: a name is not in ``env``.
        """
        with np.errstate(all="ignore"):
            return _eval(self.tree.body, env, self.text)

    def zero_divisions(self, env: Mapping[str, Any]) -> Any:
        """Where a ``/``, ``//`` or ``%`` has a zero divisor in an evaluated branch: bool or bool array.

        Raises:
            RuleError: a name is not in ``env``.
        """
        with np.errstate(all="ignore"):
            return _zero_divisions(self.tree.body, env, self.text, True)


def _fail(text: str, problem: str, where: str | None) -> RuleError:
    location = f" in {where}" if where else ""
    return RuleError(
        f"expression {text!r}{location}: {problem}",
        hint="expressions may use numbers, names, + - * / // % **, comparisons, and/or/not, "
        "'a if c else b' and min/max/abs only",
    )


def parse_expression(text: object, *, where: str | None = None) -> Expression:
    """Parse and check an expression; nothing is evaluated.

    Args:
        text: the expression source (numbers are accepted and turned into text).
        where: what the expression belongs to (``"NA101 when"``), for error messages.

    Raises:
        RuleError: the text is not an expression or uses anything outside the whitelist.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise _fail(str(text)[:80], f"must be a string or a number, not {type(text).__name__}", where)
    source = str(text)
    if len(source) > MAX_LENGTH:
        raise _fail(source[:60] + "...", f"longer than {MAX_LENGTH} characters", where)
    if not source.strip():
        raise _fail(source, "is empty", where)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise _fail(source, f"is not a valid expression ({exc.msg})", where) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise _fail(source[:60], f"cannot be parsed ({type(exc).__name__})", where) from None
    names: set[str] = set()
    count = [0]
    _check(tree.body, source, where, names, count, 0)
    return Expression(text=source, tree=tree, names=frozenset(names))


def _check(
    node: ast.AST, text: str, where: str | None, names: set[str], count: list[int], depth: int
) -> None:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise _fail(text[:60], f"has more than {MAX_NODES} parts", where)
    if depth > MAX_DEPTH:
        raise _fail(text[:60], f"is nested deeper than {MAX_DEPTH} levels", where)
    deeper = depth + 1
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return
        if not isinstance(value, (int, float)) or isinstance(value, complex):
            raise _fail(text, f"constant {value!r} is not a number", where)
        if not np.isfinite(float(value)) or abs(value) > MAX_CONSTANT:
            raise _fail(text, f"constant {value!r} is out of range", where)
        return
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise _fail(text, f"name {node.id!r} may not start with '_'", where)
        if node.id in ALLOWED_FUNCTIONS:
            raise _fail(text, f"{node.id!r} can only be called", where)
        names.add(node.id)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY_OPS:
            raise _fail(text, f"operator {type(node.op).__name__} is not allowed", where)
        if isinstance(node.op, ast.Pow):
            exponent = _literal_number(node.right)
            if exponent is None:
                raise _fail(text, "the exponent of ** must be a literal number", where)
            if abs(exponent) > MAX_EXPONENT:
                raise _fail(text, f"exponent {exponent} exceeds {MAX_EXPONENT}", where)
        _check(node.left, text, where, names, count, deeper)
        _check(node.right, text, where, names, count, deeper)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            raise _fail(text, f"operator {type(node.op).__name__} is not allowed", where)
        _check(node.operand, text, where, names, count, deeper)
        return
    if isinstance(node, ast.BoolOp):
        for operand in node.values:
            _check(operand, text, where, names, count, deeper)
        return
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE_OPS:
                raise _fail(text, f"comparison {type(op).__name__} is not allowed", where)
        _check(node.left, text, where, names, count, deeper)
        for comparator in node.comparators:
            _check(comparator, text, where, names, count, deeper)
        return
    if isinstance(node, ast.IfExp):
        for part in (node.test, node.body, node.orelse):
            _check(part, text, where, names, count, deeper)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in ALLOWED_FUNCTIONS:
            raise _fail(text, "calls other than min(), max(), abs() are not allowed", where)
        if node.keywords:
            raise _fail(text, "keyword arguments are not allowed", where)
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise _fail(text, "*arguments are not allowed", where)
        if node.func.id == "abs" and len(node.args) != 1:
            raise _fail(text, "abs() takes exactly one argument", where)
        if node.func.id in ("min", "max") and len(node.args) < 2:
            raise _fail(text, f"{node.func.id}() needs at least two arguments", where)
        for arg in node.args:
            _check(arg, text, where, names, count, deeper)
        return
    raise _fail(text, f"{type(node).__name__} is not allowed", where)


def _literal_number(node: ast.AST) -> float | None:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _literal_number(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    return None


def _as_float(value: Any) -> Any:
    """Booleans and ints become floats so that arithmetic never overflows or stays boolean."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64, copy=False) if value.dtype != np.float64 else value
    return float(value)


def _truth(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype == bool:
            return value
        return np.logical_and(value != 0, ~np.isnan(value.astype(np.float64, copy=False)))
    number = float(value)
    return bool(number != 0 and number == number)


def _eval(node: ast.AST, env: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # _check admitted only numbers and booleans
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise RuleError(f"expression {text!r}: no value for {node.id!r}")
        return env[node.id]
    if isinstance(node, ast.BinOp):
        left = _as_float(_eval(node.left, env, text))
        right = _as_float(_eval(node.right, env, text))
        result = _BINARY_OPS[type(node.op)](left, right)
        return result if isinstance(result, np.ndarray) else float(result)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env, text)
        if isinstance(node.op, ast.Not):
            truth = _truth(operand)
            return np.logical_not(truth) if isinstance(truth, np.ndarray) else not truth
        operand = _as_float(operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = _truth(_eval(node.values[0], env, text))
        for value in node.values[1:]:
            result = combine(result, _truth(_eval(value, env, text)))
        return result
    if isinstance(node, ast.Compare):
        left = _as_float(_eval(node.left, env, text))
        compared: Any = True
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _as_float(_eval(comparator, env, text))
            compared = np.logical_and(compared, _COMPARE_OPS[type(op)](left, right))
            left = right
        return compared if isinstance(compared, np.ndarray) else bool(compared)
    if isinstance(node, ast.IfExp):
        test = _truth(_eval(node.test, env, text))
        body = _as_float(_eval(node.body, env, text))
        orelse = _as_float(_eval(node.orelse, env, text))
        result = np.where(test, body, orelse)
        return result if result.ndim else float(result)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_as_float(_eval(arg, env, text)) for arg in node.args]
        if node.func.id == "abs":
            return np.abs(args[0]) if isinstance(args[0], np.ndarray) else abs(args[0])
        reduce = np.fmin if node.func.id == "min" else np.fmax
        reduced = args[0]
        for arg in args[1:]:
            reduced = reduce(reduced, arg)
        return reduced if isinstance(reduced, np.ndarray) else float(reduced)
    raise RuleError(f"expression {text!r}: {type(node).__name__} is not allowed")  # unreachable after _check


_DIVISIONS = (ast.Div, ast.FloorDiv, ast.Mod)


def _zero_divisions(node: ast.AST, env: Mapping[str, Any], text: str, gate: Any) -> Any:
    """Rows (under ``gate``, the rows where ``node`` is evaluated) that divide by zero inside ``node``."""
    found: Any = False
    if isinstance(node, ast.BinOp) and isinstance(node.op, _DIVISIONS):
        found = np.logical_and(gate, _as_float(_eval(node.right, env, text)) == 0)
    if isinstance(node, ast.IfExp):
        test = _truth(_eval(node.test, env, text))
        found = np.logical_or(found, _zero_divisions(node.test, env, text, gate))
        found = np.logical_or(found, _zero_divisions(node.body, env, text, np.logical_and(gate, test)))
        return np.logical_or(
            found, _zero_divisions(node.orelse, env, text, np.logical_and(gate, np.logical_not(test)))
        )
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            found = np.logical_or(found, _zero_divisions(value, env, text, gate))
            truth = _truth(_eval(value, env, text))
            gate = np.logical_and(gate, truth if isinstance(node.op, ast.And) else np.logical_not(truth))
        return found
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.operator, ast.cmpop, ast.unaryop, ast.boolop, ast.expr_context)):
            found = np.logical_or(found, _zero_divisions(child, env, text, gate))
    return found
