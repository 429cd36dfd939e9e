"""Find the variants of a kernel file by reading its syntax tree only (no import, no torch, works on CPU).

Kernel-file convention (KernelBench style):

- ``Model`` is the reference implementation.
- Variants are the module-level classes named ``ModelNew`` or ``ModelNew_<name>``, in file order;
- or, when the file defines a module-level ``VARIANTS = {"name": ClassName, ...}`` dict literal, exactly
  those entries (this replaces the naming rule; names may then be anything).
- ``get_init_inputs()`` returns the constructor arguments shared by all classes, ``get_inputs()`` the
  forward inputs (fresh random tensors on each call).

``--expand-autotune`` turns a variant that launches an ``@triton.autotune`` kernel into one variant per
config, ``<variant>@cfg<i>``; the child pins the config by replacing the Autotuner's ``configs`` with that one
config before the first call. Configs are counted by ``ncu_advisor.kernelsrc.facts.analyze_file``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from ncu_advisor.errors import (
    InputError,
    KernelFileError,
    read_kernel_text,
)

REFERENCE_CLASS = "Model"
VARIANT_PREFIX = "ModelNew"


@dataclass(frozen=True)
class Variant:
    """One profiled variant of a kernel file.

    Attributes:
        name: the variant's name in the run (``ModelNew_seed000``, ``ModelNew@cfg2``).
        class_name: the class the child builds.
        lineno: the line of the class definition.
        autotune_kernel: with ``--expand-autotune``, the autotuned kernel whose config is pinned.
        autotune_config: the index of the pinned config in that kernel's ``configs``.
    """

    name: str
    class_name: str
    lineno: int
    autotune_kernel: str | None = None
    autotune_config: int | None = None

    def child_args(self) -> list[str]:
        """The child's command-line arguments that select this variant (class and pinned config)."""
        args = [self.class_name]
        if self.autotune_kernel is not None and self.autotune_config is not None:
            args += [
                "--autotune-kernel",
                self.autotune_kernel,
                "--autotune-config",
                str(self.autotune_config),
            ]
        return args


@dataclass(frozen=True)
class KernelFileInfo:
    """What the syntax tree of a kernel file says.

    Attributes:
        path: the kernel file.
        reference: the reference class name, or None when ``Model`` is missing.
        variants: the variants, in file (or ``VARIANTS``) order.
        uses_variants_mapping: True when a ``VARIANTS`` dict chose the variants.
    """

    path: Path
    reference: str | None
    variants: tuple[Variant, ...]
    uses_variants_mapping: bool


def parse_kernel_file(path: Path) -> ast.Module:
    """Parse a kernel file; a missing file or a syntax error becomes a ``KernelFileError`` (file:line)."""
    path = Path(path)
    source = read_kernel_text(path, hint="pass a KernelBench-style .py file")
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        where = f"{path}:{exc.lineno}" if exc.lineno else str(path)
        raise KernelFileError(f"syntax error: {exc.msg}", path=where, hint="fix the kernel file") from None


def _variants_mapping(tree: ast.Module, path: Path, classes: dict[str, int]) -> list[Variant] | None:
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = list(node.targets), node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if not any(isinstance(t, ast.Name) and t.id == "VARIANTS" for t in targets):
            continue
        if not isinstance(value, ast.Dict):
            raise KernelFileError(
                'VARIANTS must be a dict literal {"name": ClassName, ...}',
                path=f"{path}:{node.lineno}",
                hint="write the mapping out literally",
            )
        variants: list[Variant] = []
        for key, val in zip(value.keys, value.values, strict=True):
            if not (
                isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(val, ast.Name)
            ):
                raise KernelFileError(
                    'VARIANTS entries must be "name": ClassName',
                    path=f"{path}:{node.lineno}",
                    hint="use string keys and class names",
                )
            if val.id not in classes:
                raise KernelFileError(
                    f"VARIANTS names class {val.id!r}, which the file does not define",
                    path=f"{path}:{node.lineno}",
                    hint="define the class at module level",
                )
            variants.append(Variant(name=key.value, class_name=val.id, lineno=classes[val.id]))
        return variants
    return None


def list_variants(path: Path) -> KernelFileInfo:
    """List the reference and the variants of a kernel file without importing it.

    Raises:
        KernelFileError: missing file, syntax error (with file:line), malformed ``VARIANTS``, or no variants.
    """
    path = Path(path)
    tree = parse_kernel_file(path)
    classes = {node.name: node.lineno for node in tree.body if isinstance(node, ast.ClassDef)}
    mapped = _variants_mapping(tree, path, classes)
    if mapped is None:
        variants = [
            Variant(name=name, class_name=name, lineno=line)
            for name, line in classes.items()
            if name == VARIANT_PREFIX or name.startswith(VARIANT_PREFIX + "_")
        ]
    else:
        variants = mapped
    if not variants:
        raise KernelFileError(
            "no variants: define classes named ModelNew or ModelNew_<name>, or a VARIANTS dict",
            path=path,
            hint="see docs/profile.md for the kernel-file convention",
        )
    return KernelFileInfo(
        path=path,
        reference=REFERENCE_CLASS if REFERENCE_CLASS in classes else None,
        variants=tuple(variants),
        uses_variants_mapping=mapped is not None,
    )


def select_variants(info: KernelFileInfo, names: list[str] | None) -> list[Variant]:
    """Keep the variants named in ``names`` (all when empty), in the order given.

    Raises:
        InputError: a name is not a variant of the file.
    """
    if not names:
        return list(info.variants)
    by_name = {v.name: v for v in info.variants}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InputError(
            f"unknown variant {', '.join(map(repr, unknown))}; the file has: {', '.join(by_name)}",
            path=info.path,
            hint="see `ncu-advisor profile FILE --list`",
        )
    return [by_name[n] for n in dict.fromkeys(names)]


def _referenced_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def kernels_reached(tree: ast.Module, class_name: str) -> set[str]:
    """Module-level function names a class reaches through the names it (transitively) refers to."""
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if class_name not in classes:
        return set()
    # Follow functions and classes (base classes, helpers) by name, transitively.
    nodes: dict[str, ast.AST] = {**functions, **classes}
    seen: set[str] = set()
    todo = [class_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend((_referenced_names(nodes[name]) & set(nodes)) - seen)
    return seen & set(functions)


def expand_autotune(info: KernelFileInfo, variants: list[Variant]) -> list[Variant]:
    """Replace each variant that launches an ``@triton.autotune`` kernel by one variant per config.

    A variant reaching one autotuned kernel becomes ``<variant>@cfg<i>``; one reaching several becomes
    ``<variant>@<kernel>.cfg<i>`` per kernel and config (the other kernels keep autotuning).

    Raises:
        InputError: ``ncu_advisor.kernelsrc.facts`` (the static source analyser) is not available.
    """
    try:
        from ncu_advisor.kernelsrc.facts import analyze_file
    except ImportError:
        raise InputError(
            "--expand-autotune needs ncu_advisor.kernelsrc.facts, which is not installed",
            hint="run without --expand-autotune",
        ) from None
    facts = analyze_file(info.path)
    config_counts: dict[str, int] = {}
    for kernel in getattr(facts, "kernels", []) or []:
        configs = getattr(kernel, "autotune_configs", None) or []
        if configs:
            config_counts[str(kernel.name)] = len(configs)
    tree = parse_kernel_file(info.path)
    expanded: list[Variant] = []
    for variant in variants:
        autotuned = sorted(kernels_reached(tree, variant.class_name) & set(config_counts))
        if not autotuned:
            expanded.append(variant)
            continue
        for kernel in autotuned:
            for index in range(config_counts[kernel]):
                label = f"cfg{index}" if len(autotuned) == 1 else f"{kernel}.cfg{index}"
                expanded.append(
                    Variant(
                        name=f"{variant.name}@{label}",
                        class_name=variant.class_name,
                        lineno=variant.lineno,
                        autotune_kernel=kernel,
                        autotune_config=index,
                    )
                )
    return expanded
