"""Find, read and validate rule files (one YAML mapping per ``*.yaml`` file).

The shipped rule set lives in the top-level ``rules/`` directory of the repository, which the wheel
carries as ``ncu_advisor/_rules``; the installed copy is looked up first. ``extra_dir`` (``--rules DIR``)
adds rules, and replaces shipped rules that have the same ``id``.
"""

from __future__ import annotations

import difflib
import importlib.resources
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ncu_advisor.errors import MAX_RULE_FILE_BYTES, RuleError, check_regular_file, yaml_problem
from ncu_advisor.rules.schema import Rule, RuleSpec, compile_rule

#: Columns that are not ncu metrics but that tables may carry (a profile run records Triton's counts).
EXTRA_COLUMNS = frozenset({"n_spills", "n_regs"})


def shipped_rules_dir() -> Path:
    """The directory of the shipped rule set: ``ncu_advisor/_rules`` when installed, else ``<repo>/rules``."""
    try:
        installed = importlib.resources.files("ncu_advisor") / "_rules"
        if installed.is_dir():
            return Path(str(installed))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - namespace-package corner cases
        pass
    return Path(__file__).resolve().parents[2] / "rules"


def known_metric_names() -> set[str] | None:
    """The metric catalogue's names (with their fallbacks), or None when no catalogue is available."""
    try:
        from ncu_advisor import metrics  # noqa: PLC0415 - optional until the catalogue lands
    except ImportError:
        return None
    catalogue: Any = metrics.catalogue()
    names: set[str] = set()
    entries: Iterable[Any] = catalogue.values() if isinstance(catalogue, dict) else catalogue
    if isinstance(catalogue, dict):
        names |= {str(key) for key in catalogue}
    for entry in entries:
        if isinstance(entry, str):
            names.add(entry)
            continue
        for attribute in ("name", "fallbacks", "aliases"):
            value = entry.get(attribute) if isinstance(entry, dict) else getattr(entry, attribute, None)
            if isinstance(value, str):
                names.add(value)
            elif isinstance(value, (list, tuple)):
                names |= {str(v) for v in value}
    return names or None


def _key_lines(text: str) -> dict[str, int]:
    """Line (1-based) of each top-level key, to point validation errors at the right line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[str(key.value)] = key.start_mark.line + 1
    return lines


def parse_rule_text(text: str, path: Path | None = None, *, catalogue: set[str] | None = None) -> Rule:
    """Validate one rule file's text and compile it.

    Args:
        text: the YAML text.
        path: where it came from, for error messages.
        catalogue: metric names a rule may require; None skips the check.

    Raises:
        RuleError: malformed YAML (with line), a schema violation (with line and field), an unsafe or
            malformed expression, or an unknown metric (with close matches).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(yaml_problem(exc), path=path, hint="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise RuleError("a rule file must hold one YAML mapping", path=path, hint="see docs/rules.md")
    try:
        spec = RuleSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        top = str(first["loc"][0]) if first["loc"] else ""
        key_line = _key_lines(text).get(top)
        at = f"line {key_line}: " if key_line else ""
        count = exc.error_count()
        more = f" (and {count - 1} more problems)" if count > 1 else ""
        raise RuleError(
            f"{at}field {location!r}: {first['msg']}{more}",
            path=path,
            hint="see docs/rules.md for the format",
        ) from None
    if catalogue is not None:
        for requirement in spec.requires:
            if requirement.name in catalogue or requirement.name in EXTRA_COLUMNS:
                continue
            close = difflib.get_close_matches(requirement.name, sorted(catalogue), n=3, cutoff=0.6)
            suggestion = (
                f"did you mean {', '.join(close)}?" if close else "check the name with `ncu-advisor metrics`"
            )
            raise RuleError(f"{spec.id}: unknown metric {requirement.name!r}", path=path, hint=suggestion)
    try:
        return compile_rule(spec, path)
    except RuleError as exc:
        if exc.path is None and path is not None:
            raise RuleError(exc.message, path=path, hint=exc.hint) from None
        raise


def load_rule_file(path: Path, *, catalogue: set[str] | None = None) -> Rule:
    """Read and validate one rule file (a regular file of at most ``MAX_RULE_FILE_BYTES``)."""
    check_regular_file(path, what="rule file", error=RuleError, max_bytes=MAX_RULE_FILE_BYTES)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read rule file ({exc})", path=path) from None
    return parse_rule_text(text, path, catalogue=catalogue)


def load_rule_dir(directory: Path, *, catalogue: set[str] | None = None) -> list[Rule]:
    """Read every ``*.yaml``/``*.yml`` in ``directory``; rule ids must be unique.

    Raises:
        RuleError: ``directory`` is missing, not a directory or holds no rule file (an empty ``--rules``
            directory, or one of ``NA312.YAML`` files, applied nothing and exited as if it had), a rule
            file is malformed, or two files share an id.
    """
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "rule directory not found"
        raise RuleError(problem, path=directory, hint="pass a directory of *.yaml rule files")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise RuleError(
            "holds no rule file (*.yaml or *.yml, lower case)",
            path=directory,
            hint="put the rule files there, or drop --rules to use the shipped rules",
        )
    rules: list[Rule] = []
    seen: dict[str, Path] = {}
    for path in files:
        rule = load_rule_file(path, catalogue=catalogue)
        if rule.id in seen:
            raise RuleError(f"duplicate rule id {rule.id} (also in {seen[rule.id]})", path=path)
        seen[rule.id] = path
        rules.append(rule)
    return rules


def load_rules(extra_dir: Path | None = None) -> list[Rule]:
    """Load the shipped rule set plus the rules in ``extra_dir`` (same id replaces), sorted by id.

    Raises:
        RuleError: any rule file is malformed, unsafe or names an unknown metric.
    """
    catalogue = known_metric_names()
    rules = {rule.id: rule for rule in load_rule_dir(shipped_rules_dir(), catalogue=catalogue)}
    if extra_dir is not None:
        for rule in load_rule_dir(Path(extra_dir), catalogue=catalogue):
            rules[rule.id] = rule
    return [rules[key] for key in sorted(rules)]


def required_metrics(rules: Iterable[Rule]) -> set[str]:
    """The ncu metric names the rules read (what ``profile`` must collect); extra columns excluded."""
    return {req.name for rule in rules for req in rule.spec.requires if req.name not in EXTRA_COLUMNS}
