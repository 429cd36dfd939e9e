"""The search space of one kernel, read from its source: every tile constexpr, num_warps, num_stages.

- Tile constexprs: ``BLOCK*`` and the other tile sizes (``GROUP*``, names with ``TILE``, ``CHUNK`` or
  ``SPLIT``) that the start gives an integer value: powers of two from ``lo`` to ``hi``. ``lo`` is 16 for a
  ``tl.dot`` operand tile (``BLOCK_M``/``BLOCK_N``/``BLOCK_K`` of a dot kernel: tl.dot needs 16), else
  ``min(start, 16)`` (a head count such as ``BLOCK_H`` may start at 1; there is no floor to invent). ``hi`` is
  the next power of two of the dimension's runtime extent when a loop bound gives one (``BLOCK_N`` ->
  ``C_out``), else 256 for a dot tile (an fp32 accumulator of 256 x 256 already needs 256 registers per
  thread at 8 warps) and 16384 for an element block (64 KiB of fp32 per program), 16 for a ``GROUP*`` value;
  never below the start. The start's own value is always in.
- ``num_warps``: 1, 2, 4, 8, 16, 32 (at most 1024 threads per block).
- ``num_stages``: 1 to 6 when the kernel has a loop to pipeline, else the start's value only (Triton
  pipelines loops; without one the value changes nothing).
- The values of an ``@triton.autotune`` list are added to each dimension (the union).

``--space FILE`` (YAML or JSON) restricts or extends it: ``NAME: [values]`` replaces a dimension,
``NAME: {add: [values]}`` extends it, ``NAME: {min: A, max: B}`` keeps powers of two in [A, B]. A name the
kernel does not have is an error (a typo must fail loudly). ``pin_others: true`` keeps every dimension
the file does not name at the start's value (a stated space, as the efficacy bench uses). Every entry is
checked before anything runs (``check_space_spec``): positive integers, powers of two for ``BLOCK*`` and
``num_warps`` (at most 32), ``min <= max``, ``pin_others`` true or false.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncu_advisor.errors import MAX_RULE_FILE_BYTES, InputError, check_regular_file, yaml_problem
from ncu_advisor.model import LaunchConfig

WARPS = (1, 2, 4, 8, 16, 32)
STAGES = (1, 2, 3, 4, 5, 6)
DOT_TILES = ("BLOCK_M", "BLOCK_N", "BLOCK_K")
DOT_MIN = 16
DOT_MAX = 256
ELEMENT_MAX = 16384
GROUP_MAX = 16
LAUNCH = ("num_warps", "num_stages")


def is_tile_param(name: str) -> bool:
    """A constexpr that sizes a tile or a program's share of work (tuned as powers of two)."""
    upper = name.upper()
    return upper.startswith(("BLOCK", "GROUP")) or any(w in upper for w in ("TILE", "CHUNK", "SPLIT"))


def _pow2_range(lo: int, hi: int) -> list[int]:
    values, v = [], 1
    while v <= hi:
        if v >= lo:
            values.append(v)
        v *= 2
    return values


def _ceil_pow2(value: int) -> int:
    return 1 << max(0, int(value) - 1).bit_length()


@dataclass(frozen=True)
class SearchSpace:
    """Ordered dimensions (tile constexprs, then ``num_warps``, ``num_stages``), each a sorted value tuple."""

    dims: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.dims]

    def values(self, name: str) -> tuple[int, ...]:
        return dict(self.dims)[name]

    @property
    def size(self) -> int:
        total = 1
        for _, values in self.dims:
            total *= len(values)
        return total

    def configs(self) -> Iterator[LaunchConfig]:
        """Every configuration, in dimension order."""
        params = [n for n in self.names if n not in LAUNCH]
        for combo in itertools.product(*(values for _, values in self.dims)):
            chosen = dict(zip(self.names, combo, strict=True))
            yield LaunchConfig.make(
                {n: chosen[n] for n in params}, chosen.get("num_warps", 4), chosen.get("num_stages", 3)
            )

    def contains(self, config: LaunchConfig) -> bool:
        values = {**config.param_dict, "num_warps": config.num_warps, "num_stages": config.num_stages}
        return all(values.get(name) in allowed for name, allowed in self.dims)

    def step(self, config: LaunchConfig, name: str, steps: int) -> LaunchConfig | None:
        """``config`` moved ``steps`` places along ``name``'s values (None past either end)."""
        allowed = self.values(name)
        current = config.num_warps if name == "num_warps" else None
        current = config.num_stages if name == "num_stages" else current
        if current is None:
            current = config.param_dict.get(name)
        if current is None:
            return None
        below = [v for v in allowed if v < current]
        above = [v for v in allowed if v > current]
        if steps < 0:
            target = below[steps] if len(below) >= -steps else None
        else:
            target = above[steps - 1] if len(above) >= steps else None
        if target is None:
            return None
        if name == "num_warps":
            return config.replace(num_warps=target)
        if name == "num_stages":
            return config.replace(num_stages=target)
        return config.replace({name: target})

    def as_dict(self) -> dict[str, list[int]]:
        return {name: list(values) for name, values in self.dims}

    def describe(self) -> str:
        parts = [f"{n} {{{', '.join(str(v) for v in vals)}}}" for n, vals in self.dims]
        return f"{self.size} configs: " + " x ".join(parts)


def space_from_kernel(
    start: LaunchConfig,
    *,
    uses_dot: bool,
    has_loop: bool,
    extents: dict[str, int] | None = None,
    autotune: list[LaunchConfig] | None = None,
    max_threads: int = 1024,
) -> SearchSpace:
    """The default space around ``start`` (see the module docstring for every bound and its source)."""
    extents = extents or {}
    dims: list[tuple[str, tuple[int, ...]]] = []
    for name, value in start.params:
        if not is_tile_param(name):
            continue
        upper = name.upper()
        if upper.startswith("GROUP"):
            lo, hi = 1, GROUP_MAX
        elif uses_dot and name in DOT_TILES:
            lo, hi = DOT_MIN, DOT_MAX
        else:
            lo, hi = min(value, 16), ELEMENT_MAX
        if name in extents:
            hi = max(lo, _ceil_pow2(extents[name]))
        values = set(_pow2_range(lo, max(hi, value))) | {value}
        values |= {c.param_dict[name] for c in autotune or [] if name in c.param_dict}
        dims.append((name, tuple(sorted(values))))
    warps = {w for w in WARPS if w * 32 <= max_threads} | {start.num_warps}
    warps |= {c.num_warps for c in autotune or []}
    stages = set(STAGES) if has_loop else set()
    stages |= {start.num_stages} | {c.num_stages for c in autotune or []} if has_loop else {start.num_stages}
    dims.append(("num_warps", tuple(sorted(warps))))
    dims.append(("num_stages", tuple(sorted(stages))))
    return SearchSpace(tuple(dims))


def read_space_file(path: Path) -> dict[str, Any]:
    """The ``--space`` file (YAML or JSON) as a mapping.

    Raises:
        InputError: missing, not a regular file (a FIFO, a device), over 1 MiB (``MAX_RULE_FILE_BYTES``: a
            space file is a few lines), unreadable, not a mapping.
    """
    import yaml  # noqa: PLC0415 - a declared dependency; YAML is a superset of JSON

    # a FIFO would hang the read (tune waited forever), /dev/zero would grow without bound
    check_regular_file(path, what="space file", max_bytes=MAX_RULE_FILE_BYTES)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        why = yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else exc
        raise InputError(f"cannot read the space file: {why}", path=path, hint="give YAML or JSON") from None
    if not isinstance(data, dict):
        raise InputError(
            "the space file must be a mapping of NAME to values",
            path=path,
            hint="e.g. {BLOCK_M: [64, 128], num_warps: {min: 2, max: 8}}",
        )
    return data


def apply_space_spec(space: SearchSpace, spec: dict[str, Any], path: Path | None = None) -> SearchSpace:
    """Restrict or extend ``space`` with a ``--space`` mapping (see the module docstring; ``pin_others`` is
    the caller's: ``session.make_space``).

    Raises:
        InputError: a name the kernel does not have, or values that are not positive integers.
    """
    check_space_spec(spec, path)
    dims = dict(space.dims)
    for name, rule in spec.items():
        if name == PIN_OTHERS:
            continue
        if name not in dims:
            raise InputError(
                f"the space file names {name!r}, which is not a tunable parameter of the kernel",
                path=path,
                hint=f"use one of: {', '.join(dims)}",
            )
        values = rule_values(rule, dims[name])
        if not values:
            raise InputError(f"the space file leaves {name} no value", path=path, hint="widen it")
        dims[name] = tuple(sorted(values))
    return SearchSpace(tuple((name, dims[name]) for name, _ in space.dims))


def rule_values(rule: list[int] | dict[str, Any], current: tuple[int, ...] | list[int]) -> set[int]:
    """The values a checked ``--space`` entry leaves a dimension whose values are ``current``: a list
    replaces them; ``add`` extends them; ``min``/``max`` keep those in range plus the powers of two in it."""
    if isinstance(rule, list):
        return set(rule)
    values = set(current) | set(rule.get("add") or [])
    if "min" in rule or "max" in rule:
        lo, hi = int(rule.get("min", min(values))), int(rule.get("max", max(values)))
        values = {v for v in values | set(_pow2_range(lo, hi)) if lo <= v <= hi}
    return values


#: The ``--space`` key that is not a dimension: every dimension the file does not name stays at the start.
PIN_OTHERS = "pin_others"
#: Threads per block on every NVIDIA GPU since compute capability 2.0 (CUDA C++ Programming Guide, "Compute
#: Capabilities" table): 32 warps.
MAX_WARPS = 32


def check_space_spec(
    spec: dict[str, Any], path: Path | None = None, names: list[str] | None = None
) -> dict[str, Any]:
    """Check a ``--space`` mapping before anything runs; returns it unchanged. ``names``: the dimensions the
    kernel may have (its tile constexprs, ``num_warps``, ``num_stages``), when known.

    Every entry must be a non-empty list of positive integers or a mapping of ``add`` (such a list),
    ``min``/``max`` (positive integers, ``min <= max``); ``pin_others`` true or false. A ``BLOCK*`` value must
    be a power of two (the limits never measure another: ``space.violations``), and so must ``num_warps``
    (Triton 3.6's CUDA backend asserts it), at most ``MAX_WARPS``.

    Raises:
        InputError: the first entry that breaks a rule, named with the fix.
    """
    for name, rule in spec.items():
        if name == PIN_OTHERS:
            if not isinstance(rule, bool):
                raise InputError(
                    f"the space file's pin_others must be true or false, not {rule!r}",
                    path=path,
                    hint="pin_others: true keeps every dimension the file does not name at the start's value",
                )
            continue
        if names is not None and name not in names:
            raise InputError(
                f"the space file names {name!r}, which is not a tunable parameter of the kernel",
                path=path,
                hint=f"use one of: {', '.join(names)}",
            )
        if isinstance(rule, dict) and rule and set(rule) <= {"add", "min", "max"}:
            add = rule.get("add", [])
            bounds = [rule[k] for k in ("min", "max") if k in rule]
            if not isinstance(add, list) or ("add" in rule and not add):
                raise _bad_entry(name, rule, path)
            if not all(_positive_int(v) for v in bounds):
                raise _bad_entry(name, rule, path)
            _check_values(name, add, path)
            if len(bounds) == 2 and bounds[0] > bounds[1]:
                raise InputError(
                    f"the space file's {name} has min > max: {rule}", path=path, hint="swap them"
                )
        elif isinstance(rule, list) and rule:
            _check_values(name, rule, path)
        else:
            raise _bad_entry(name, rule, path)
    return spec


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _bad_entry(name: str, rule: Any, path: Path | None) -> InputError:
    return InputError(
        f"the space file's entry for {name} must be a non-empty list of positive integers or a mapping with "
        f"add (a list), min, max (positive integers), not {rule!r}",
        path=path,
        hint="e.g. BLOCK_M: [64, 128], num_warps: {min: 2, max: 8}, num_stages: {add: [5]}",
    )


def _check_values(name: str, values: list[Any], path: Path | None) -> None:
    if not all(_positive_int(v) for v in values):
        raise InputError(
            f"the space file's values for {name} must be positive integers: {values}",
            path=path,
            hint="write whole numbers, e.g. [64, 128]",
        )
    odd = [v for v in values if v & (v - 1)]
    if odd and (name.upper().startswith("BLOCK") or name == "num_warps"):
        why = (
            "Triton requires it" if name == "num_warps" else "tl.arange needs it; tune never measures another"
        )
        raise InputError(
            f"the space file's {name} values {odd} are not powers of two ({why})",
            path=path,
            hint="use powers of two, e.g. 4, 8, 64",
        )
    if name == "num_warps" and values and max(values) > MAX_WARPS:
        raise InputError(
            f"the space file's num_warps {max(values)} is above {MAX_WARPS} (1024 threads per block)",
            path=path,
            hint=f"use 1-{MAX_WARPS}",
        )
