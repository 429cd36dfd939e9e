"""The launch each variant class executes: ``kernel[grid](...)`` or ``kernel.fn[grid](...)`` inside a class's
methods (``ast`` only). A file may launch one kernel from several classes with different literals
(``ModelNew`` with BLOCK_SIZE=128, ``ModelNew_best`` with ``**self.config``); the facts of a variant must come
from its own launch, and a ``.fn`` launch bypasses the kernel's ``@triton.autotune`` list.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

#: ``Launch.arguments`` key of a launch passing its function's ``**kwargs`` on (``kernel[grid](...,
#: **config)`` in ``def wrapper(x, **config)``): every keyword the caller gives that is a constexpr or a
#: launch option.
PASSTHROUGH = "**"


@dataclass(frozen=True)
class ClassLaunch:
    """One class's launch of a kernel: literal keyword values (a ``**self.config`` expanded from the class's
    literal ``config``), the line, whether it bypasses autotune (``.fn``), keywords that are not literals."""

    params: dict[str, int]
    lineno: int
    bypasses_autotune: bool
    non_literal: frozenset[str] = field(default_factory=frozenset)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _int(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    return None


def _keyword_values(
    keywords: list[ast.keyword], config: dict[str, int], constants: dict[str, int]
) -> tuple[dict[str, int], set[str]]:
    """The integer value of each keyword of a call (a literal or a module constant; ``**self.config`` /
    ``**config``: the class's literal config), and the names of those with no such value."""
    values: dict[str, int] = {}
    non_literal: set[str] = set()
    for keyword in keywords:
        if keyword.arg is None:  # **self.config / **config: the class's literal config
            if _dotted(keyword.value) in ("self.config", "config", "self.CONFIG"):
                values.update(config)
            continue
        value = _int(keyword.value)
        if value is None and isinstance(keyword.value, ast.Name):
            value = constants.get(keyword.value.id)
        if value is None:
            non_literal.add(keyword.arg)
        else:
            values[keyword.arg] = value
    return values, non_literal


def _launch(node: ast.Call, config: dict[str, int], constants: dict[str, int]) -> ClassLaunch:
    params, non_literal = _keyword_values(node.keywords, config, constants)
    assert isinstance(node.func, ast.Subscript)
    return ClassLaunch(
        params=params,
        lineno=node.lineno,
        bypasses_autotune=_dotted(node.func.value).endswith(".fn"),
        non_literal=frozenset(non_literal),
    )


def module_constants(tree: ast.Module) -> dict[str, int]:
    """Module-level ``NAME = <int literal>`` assignments (launches often pass ``BLOCK_SIZE=BLOCK``)."""
    constants: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = _int(node.value)
            if value is not None:
                constants[node.targets[0].id] = value
    return constants


def class_launches(
    tree: ast.Module, kernel_names: set[str], configs: dict[str, dict[str, int]]
) -> dict[str, dict[str, ClassLaunch]]:
    """Kernel name -> class name -> the first launch of that kernel inside the class."""
    constants = module_constants(tree)
    found: dict[str, dict[str, ClassLaunch]] = {}
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for node in ast.walk(cls):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript)):
                continue
            name = _dotted(node.func.value)
            name = name[: -len(".fn")] if name.endswith(".fn") else name
            if name in kernel_names and cls.name not in found.get(name, {}):
                found.setdefault(name, {})[cls.name] = _launch(node, configs.get(cls.name, {}), constants)
    return found


def class_config_literals(node: ast.ClassDef) -> dict[str, int | None] | None:
    """The class's literal ``config = dict(...)`` or ``{...}`` attribute: key -> int literal (None when the
    value is not one); None when the class has no such attribute."""
    for statement in node.body:
        if not (
            isinstance(statement, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "config" for t in statement.targets)
        ):
            continue
        value = statement.value
        if isinstance(value, ast.Call) and _dotted(value.func) == "dict":
            return {k.arg: _int(k.value) for k in value.keywords if k.arg}
        if isinstance(value, ast.Dict):
            return {
                key.value: _int(item)
                for key, item in zip(value.keys, value.values, strict=True)
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            }
    return None


def variant_configs(tree: ast.Module) -> dict[str, dict[str, int]]:
    """Class name -> the integer literals of its ``config = dict(...)`` or ``{...}`` class attribute."""
    configs: dict[str, dict[str, int]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            literals = class_config_literals(node)
            if literals is not None:
                configs[node.name] = {k: v for k, v in literals.items() if v is not None}
    return configs


@dataclass
class Launch:
    params: dict[str, int]
    non_literal: set[str]
    lineno: int
    arguments: dict[str, str] = field(default_factory=dict)


def _literal_defaults(function: ast.FunctionDef, constants: dict[str, int] | None = None) -> dict[str, int]:
    """A function's parameters with literal integer defaults (``BLOCK_SIZE=1024``; with ``constants``, also
    defaults naming a module constant)."""
    defaults: dict[str, int] = {}
    positional = function.args.posonlyargs + function.args.args
    with_default = positional[len(positional) - len(function.args.defaults) :]
    pairs = list(zip(with_default, function.args.defaults, strict=True))
    keyword_only = zip(function.args.kwonlyargs, function.args.kw_defaults, strict=True)
    pairs += [(a, d) for a, d in keyword_only if d is not None]
    for argument, default in pairs:
        value = _int(default)
        if value is None and constants is not None and isinstance(default, ast.Name):
            value = constants.get(default.id)
        if value is not None:
            defaults[argument.arg] = value
    return defaults


def launch_sites(tree: ast.Module, kernel_names: set[str]) -> dict[str, Launch]:
    """The first launch site ``name[grid](...)`` of each kernel, with its literal keyword values.

    A keyword passing a parameter of the launching function (``BLOCK_SIZE=BLOCK_SIZE``) takes that
    parameter's literal default, and is remembered so that a variant's ``config`` can override it.
    """
    launches: dict[str, Launch] = {}
    scopes: list[tuple[ast.AST, ast.FunctionDef | None]] = [
        (node, node if isinstance(node, ast.FunctionDef) else None) for node in tree.body
    ]
    for scope, function in scopes:
        defaults = _literal_defaults(function) if function is not None else {}
        kwargs = function.args.kwarg.arg if function is not None and function.args.kwarg else None
        parameters = (
            {a.arg for a in function.args.posonlyargs + function.args.args + function.args.kwonlyargs}
            if function is not None
            else set()
        )
        for node in ast.walk(scope):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript)):
                continue
            name = _dotted(node.func.value)
            if name not in kernel_names or name in launches:
                continue
            params: dict[str, int] = {}
            non_literal: set[str] = set()
            arguments: dict[str, str] = {}
            for keyword in node.keywords:
                if keyword.arg is None:  # ``**config`` passing the wrapper's own ``**config`` through
                    if kwargs is not None and _dotted(keyword.value) == kwargs:
                        arguments[PASSTHROUGH] = kwargs
                    continue
                literal = _int(keyword.value)
                if literal is not None:
                    params[keyword.arg] = literal
                    continue
                if isinstance(keyword.value, ast.Name) and keyword.value.id in parameters:
                    arguments[keyword.arg] = keyword.value.id
                    if keyword.value.id in defaults:
                        params[keyword.arg] = defaults[keyword.value.id]
                        continue
                non_literal.add(keyword.arg)
            launches[name] = Launch(
                params=params, non_literal=non_literal, lineno=node.lineno, arguments=arguments
            )
    return launches


def variant_call_values(tree: ast.Module) -> dict[str, dict[str, int]]:
    """Class name -> the integer values its first call of a module-level function passes: keywords that are
    literals or module constants (``apply_rotary(x, BLOCK_H=ROPE_BLOCK_H)``), ``**self.config`` expanded from
    the class's literal config, over the called function's literal defaults. The launch inside that function
    passes them on (``launch_arguments``); ``KernelFacts.for_variant`` applies them."""
    constants = module_constants(tree)
    functions = {
        n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and not _is_jit(n.decorator_list)
    }
    found: dict[str, dict[str, int]] = {}
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        config = {k: v for k, v in (class_config_literals(cls) or {}).items() if v is not None}
        for node in ast.walk(cls):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            function = functions.get(node.func.id)
            if function is None:
                continue
            values = _literal_defaults(function, constants)
            values.update(_keyword_values(node.keywords, config, constants)[0])
            found[cls.name] = values
            break
    return found


def _is_jit(decorators: list[ast.expr]) -> bool:
    return any(_dotted(d.func if isinstance(d, ast.Call) else d).split(".")[-1] == "jit" for d in decorators)


def variant_code(text: str, kernel_names: list[str], variant: str | None = None) -> str:
    """The part of a kernel file one variant needs, in file order: the imports, the given ``@triton.jit``
    kernels (with their decorators), the top-level functions that launch them, and the variant's class.

    ``variant`` may carry a suffix (``ModelNew_seed001_small`` finds class ``ModelNew_seed001``). Falls back
    to the whole text when the file does not parse or none of the kernels is in it.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return text
    lines = text.splitlines()
    wanted = set(kernel_names)
    chosen: list[ast.stmt] = []
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    kernels = [f for name, f in functions.items() if name in wanted and _is_jit(f.decorator_list)]
    if not kernels:
        return text
    launchers = [
        f
        for f in functions.values()
        if f not in kernels
        and any(
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Subscript)
            and _dotted(node.func.value) in wanted
            for node in ast.walk(f)
        )
    ]
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    variant_class = None
    name = variant or ""
    while name and variant_class is None:
        variant_class = classes.get(name)
        name = name.rsplit("_", 1)[0] if "_" in name else ""
    chosen = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    chosen += kernels + launchers + ([variant_class] if variant_class is not None else [])
    chosen.sort(key=lambda n: n.lineno)
    parts = []
    for node in chosen:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        end = node.end_lineno or node.lineno
        parts.append("\n".join(lines[start:end]))
    imports = [p for p, n in zip(parts, chosen, strict=True) if isinstance(n, (ast.Import, ast.ImportFrom))]
    rest = [p for p, n in zip(parts, chosen, strict=True) if not isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(imports) + "\n\n\n" + "\n\n\n".join(rest) + "\n"
