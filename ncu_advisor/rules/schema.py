"""The rule file format (pydantic, ``extra="forbid"``) and the checked, compiled ``Rule``.

A rule file is YAML holding one mapping; see ``docs/rules.md`` for the field reference.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ncu_advisor.errors import RuleError
from ncu_advisor.model import Severity
from ncu_advisor.rules.expr import Expression, parse_expression

STAGES = ("block-size", "fine-tune", "bottleneck")
Stage = Literal["block-size", "fine-tune", "bottleneck"]

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_PREFIXES = ("gpu_", "src_")

#: Facts ``ncu_advisor.kernelsrc.facts`` gives rules (prefix ``src_``); ``src_block_<param>`` is added per
#: kernel for each ``BLOCK*`` constexpr parameter (``src_block_m`` for ``BLOCK_M``).
SOURCE_FACTS = (
    "src_num_loads",
    "src_uses_dot",
    "src_expensive_ops",
    "src_num_loops",
    "src_num_warps",
    "src_num_warps_min",
    "src_num_stages",
    "src_num_stages_min",
    "src_num_configs",
    "src_has_baseline",
    "src_block_max",
    "src_block_min",
    "src_tile_elements",
    "src_loop_invariant_loads",
    "src_invariant_loop_line",
    "src_invariant_load_line",
    "src_chunk_block",
    "src_chunk_loop_line",
    "src_chunk_other_blocks",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricRequirement(_Strict):
    """A metric a rule reads: its ncu name, the alias expressions use, and a default if optional."""

    name: str = Field(min_length=1)
    alias: str
    default: float | None = None

    @field_validator("alias")
    @classmethod
    def _alias_is_identifier(cls, alias: str) -> str:
        if not _IDENTIFIER.match(alias):
            raise ValueError(f"alias {alias!r} must be a lower-case identifier")
        if alias.startswith(RESERVED_PREFIXES):
            raise ValueError(f"alias {alias!r} may not start with {' or '.join(RESERVED_PREFIXES)}")
        return alias


class EstimatedEffect(_Strict):
    """What acting on a finding could save, as a fraction (0..1) of the kernel's time."""

    kind: Literal["local", "global"]
    expression: str | float
    basis: str = Field(min_length=10)


_Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class ProposalHint(_Strict):
    """How a firing rule changes the proposed autotune configs."""

    num_warps: int | None = Field(default=None, ge=1, le=32)
    num_stages: int | None = Field(default=None, ge=1, le=8)
    block_scale: float | None = Field(default=None, gt=0, le=4)
    # The BLOCK parameters block_scale applies to (default: every BLOCK). Names a kernel lacks are ignored;
    # when it has none of them the scale applies to every BLOCK.
    block_params: list[str] | None = Field(default=None, min_length=1)
    # Raise every BLOCK below this value to it, in one trial together with num_warps/num_stages when given.
    block_min: int | None = Field(default=None, ge=1, le=1024)
    # "tile": block_min is a floor on the elements per program (the product of the BLOCKs shaping its largest
    # load/store tile, ``src_tile_elements``), reached by doubling the tile's BLOCKs in turn, smallest first;
    # a halving never takes the tile below it. "block" (default): every BLOCK on its own.
    block_min_per: Literal["block", "tile"] = "block"
    # Set the BLOCK stepping the kernel's chunk loop (``src_chunk_block``) to this derived value.
    chunk_block_to: str | None = None
    # The config is an autotune list's safety fallback (the seeds' "smaller fallback"), not a predicted
    # speed-up: it is ordered after every other proposal, whatever the finding's estimated effect.
    fallback: bool = False
    # A finding's evidence value holding the grid's waves (``launch__waves_per_multiprocessor``): when the
    # kernel has a split constexpr (``SPLIT_M``, ``SPLIT_K``), raise it by the power of two that fills one
    # wave instead of scaling the BLOCKs (split the reduction rather than shrink the tile).
    split_fill: str | None = None
    # Per-BLOCK floors applied to this rule's ``block_scale`` growth (NA312: ``{BLOCK_K: 64}``): a BLOCK the
    # kernel has below its floor is raised to it in the same config; names a kernel lacks are ignored.
    block_floor: dict[_Identifier, Annotated[int, Field(ge=1, le=4096)]] | None = None
    # num_warps from the tile instead of a fixed value: the power of two that gives each thread about this
    # many elements of the kernel's largest load/store tile (``src_tile_elements``), within 4..16 (NA322).
    warps_fit_tile: int | None = Field(default=None, ge=1, le=1024)
    # A finding's evidence value standing in for the tile's elements when the source does not give its
    # BLOCKs (computed at run time, ``triton.next_power_of_2(n_cols)``): NA322's elements per program.
    tile_evidence: str | None = None

    @model_validator(mode="after")
    def _values_triton_accepts(self) -> ProposalHint:
        # Triton takes only powers of two for num_warps and for a tl.arange extent (a BLOCK): a rule file's
        # num_warps 3 or block_floor {BLOCK_K: 48} was proposed as such (red team 6), a config that fails
        # to compile.
        named = {"num_warps": self.num_warps, "block_min": self.block_min}
        named.update({f"block_floor.{k}": v for k, v in (self.block_floor or {}).items()})
        for name, value in named.items():
            if value is not None and value & (value - 1):
                raise ValueError(f"{name} is {value}, not a power of two (Triton compiles only those)")
        # A BLOCK is a constexpr named BLOCK* (KernelFacts.block_params): another name matches no kernel, so
        # block_floor {num_warps: 64} or block_params [num_warps] applied to nothing, silently.
        for key, names in (
            ("block_floor", list(self.block_floor or {})),
            ("block_params", self.block_params or []),
        ):
            wrong = [n for n in names if not n.upper().startswith("BLOCK")]
            if wrong:
                raise ValueError(
                    f"{key} names {', '.join(wrong)}: not a BLOCK (a tile size is a tl.constexpr named "
                    "BLOCK*, e.g. BLOCK_K; num_warps and num_stages are keys of their own)"
                )
        # Keys that only modify another key do nothing alone: say so rather than propose nothing silently.
        if self.block_floor and not (self.block_scale is not None and self.block_scale > 1):
            raise ValueError("block_floor applies only with a block_scale above 1 (a tile growth): add one")
        if self.tile_evidence is not None and self.warps_fit_tile is None:
            raise ValueError("tile_evidence is read only by warps_fit_tile: add warps_fit_tile")
        if self.warps_fit_tile is not None and self.num_warps is not None:
            # both set, num_warps won and warps_fit_tile was ignored without a word
            raise ValueError("warps_fit_tile sets num_warps from the tile: give it or num_warps, not both")
        return self


class RuleDocs(_Strict):
    """Ruff-style documentation: every field is required and non-empty."""

    what_it_detects: str = Field(min_length=20)
    why_it_matters: str = Field(min_length=20)
    example: str = Field(min_length=20)
    use_instead: str = Field(min_length=10)
    known_problems: str = Field(min_length=10)
    seed_text: str | None = None


class RuleSpec(_Strict):
    """One rule file, as written."""

    id: str = Field(pattern=r"^[A-Z]{2,4}[0-9]{3,4}$")
    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    stage: Stage
    requires: list[MetricRequirement] = Field(default_factory=list)
    derived: dict[str, str | float] = Field(default_factory=dict)
    when: str
    severity: Severity
    # Where this also holds on a launch the rule fires on, the finding is reported at info level (the
    # measurement says the condition is real but not worth acting on); the evidence names the reason.
    info_when: str | None = None
    message: str = Field(min_length=5)
    recommendation: str = Field(min_length=5)
    estimated_effect: EstimatedEffect
    proposal: ProposalHint | None = None
    docs: RuleDocs
    # Units of the evidence (render.units): derived values, and required metrics whose report unit is empty
    # (counts such as launch__grid_size), by alias or derived name.
    units: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _units_name_values(self) -> RuleSpec:
        known = set(self.derived) | {r.alias for r in self.requires}
        unknown = sorted(set(self.units) - known)
        if unknown:
            raise ValueError(f"units names {unknown} are neither derived values nor required aliases")
        return self

    @field_validator("derived")
    @classmethod
    def _derived_names(cls, derived: dict[str, str | float]) -> dict[str, str | float]:
        for name in derived:
            if not _IDENTIFIER.match(name) or name.startswith(RESERVED_PREFIXES):
                raise ValueError(f"derived name {name!r} must be a lower-case identifier without gpu_/src_")
        return derived


@dataclass(frozen=True)
class Rule:
    """A validated rule with its expressions parsed and its names checked."""

    spec: RuleSpec
    path: Path | None
    when: Expression
    derived: dict[str, Expression]
    effect: Expression
    message_fields: tuple[str, ...]
    inputs: frozenset[str] = field(default_factory=frozenset)
    info_when: Expression | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def stage(self) -> str:
        return self.spec.stage

    @property
    def severity(self) -> Severity:
        return self.spec.severity

    @property
    def docs(self) -> RuleDocs:
        return self.spec.docs

    @property
    def aliases(self) -> dict[str, MetricRequirement]:
        return {req.alias: req for req in self.spec.requires}


# The format specs a message may use (docs/metrics.md): an optional alignment and width of at most two
# digits, then a precision of at most two digits and ``f`` or ``%``. The shipped rules use .0f, .1f, .2f
# and .0%; a bounded width keeps a rule from asking for gigabytes of padding, and a required precision
# keeps ``{registers:%}`` from printing "18700.000000%".
_FORMAT_SPEC = re.compile(r"(?:[<>^]?\d{1,2})?\.\d{1,2}[f%]")


def message_fields(template: str, *, where: str) -> tuple[str, ...]:
    """Return the names a message template fills; reject attribute/index access and conversions.

    Raises:
        RuleError: the template is malformed or uses ``{x.y}``, ``{x[0]}``, ``{x!r}`` or ``{}``.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RuleError(f"{where}: message template is malformed ({exc})") from None
    for _, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if not _IDENTIFIER.match(field_name):
            raise RuleError(
                f"{where}: message field {{{field_name}}} is not a plain name",
                hint="use {alias} or {alias:.1f}; attribute and index access are not allowed",
            )
        if conversion:
            raise RuleError(
                f"{where}: message field {{{field_name}!{conversion}}} uses a conversion",
                hint=f"drop the !{conversion}: write {{{field_name}}} or {{{field_name}:.1f}} "
                "(message values are numbers)",
            )
        if format_spec and "{" in format_spec:
            raise RuleError(f"{where}: message field {{{field_name}}} has a nested format spec")
        if format_spec and not _FORMAT_SPEC.fullmatch(format_spec):
            # {registers:>2000000000} passed format(1.5, spec) and then took 8 GB when the rule fired.
            raise RuleError(
                f"{where}: format spec {format_spec!r} is not allowed",
                hint="use a precision and type (.0f, .1f, .2f, .0%) and a width of at most 2 digits",
            )
        names.append(field_name)
    return tuple(names)


def compile_rule(spec: RuleSpec, path: Path | None = None) -> Rule:
    """Parse a rule's expressions and check every name it uses is defined.

    Raises:
        RuleError: an expression is unsafe or malformed, or uses a name that is not a metric alias,
            a derived value, a ``gpu_*`` spec field or a known ``src_*`` source fact.
    """
    where_prefix = f"{spec.id}"
    known: set[str] = {req.alias for req in spec.requires}
    aliases = set(known)
    derived: dict[str, Expression] = {}
    for name, text in spec.derived.items():
        if name in aliases:
            raise RuleError(f"{spec.id}: derived {name!r} shadows a metric alias", path=path)
        expression = parse_expression(text, where=f"{where_prefix} derived.{name}")
        _check_names(expression, known, spec.id, path, f"derived.{name}")
        derived[name] = expression
        known.add(name)
    when = parse_expression(spec.when, where=f"{where_prefix} when")
    _check_names(when, known, spec.id, path, "when")
    effect = parse_expression(spec.estimated_effect.expression, where=f"{where_prefix} estimated_effect")
    _check_names(effect, known, spec.id, path, "estimated_effect")
    info_when = None
    if spec.info_when is not None:
        info_when = parse_expression(spec.info_when, where=f"{where_prefix} info_when")
        _check_names(info_when, known, spec.id, path, "info_when")
    if spec.proposal is not None and spec.proposal.chunk_block_to is not None:
        if spec.proposal.chunk_block_to not in derived:
            raise RuleError(f"{spec.id}: proposal.chunk_block_to must name a derived value", path=path)
    for key in ("split_fill", "tile_evidence"):  # evidence values the proposal reads back
        named = getattr(spec.proposal, key, None) if spec.proposal is not None else None
        # a finding's evidence holds required metrics by their ncu names and derived values by theirs
        evidence = set(derived) | {req.name for req in spec.requires}
        if named is not None and named not in evidence:
            raise RuleError(
                f"{spec.id}: proposal.{key} names {named!r}, which is in no finding's evidence",
                path=path,
                hint=f"name a required metric by its ncu name or a derived value: {sorted(evidence)}",
            )
    fields = message_fields(spec.message, where=f"{spec.id} message")
    for name in fields:
        if not _name_is_known(name, known):
            raise RuleError(
                f"{spec.id}: message field {{{name}}} is not defined",
                path=path,
                hint=f"use one of {', '.join(sorted(known))} (or a gpu_*/src_* name), or define {name} "
                "under requires (as an alias) or derived",
            )
    inputs: set[str] = set()
    # info_when's own gpu_*/src_* names never make a rule skip: unknown there reads as not true.
    for expression in (when, effect, *derived.values()):
        inputs |= {n for n in expression.names if n not in derived}
    inputs |= {n for n in fields if n not in derived}
    return Rule(
        spec=spec,
        path=path,
        when=when,
        derived=derived,
        effect=effect,
        message_fields=fields,
        inputs=frozenset(inputs),
        info_when=info_when,
    )


def _name_is_known(name: str, known: set[str]) -> bool:
    if name in known:
        return True
    if name.startswith("gpu_"):
        return True
    return name in SOURCE_FACTS or name.startswith("src_block_")


def _check_names(expression: Expression, known: set[str], rule_id: str, path: Path | None, part: str) -> None:
    for name in sorted(expression.names):
        if not _name_is_known(name, known):
            raise RuleError(
                f"{rule_id} {part}: unknown name {name!r} in {expression.text!r}",
                path=path,
                hint="declare it under requires (alias) or derived, or use a gpu_*/src_* fact",
            )
