"""Pin a Triton kernel's launch parameters inside the child process (``child.py --override JSON``).

The override is ``{"kernel": NAME, "params": {"BLOCK_M": 64, ...}, "num_warps": 4, "num_stages": 2}``; any of
params / num_warps / num_stages may be absent. How it is applied, in this order (the first that fits wins):

1. ``@triton.autotune`` kernel (the module attribute has ``configs``): its ``configs`` list becomes one
   ``triton.Config`` holding the candidate (the first original config's ``pre_hook`` is kept, so TMA
   descriptor hooks still run). One config: the Autotuner skips its benchmarking.
2. Variant class with a ``config`` dict (the zoo convention: ``forward`` passes ``**self.config`` to a
   wrapper that computes the grid itself): the keys the dict has are set on the class; keys it lacks
   (e.g. ``num_stages`` when the wrapper does not take it) go through (3) when that is safe.
3. Plain ``@triton.jit`` kernel launched as ``kernel[grid](..., BLOCK_M=128, num_warps=4)``: the
   JITFunction instance gets its own ``run`` that replaces those keyword arguments before calling the
   original. Triton 3.6 ``JITFunction.run`` binds the keyword arguments first and calls a callable grid
   with the bound arguments (``grid = grid(bound_args)``, runtime/jit.py), so a grid written as
   ``lambda meta: (cdiv(P, meta["BLOCK_M"]),)`` follows the override. A grid given as a fixed tuple was
   computed before the launch: when it does not depend on the overridden value (one program per row,
   ``(M,)``, whatever BLOCK_SIZE is) the override is correct; when it does, the pinned launch computes the
   wrong thing. Which of the two cannot be told statically without false refusals, so the override is
   applied and the record names the values changed under a fixed grid (``fixed_grid_changed``): the
   trial's correctness check against the reference is the judge (a wrong result rejects that trial only).
   ``num_warps`` / ``num_stages`` never change the grid and are always overridden.

Whatever the method, the wrapper records the first launch of the kernel: the keyword arguments the
caller passed (the variant's own configuration, before the override), the values used, and the integer
arguments by name (runtime extents such as ``C_out`` that bound a candidate's BLOCK sizes). No torch or
triton import happens here: objects are duck-typed, so the module is testable on a CPU-only machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ncu_advisor.collect.tune.searchspace import is_tile_param

LAUNCH_OPTIONS = ("num_warps", "num_stages")


class PinError(RuntimeError):
    """The override cannot be applied safely to this kernel or launch."""


@dataclass(frozen=True)
class Override:
    """A launch-parameter override for one kernel."""

    kernel: str
    params: dict[str, int] = field(default_factory=dict)
    num_warps: int | None = None
    num_stages: int | None = None

    def launch_kwargs(self) -> dict[str, int]:
        """Every value to force at the launch: the constexpr params, then num_warps / num_stages."""
        values = dict(self.params)
        if self.num_warps is not None:
            values["num_warps"] = self.num_warps
        if self.num_stages is not None:
            values["num_stages"] = self.num_stages
        return values

    def to_json(self) -> str:
        return json.dumps(
            {
                "kernel": self.kernel,
                "params": self.params,
                "num_warps": self.num_warps,
                "num_stages": self.num_stages,
            },
            sort_keys=True,
        )


def parse_override(text: str) -> Override:
    """Parse the ``--override`` JSON text.

    Raises:
        PinError: not JSON, no kernel name, or a non-integer value.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PinError(f"--override is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("kernel"), str) or not data["kernel"]:
        raise PinError(
            '--override must be {"kernel": NAME, "params": {...}, "num_warps": W, "num_stages": S}'
        )
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise PinError("--override params must be a mapping of constexpr name to integer")
    checked: dict[str, int] = {}
    for key, value in params.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise PinError(f"--override param {key} must be an integer, not {value!r}")
        checked[str(key)] = value
    options: dict[str, int | None] = {}
    for key in LAUNCH_OPTIONS:
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise PinError(f"--override {key} must be an integer, not {value!r}")
        options[key] = value
    return Override(kernel=data["kernel"], params=checked, **options)


def _jit_function(obj: Any) -> Any:
    """The JITFunction under Autotuner/Heuristics wrappers (they keep it in ``.fn``)."""
    for _ in range(4):
        if hasattr(obj, "arg_names") and hasattr(obj, "run") and not hasattr(obj, "configs"):
            return obj
        inner = getattr(obj, "fn", None)
        if inner is None:
            return obj
        obj = inner
    return obj


def _int_args(jit: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, int]:
    names = list(getattr(jit, "arg_names", []) or [])
    found: dict[str, int] = {}
    for name, value in list(zip(names, args, strict=False)) + list(kwargs.items()):
        if isinstance(value, int) and not isinstance(value, bool):
            found[name] = value
    return found


def _affine(param: str, arg: str) -> bool:
    """``BLOCK_M`` steps ``M``, ``BLOCK_ROWS`` steps ``n_rows``: the parameter's suffix names the argument."""
    suffix = param.upper().split("_", 1)[-1]
    name = arg.upper()
    return name == suffix or name.endswith("_" + suffix) or name == "N_" + suffix


def rescale_grid(
    grid: Any,
    passed: dict[str, Any],
    changed: dict[str, int],
    int_args: dict[str, int],
    order: list[str] | None = None,
) -> tuple[Any, dict[str, str]]:
    """A fixed tuple grid recomputed for changed tile sizes: ``(grid, {axis: PARAM})``.

    An axis is recomputed as ``cdiv(ARG, new)`` when it equals ``cdiv(ARG, old)`` for an integer argument
    ``ARG`` of the launch and a tile parameter passed at the launch with value ``old`` whose name names that
    argument (``_affine``: ``BLOCK_M`` and ``M``, ``BLOCK_ROWS`` and ``n_rows``), as in ``grid =
    (cdiv(M, 32), cdiv(N, 32))`` written with the literals of ``BLOCK_M=32, BLOCK_N=32``. Without it a
    larger tile under the old grid computes the right result with idle programs, and the trial times a
    launch the configuration never makes (linear_bias_gelu, H200 2026-11-30: BLOCK_M/N 64 timed 1.46 ms
    under the 32x32 grid, 0.69 ms with its own). Each parameter sizes one axis at most; when several
    parameters match one axis (``M == K`` and ``BLOCK_M == BLOCK_K``), the axes take them in the kernel's
    parameter order (``order``). A name match is required: a grid that equals ``cdiv(X, BLOCK)`` by
    coincidence (one program per row, ``n_rows == n_cols / BLOCK``) must not shrink. Every other axis stays
    (an unchanged parameter keeps its axis as it is), and the trial's correctness check still judges.
    """
    if not isinstance(grid, tuple) or not changed:
        return grid, {}
    rank = {name: i for i, name in enumerate(order or [])}
    tiles = {
        k: v
        for k, v in passed.items()
        if is_tile_param(k) and isinstance(v, int) and not isinstance(v, bool) and v > 0
    }
    extents = {k: v for k, v in int_args.items() if k not in tiles and k not in LAUNCH_OPTIONS and v > 0}
    axes = list(grid)
    followed: dict[str, str] = {}
    used: set[str] = set()
    for i, size in enumerate(grid):
        if not isinstance(size, int) or isinstance(size, bool):
            continue
        named = sorted(
            (rank.get(param, len(rank)), param, arg)
            for param, old in tiles.items()
            for arg, extent in extents.items()
            if param not in used and -(-extent // old) == size and _affine(param, arg)
        )
        if not named:
            continue
        _, param, _ = named[0]
        used.add(param)
        targets = {
            -(-extents[arg] // changed[param]) for _, p, arg in named if p == param and param in changed
        }
        if len(targets) == 1:
            axes[i] = targets.pop()
            followed[str(i)] = param
    return tuple(axes), followed


def install_run_wrapper(
    jit: Any, forced: dict[str, int], record: dict[str, Any], track_last: bool = False
) -> None:
    """Give the JITFunction ``jit`` its own ``run`` that forces ``forced`` keyword values and records
    launches.

    ``track_last``: record the latest launch instead of the first (an Autotuner first launches every config
    while it benchmarks, then only the one it chose).

    A constexpr changed under a fixed tuple grid is recorded as ``fixed_grid_changed`` (never refused),
    unless ``rescale_grid`` recomputes the grid axis it sizes (``grid_rescaled``).
    """
    shadowed = jit.__dict__.get("run") if hasattr(jit, "__dict__") else None

    def original(*args: Any, **kwargs: Any) -> Any:
        # Looked up at call time: the profile child's launch recorder patches JITFunction.run on the class
        # after the pin is installed, and must still see this kernel's launches.
        if shadowed is not None:
            return shadowed(*args, **kwargs)
        return type(jit).run(jit, *args, **kwargs)

    def run(*args: Any, **kwargs: Any) -> Any:
        grid = kwargs.get("grid")
        if kwargs.get("warmup"):
            return original(*args, **kwargs)
        passed = {k: v for k, v in kwargs.items() if k not in ("grid", "warmup")}
        changed = {k: v for k, v in forced.items() if passed.get(k) != v}
        if not callable(grid):
            grid_bound = sorted(k for k in changed if k not in LAUNCH_OPTIONS)
            rescaled, followed = rescale_grid(
                grid, passed, changed, _int_args(jit, args, passed), list(getattr(jit, "arg_names", []) or [])
            )
            if followed:
                kwargs["grid"] = rescaled
                record["grid_rescaled"] = {"from": list(grid or ()), "to": list(rescaled), "by": followed}
                grid_bound = [k for k in grid_bound if k not in followed.values()]
            if grid_bound:  # judged by the correctness check, not refused (see the module docstring)
                record["fixed_grid_changed"] = grid_bound
        if "launched_with" not in record or track_last:
            record["launched_with"] = {
                k: v
                for k, v in passed.items()
                if isinstance(v, int) and not isinstance(v, bool) and (k in LAUNCH_OPTIONS or k.upper() == k)
            }
            record["int_args"] = _int_args(jit, args, passed)
            record["grid_callable"] = callable(grid)
        kwargs.update(forced)
        if "used" not in record:
            record["used"] = {
                k: v for k, v in kwargs.items() if k in record.get("launched_with", {}) or k in forced
            }
        record["launches"] = record.get("launches", 0) + 1
        return original(*args, **kwargs)

    jit.run = run


def apply_override(
    module: Any, variant_class: str | None, override: Override, config_factory: Any = None
) -> dict[str, Any]:
    """Apply ``override`` to the kernel ``override.kernel`` of the imported kernel-file ``module``.

    Args:
        module: the imported kernel file.
        variant_class: the class the child builds (its ``config`` dict is used when it has one).
        override: what to pin.
        config_factory: builds a ``triton.Config`` (default: ``triton.Config``, imported lazily).

    Returns:
        The record (a live dict, filled at the first launch): ``method``, ``kernel``, ``forced``,
        ``launched_with``, ``used``, ``int_args``, ``launches``; the child stores it in its result JSON.

    Raises:
        PinError: no such kernel in the module.
    """
    target = getattr(module, override.kernel, None)
    if target is None:
        raise PinError(f"the kernel file has no kernel {override.kernel!r} at module level")
    record: dict[str, Any] = {"kernel": override.kernel, "forced": override.launch_kwargs()}
    jit = _jit_function(target)
    configs = getattr(target, "configs", None)
    if isinstance(configs, list) and configs:
        if override.launch_kwargs():
            if config_factory is None:
                import triton  # noqa: PLC0415 - only the child, on the GPU machine, has triton

                config_factory = triton.Config
            first = configs[0]
            params = {**dict(getattr(first, "kwargs", {}) or {}), **override.params}
            warps = override.num_warps if override.num_warps is not None else getattr(first, "num_warps", 4)
            stages = (
                override.num_stages if override.num_stages is not None else getattr(first, "num_stages", 3)
            )
            target.configs = [
                config_factory(
                    params, num_warps=warps, num_stages=stages, pre_hook=getattr(first, "pre_hook", None)
                )
            ]
            record["method"] = "autotune-configs"
            install_run_wrapper(jit, {}, record)
        else:
            record["method"] = "record-only"
            record["autotune_configs"] = [str(c) for c in configs]
            install_run_wrapper(jit, {}, record, track_last=True)
        return record
    forced = override.launch_kwargs()
    cls = getattr(module, variant_class, None) if variant_class else None
    class_config = getattr(cls, "config", None) if cls is not None else None
    if cls is not None and forced and isinstance(class_config, dict) and set(forced) & set(class_config):
        in_dict = {k: v for k, v in forced.items() if k in class_config}
        cls.config = {**class_config, **in_dict}
        forced = {k: v for k, v in forced.items() if k not in class_config}
        record["method"] = "class-config" if not forced else "class-config+launch-kwargs"
    else:
        record["method"] = "launch-kwargs" if forced else "record-only"
    install_run_wrapper(jit, forced, record)
    return record


def module_constants(module: Any, arg_names: list[str]) -> dict[str, tuple[str, int]]:
    """Module-level integer constants named after a launch value: ``NAME`` == the constexpr, ``*_NAME``
    (``ROPE_BLOCK_H`` for ``BLOCK_H``), or ``*_WARPS`` / ``*_STAGES`` for num_warps / num_stages.

    Returns ``{constant: (launch parameter, its value at import)}``. Whether one really feeds the launch is
    checked at pin time (its value must equal what the start launched with) and, in the end, by the trial's
    correctness check.
    """
    found: dict[str, tuple[str, int]] = {}
    params = [p for p in arg_names if p.upper() == p] + ["num_warps", "num_stages"]
    for name, value in vars(module).items():
        if not isinstance(value, int) or isinstance(value, bool) or name.upper() != name:
            continue
        for param in params:
            suffix = param.upper().removeprefix("NUM_") if param in ("num_warps", "num_stages") else param
            if name == param or name.endswith("_" + suffix) or name == suffix:
                found[name] = (param, value)
                break
    return found
