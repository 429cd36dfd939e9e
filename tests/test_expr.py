"""The rule expression evaluator: whitelist, semantics, vectorisation, and hostile input (hypothesis)."""

from __future__ import annotations

import builtins
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncu_advisor.errors import RuleError
from ncu_advisor.rules.expr import MAX_EXPONENT, parse_expression


def evaluate(text: str, **env: object) -> object:
    return parse_expression(text).evaluate(env)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("7 // 2", 3.0),
        ("7 % 4", 3.0),
        ("2 ** 10", 1024.0),
        ("-3 + +1", -2.0),
        ("min(3, 1, 2)", 1.0),
        ("max(3, 1, 2)", 3.0),
        ("abs(-4.5)", 4.5),
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("not 0", True),
        ("1 and 0", False),
        ("0 or 2", True),
        ("5 if 1 > 0 else 6", 5.0),
        ("True + 1", 2.0),
    ],
)
def test_scalar_semantics_match_python(text: str, expected: object) -> None:
    assert evaluate(text) == expected


def test_vectorised_over_arrays() -> None:
    registers = np.array([187.0, 40.0, 18.0, np.nan])
    fired = evaluate("registers > 128 or registers < 20", registers=registers)
    assert fired.tolist() == [True, False, True, False]  # NaN compares false
    limit = evaluate("min(a, b, c)", a=np.array([2.0, 8.0]), b=np.array([3.0, 1.0]), c=4)
    assert limit.tolist() == [2.0, 1.0]
    chosen = evaluate("x if x > 1 else -x", x=np.array([3.0, -2.0]))
    assert chosen.tolist() == [3.0, 2.0]


def test_division_by_zero_gives_inf_not_an_exception() -> None:
    assert evaluate("1 / z", z=0.0) == float("inf")
    values = evaluate("a / b", a=np.array([1.0, 0.0]), b=np.array([0.0, 0.0]))
    assert np.isinf(values[0]) and np.isnan(values[1])


def test_names_are_collected() -> None:
    expression = parse_expression("registers > 128 and min(limit_a, gpu_sm_count) < src_num_loads")
    assert expression.names == {"registers", "limit_a", "gpu_sm_count", "src_num_loads"}


def test_missing_name_raises_rule_error() -> None:
    with pytest.raises(RuleError, match="no value for 'x'"):
        evaluate("x + 1")


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo hacked')",
        "open('/etc/passwd')",
        "().__class__.__bases__[0].__subclasses__()",
        "x.real",
        "x[0]",
        "lambda: 1",
        "[i for i in range(3)]",
        "{1: 2}",
        "'text'",
        "f'{x}'",
        "(y := 3)",
        "2 ** x",
        f"2 ** {MAX_EXPONENT + 1}",
        "9 ** 9 ** 9",
        "min(*x)",
        "max(1)",
        "abs(1, 2)",
        "min(x, key=1)",
        "1 in (1, 2)",
        "x is None",
        "1 << 2",
        "1 & 2",
        "~1",
        "_private",
        "min",
        "1e400",
        "x if",
        "",
        "   ",
        "a; b",
    ],
)
def test_hostile_and_unsupported_input_is_rejected_at_parse_time(text: str) -> None:
    with pytest.raises(RuleError):
        parse_expression(text)


def test_deep_nesting_and_long_input_are_rejected() -> None:
    with pytest.raises(RuleError):
        parse_expression("(" * 300 + "1" + ")" * 300)
    with pytest.raises(RuleError):
        parse_expression("-" * 100 + "1")
    with pytest.raises(RuleError):
        parse_expression("+".join(["1"] * 1500))


def test_nothing_is_executed_when_a_hostile_expression_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(builtins, "__import__", lambda *a, **k: calls.append("import"))  # type: ignore[arg-type]
    try:
        with pytest.raises(RuleError):
            parse_expression("__import__('os').system('touch /tmp/pwned')")
    finally:
        monkeypatch.undo()
    assert calls == []


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=string.printable, max_size=120))
def test_fuzz_random_text_only_raises_rule_error(text: str) -> None:
    try:
        expression = parse_expression(text)
    except RuleError:
        return
    env = {name: np.array([1.0, -2.0, 0.0]) for name in expression.names}
    try:
        expression.evaluate(env)
    except RuleError:
        pass


_atoms = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["x", "y", "gpu_sm_count", "src_num_loads", "__class__", "__import__", "True"]),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(
        children,
        st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<", ">=", "==", "and", "or", ".", "[", "<<"]),
        children,
    )
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"not {c}"),
        children.map(lambda c: f"-({c})"),
        st.tuples(children, children).map(lambda t: f"min({t[0]}, {t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(st.sampled_from(["abs", "eval", "exec", "getattr", "max"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
    )


@settings(max_examples=400, deadline=None)
@given(st.recursive(_atoms, _combine, max_leaves=25))
def test_fuzz_random_expression_trees_never_escape(text: str) -> None:
    try:
        expression = parse_expression(text)
    except RuleError:
        return
    assert not any(name.startswith("_") for name in expression.names)
    assert not {"eval", "exec", "getattr"} & set(expression.names)
    env = {name: np.array([3.0, -1.5, 0.0]) for name in expression.names}
    result = expression.evaluate(env)
    assert isinstance(result, (float, bool, np.ndarray, np.bool_))
