"""The package's shape (docs/architecture.md): no import cycle, data flowing one way, small modules and
functions. Imports are read with ``ast`` from the source; those under ``if TYPE_CHECKING:`` are types only
and never run. Import-time imports (module level) must form no cycle at all; counting the imports made
inside functions too, the only cycles are the ones listed in ``KNOWN_LAZY_CYCLES``, each with its reason."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ncu_advisor"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

#: Cycles closed only by imports inside functions (no import-time cycle), each with its reason. Empty: none
#: is needed, and none may be added.
KNOWN_LAZY_CYCLES: dict[tuple[str, ...], str] = {}
#: Known exceptions to the layering, each with its reason. Empty: none are needed.
ALLOWED_IMPORTS: dict[tuple[str, str], str] = {}
LONG_MODULES: dict[str, str] = {}
#: Functions over the limit, each with its reason. Empty: none is needed, and none may be added.
LONG_FUNCTIONS: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        return [base] + [f"{base}.{alias.name}" for alias in node.names]
    return []


def runtime_imports(module: str, *, in_functions: bool = True) -> set[str]:
    """The ``ncu_advisor`` modules ``module`` imports when it runs (each imported module and the packages
    above it, except ``module``'s own packages, which Python imports first anyway); with
    ``in_functions=False`` only those imported when the module itself is imported."""
    path = MODULES[module]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if not in_functions and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            for name in _imported(child, module, path.name == "__init__.py"):
                parts = name.split(".")
                for end in range(2, len(parts) + 1):
                    target = ".".join(parts[:end])
                    if target in MODULES and target != module and not module.startswith(target + "."):
                        found.add(target)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


GRAPH = {module: runtime_imports(module) for module in MODULES}
IMPORT_TIME_GRAPH = {module: runtime_imports(module, in_functions=False) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_lazy_imports_and_skips_type_checking() -> None:
    cli_imports = GRAPH["ncu_advisor.cli"]
    assert "ncu_advisor.errors" in cli_imports
    # render/findings.py names the engine's result type only under TYPE_CHECKING
    assert "ncu_advisor.rules.engine" not in GRAPH["ncu_advisor.render.findings"]
    assert "ncu_advisor.analysis.result" in GRAPH["ncu_advisor.render.findings"]


def test_no_import_cycle() -> None:
    assert _cycles(IMPORT_TIME_GRAPH) == []


def test_no_new_cycle_through_imports_in_functions() -> None:
    found = {tuple(cycle) for cycle in _cycles(GRAPH)}
    assert found - set(KNOWN_LAZY_CYCLES) == set(), "a new import cycle (through an import in a function)"
    stale = set(KNOWN_LAZY_CYCLES) - found
    assert not stale, f"broken already: remove {stale} from KNOWN_LAZY_CYCLES"


def _violations(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module == layer or module.startswith(layer + ".")
        for target in sorted(targets)
        if any(target == f or target.startswith(f + ".") for f in forbidden)
        and (module, target) not in ALLOWED_IMPORTS
    ]


def test_render_imports_no_collect_ingest_or_engine() -> None:
    forbidden = ("ncu_advisor.collect", "ncu_advisor.ingest", "ncu_advisor.rules.engine")
    assert _violations("ncu_advisor.render", forbidden) == []


def test_analysis_imports_no_render() -> None:
    assert _violations("ncu_advisor.analysis", ("ncu_advisor.render",)) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_and_function_sizes(module: str) -> None:
    text = MODULES[module].read_text(encoding="utf-8")
    lines = text.count("\n")
    if module not in LONG_MODULES:
        assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines (at most {MAX_MODULE_LINES})"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
        and f"{module}.{node.name}" not in LONG_FUNCTIONS
    ]
    assert long == [], f"{module}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_exceptions_are_still_needed() -> None:
    """An exception whose function was split (or whose import went) is removed from the lists."""
    functions = {
        f"{module}.{node.name}": node.end_lineno - node.lineno + 1
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None
    }
    stale = [name for name in LONG_FUNCTIONS if functions.get(name, 0) <= MAX_FUNCTION_LINES]
    assert stale == [], f"no longer over {MAX_FUNCTION_LINES} lines: remove {stale} from LONG_FUNCTIONS"
