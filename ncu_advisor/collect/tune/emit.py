"""The tuned configuration as text: paste-ready decorator / launch values; ``--write``'s new variant class.

``--write`` appends ``class <Variant>_tuned(<Variant>)`` to the kernel file (never touching what is there):

- ``@triton.autotune`` kernel: ``forward`` swaps the Autotuner's ``configs`` for the one tuned config
  (keeping the original first config's ``pre_hook``) around the parent's ``forward``, then restores them;
- variant with a ``config`` dict (the zoo convention): ``config = {**<Variant>.config, <tuned values>}``;
- plain ``@triton.jit`` kernel launched with keyword arguments: ``forward`` gives the kernel object its
  own ``run`` that sets the tuned keyword values (a grid written as a function of ``meta`` follows them),
  calls the parent's ``forward``, and removes it again.

The class is plain Python using only names the file already has (the kernel, ``triton`` for autotune), so
the file stays runnable without ncu-advisor, and ``profile`` lists the new class as a variant
(``ModelNew_*`` naming). The new text is checked with ``ast.parse`` before the file is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ncu_advisor.collect.tune.space import TuneConfig
from ncu_advisor.errors import KernelFileError, OutputError
from ncu_advisor.kernelsrc.facts import class_config_literals
from ncu_advisor.render.paste import (
    METHOD_AUTOTUNE,
    METHOD_CLASS_CONFIG,
    METHOD_LAUNCH,
    launch_values,
    paste_text,
)

__all__ = ["METHOD_AUTOTUNE", "METHOD_CLASS_CONFIG", "METHOD_LAUNCH", "launch_values", "paste_text"]


def class_config_keys(source_text: str, class_name: str) -> list[str] | None:
    """Keys of a literal ``config = dict(...)`` / ``{...}`` in the class body (None when there is none)."""
    values = class_config_values(source_text, class_name)
    return list(values) if values is not None else None


def class_config_values(source_text: str, class_name: str) -> dict[str, int | None] | None:
    """The literal ``config`` dict of a class body: key -> integer value (None when not an int literal)."""
    tree = ast.parse(source_text)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return class_config_literals(node)
    return None


def pin_method(source_text: str, class_name: str, kernel_is_autotuned: bool) -> str:
    """How the tuned config is applied (see the module docstring)."""
    if kernel_is_autotuned:
        return METHOD_AUTOTUNE
    return METHOD_CLASS_CONFIG if class_config_keys(source_text, class_name) else METHOD_LAUNCH


def tuned_class_name(variant_class: str, existing: set[str]) -> str:
    name = f"{variant_class}_tuned"
    suffix = 2
    while name in existing:
        name, suffix = f"{variant_class}_tuned{suffix}", suffix + 1
    return name


def tuned_class_source(
    class_name: str,
    variant_class: str,
    kernel: str,
    config: TuneConfig,
    method: str,
    config_keys: list[str] | None = None,
    note: str = "",
    start: TuneConfig | None = None,
) -> str:
    """The text of the new variant class (values equal to ``start``'s are left as the variant has them)."""
    values = launch_values(config)
    if start is not None and method != METHOD_AUTOTUNE:
        before = launch_values(start)
        values = {k: v for k, v in values.items() if before.get(k) != v or k in (config_keys or [])}
    doc = (
        f'    """{variant_class} with {kernel} pinned by `ncu-advisor tune`{": " + note if note else ""}."""'
    )
    lines = ["", "", f"class {class_name}({variant_class}):", doc, ""]
    if method == METHOD_AUTOTUNE:
        params = ", ".join(f"{k!r}: {v}" for k, v in config.params)
        lines += [
            "    def forward(self, *args, **kwargs):",
            f"        kernel = {kernel}",
            "        saved = kernel.configs",
            f"        kernel.configs = [triton.Config({{{params}}}, num_warps={config.num_warps}, "
            f"num_stages={config.num_stages}, pre_hook=saved[0].pre_hook)]",
            "        try:",
            "            return super().forward(*args, **kwargs)",
            "        finally:",
            "            kernel.configs = saved",
        ]
        return "\n".join(lines) + "\n"
    forced = dict(values)
    if method == METHOD_CLASS_CONFIG and config_keys:
        in_config = {k: v for k, v in values.items() if k in config_keys}
        items = "".join(f", {k!r}: {v}" for k, v in in_config.items())
        lines.append(f"    config = {{**{variant_class}.config{items}}}")
        forced = {k: v for k, v in values.items() if k not in config_keys}
        if not forced:
            return "\n".join(lines) + "\n"
        lines.append("")
    if not forced:
        lines.append("    pass")
        return "\n".join(lines) + "\n"
    items = ", ".join(f"{k!r}: {v}" for k, v in forced.items())
    lines += [
        f"    tuned_launch = {{{items}}}",
        "",
        "    def forward(self, *args, **kwargs):",
        f"        kernel = {kernel}",
        '        shadowed = kernel.__dict__.get("run")',
        "        launch = kernel.run",
        "        tuned = self.tuned_launch",
        "",
        "        def run(*run_args, **run_kwargs):",
        '            if not run_kwargs.get("warmup"):',
        "                run_kwargs.update(tuned)",
        "            return launch(*run_args, **run_kwargs)",
        "",
        "        kernel.run = run",
        "        try:",
        "            return super().forward(*args, **kwargs)",
        "        finally:",
        "            if shadowed is None:",
        "                del kernel.run",
        "            else:",
        "                kernel.run = shadowed",
    ]
    return "\n".join(lines) + "\n"


def write_tuned_variant(
    path: Path,
    variant_class: str,
    kernel: str,
    config: TuneConfig,
    method: str,
    note: str = "",
    start: TuneConfig | None = None,
) -> str:
    """Append the tuned variant class to the kernel file; return the new class name.

    Raises:
        KernelFileError: the file cannot be parsed, or the variant class is not defined at module level.
        OutputError: the file cannot be written.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise KernelFileError(
            f"cannot read or parse the kernel file for --write ({exc})", path=path
        ) from None
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    if variant_class not in classes:
        raise KernelFileError(
            f"class {variant_class} is not defined at module level; --write subclasses it", path=path
        )
    name = tuned_class_name(variant_class, classes)
    keys = class_config_keys(text, variant_class) if method == METHOD_CLASS_CONFIG else None
    addition = tuned_class_source(name, variant_class, kernel, config, method, keys, note, start)
    new_text = text.rstrip("\n") + "\n" + addition
    try:
        ast.parse(new_text, filename=str(path))
    except SyntaxError as exc:  # never write a file that does not parse
        raise OutputError(
            f"the generated class does not parse ({exc.msg}); file left untouched", path=path
        ) from None
    try:
        path.write_text(new_text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the kernel file ({exc.strerror or exc})", path=path) from None
    return name
