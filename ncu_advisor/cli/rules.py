"""`ncu-advisor rules` lists the rule set; `ncu-advisor rules explain ID` prints one rule's docs."""

from __future__ import annotations

from pathlib import Path

import typer

from ncu_advisor.cli import app, handle_errors
from ncu_advisor.cli._common import RULES_OPTION
from ncu_advisor.errors import InputError
from ncu_advisor.rules import Rule, load_rules

rules_app = typer.Typer(
    help="List the tuning rules or explain one.", invoke_without_command=True, no_args_is_help=False
)
app.add_typer(rules_app, name="rules")


@rules_app.callback(invoke_without_command=True)
@handle_errors
def list_rules(
    ctx: typer.Context,
    rules_dir: Path | None = RULES_OPTION,
    stage: str | None = typer.Option(None, "--stage", help="Only rules of this stage."),
) -> None:
    """List every rule: id, name, stage, severity and what it detects."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = rules_dir
        return
    rules = load_rules(rules_dir)
    if stage is not None:
        rules = [r for r in rules if r.stage == stage]
        if not rules:
            raise InputError(f"no rules of stage {stage!r}", hint="stages: block-size, fine-tune, bottleneck")
    width = max(len(r.name) for r in rules)
    for rule in rules:
        detects = " ".join(rule.docs.what_it_detects.split())
        typer.echo(f"{rule.id}  {rule.name:<{width}}  {rule.stage:<10}  {rule.severity.value:<7}  {detects}")
    typer.echo(f"{len(rules)} rules; `ncu-advisor rules explain ID` for one rule's documentation")


def explain_text(rule: Rule) -> str:
    """A rule's documentation, ruff style."""
    docs = rule.docs
    lines = [f"{rule.id} {rule.name} ({rule.stage}, {rule.severity.value})", ""]
    sections = [
        ("What it detects", docs.what_it_detects),
        ("Why it matters", docs.why_it_matters),
        ("Example", docs.example),
        ("Use instead", docs.use_instead),
        ("Known problems", docs.known_problems),
    ]
    if docs.seed_text:
        sections.append(("From the seed prompt", docs.seed_text))
    sections += [
        (
            "Fires when",
            rule.when.text + "".join(f"\n  where {k} = {v.text}" for k, v in rule.derived.items()),
        ),
        (
            "Metrics",
            "\n".join(
                f"  {r.alias} = {r.name}" + (f" (default {r.default:g})" if r.default is not None else "")
                for r in rule.spec.requires
            )
            or "  (none)",
        ),
        ("Message", rule.spec.message),
        ("Recommendation", rule.spec.recommendation),
        (
            "Estimated effect",
            f"{rule.spec.estimated_effect.kind}: {rule.effect.text} ({rule.spec.estimated_effect.basis})",
        ),
    ]
    for title, body in sections:
        lines.append(f"## {title}")
        lines.append(" ".join(body.split()) if "\n  " not in body else body)
        lines.append("")
    if rule.path is not None:
        lines.append(f"(defined in {rule.path})")
    return "\n".join(lines)


@rules_app.command("explain")
@handle_errors
def explain(
    ctx: typer.Context,
    rule_id: str = typer.Argument(..., help="Rule id (NA101) or name (registers-over-128)."),
) -> None:
    """Print one rule's documentation."""
    rules = load_rules(ctx.obj if isinstance(ctx.obj, Path) else None)
    wanted = rule_id.strip()
    match = [r for r in rules if r.id.upper() == wanted.upper() or r.name == wanted]
    if not match:
        known = ", ".join(r.id for r in rules)
        raise InputError(f"no rule {wanted!r}", hint=f"known rules: {known}")
    typer.echo(explain_text(match[0]))
