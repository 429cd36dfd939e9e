"""One tune session from a kernel file: pick the kernel, the start config, the limits; run the loop.

``plan_tune`` reads the file statically (never imports it); ``tune_file`` runs the loop with the child
backend and writes ``runs/<UTC time>-<stem>-tune/tune.json``. The bench (``bench/bench_tune.py``) calls
``plan_tune``/``make_limits``/``RuleRecommender`` with its own in-process measure function.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncu_advisor.collect.tune.backend import Measurement
from ncu_advisor.collect.tune.emit import METHOD_CLASS_CONFIG, class_config_values, pin_method
from ncu_advisor.collect.tune.recommend import extents_for
from ncu_advisor.collect.tune.searchspace import SearchSpace
from ncu_advisor.collect.tune.space import Limits, TuneConfig, shared_estimate
from ncu_advisor.errors import AdvisorError, InputError, KernelFileError
from ncu_advisor.kernelsrc.invariant import InvariantLoad, find_invariant_loads_in_source


@dataclass
class TunePlan:
    """What the static analysis says about the tuned kernel."""

    kernel_file: Path
    variant: str
    kernel: str
    facts: Any
    source: Any
    start: TuneConfig
    invariant: list[InvariantLoad]
    method: str
    notes: list[str] = field(default_factory=list)


def plan_tune(kernel_file: Path, variant: str, kernel: str | None = None) -> TunePlan:
    """Find the variant's Triton kernel and its current parameters from the source.

    Raises:
        KernelFileError / InputError: no such variant, no Triton kernel reached, several without --kernel.
    """
    from ncu_advisor.collect.profile.variants import (
        kernels_reached,
        list_variants,
        parse_kernel_file,
        select_variants,
    )
    from ncu_advisor.kernelsrc.facts import analyze_file

    kernel_file = Path(kernel_file)
    info = list_variants(kernel_file)
    chosen = select_variants(info, [variant])[0]
    source = analyze_file(kernel_file)
    jit_names = {k.name for k in source.kernels}
    reached = sorted(kernels_reached(parse_kernel_file(kernel_file), chosen.class_name) & jit_names)
    if kernel is not None:
        if kernel not in jit_names:
            known = ", ".join(sorted(jit_names)) or "none"
            raise InputError(
                f"no @triton.jit kernel {kernel!r} in the file (it has: {known})",
                path=kernel_file,
                hint="pass --kernel with one of those names",
            )
        name = kernel
    elif len(reached) == 1:
        name = reached[0]
    elif not reached:
        raise KernelFileError(
            f"variant {variant} launches no @triton.jit kernel of the file; nothing to tune",
            path=kernel_file,
            hint="tune a variant that launches a Triton kernel",
        )
    else:
        raise InputError(
            f"variant {variant} launches several Triton kernels ({', '.join(reached)})",
            path=kernel_file,
            hint="choose one with --kernel NAME",
        )
    facts = next(k for k in source.kernels if k.name == name)
    configs = facts.candidate_configs()
    first = configs[0] if configs else None
    params = {k: v for k, v in (first.params if first else {}).items() if _tunable(facts, k)}
    start = TuneConfig.make(
        params,
        (first.num_warps if first and first.num_warps else 4),
        (first.num_stages if first and first.num_stages else 3),
    )
    text = Path(kernel_file).read_text(encoding="utf-8")
    invariant = [
        load for load in find_invariant_loads_in_source(text, str(kernel_file)) if load.kernel == name
    ]
    method = pin_method(text, chosen.class_name, bool(facts.autotune_configs))
    if method == METHOD_CLASS_CONFIG:  # the zoo convention: the class's config dict holds the launch values
        values = {
            k: v for k, v in (class_config_values(text, chosen.class_name) or {}).items() if v is not None
        }
        start = start.replace(
            {k: v for k, v in values.items() if _tunable(facts, k)},
            num_warps=values.get("num_warps"),
            num_stages=values.get("num_stages"),
        )
    return TunePlan(
        kernel_file=kernel_file,
        variant=chosen.class_name,
        kernel=name,
        facts=facts,
        source=source,
        start=start,
        invariant=invariant,
        method=method,
    )


def _tunable(facts: Any, name: str) -> bool:
    from ncu_advisor.collect.tune.searchspace import is_tile_param  # noqa: PLC0415

    return name in facts.constexpr_params and is_tile_param(name)


def make_space(
    plan: TunePlan,
    start: TuneConfig,
    measurement: Measurement,
    spec: dict[str, Any] | None = None,
    spec_path: Path | None = None,
) -> SearchSpace:
    """The kernel's search space (``searchspace.space_from_kernel``) around ``start``, with the runtime
    extents of its loops (from the start's launch), the autotune list, and the ``--space`` file applied."""
    from ncu_advisor.collect.tune.searchspace import apply_space_spec, space_from_kernel  # noqa: PLC0415

    extents = extents_for(plan.source.text, plan.kernel, measurement.int_args)
    autotune = [
        TuneConfig.make(
            {k: v for k, v in c.params.items() if k in start.param_dict},
            c.num_warps or start.num_warps,
            c.num_stages or start.num_stages,
        )
        for c in plan.facts.autotune_configs
    ]
    space = space_from_kernel(
        start,
        uses_dot=bool(plan.facts.uses_dot),
        has_loop=bool(plan.facts.num_loops),
        extents=extents,
        autotune=autotune,
    )
    if spec and spec.get("pin_others"):  # every dimension the spec does not name stays at the start
        values = {**start.param_dict, "num_warps": start.num_warps, "num_stages": start.num_stages}
        spec = {
            **{n: [values[n]] for n in space.names if n not in spec and n in values},
            **{k: v for k, v in spec.items() if k != "pin_others"},
        }
    return apply_space_spec(space, spec, spec_path) if spec else space


def make_limits(
    plan: TunePlan, start: TuneConfig, measurement: Measurement, shared_per_block: int | None = None
) -> Limits:
    """Limits from the source (tl.dot?), the start's launch (runtime extents) and its compiled shared size."""
    extents = extents_for(plan.source.text, plan.kernel, measurement.int_args)
    element_bytes = 4
    probe = Limits(uses_dot=plan.facts.uses_dot, element_bytes=1)
    per_element = shared_estimate(start, probe)
    if measurement.shared and per_element:
        ratio = measurement.shared / per_element
        element_bytes = min((1, 2, 4), key=lambda b: abs(b - ratio))
    kwargs: dict[str, Any] = gpu_limits(measurement.environment.get("gpu") or {})
    if shared_per_block:
        kwargs["shared_per_block"] = shared_per_block
    # tl.dot needs operand tiles of at least 16; nothing else has a floor but 1 (BLOCK_H may count heads)
    dot_params = tuple(p for p in ("BLOCK_M", "BLOCK_N", "BLOCK_K") if plan.facts.uses_dot)
    return Limits(
        uses_dot=plan.facts.uses_dot,
        min_block=16 if plan.facts.uses_dot else 1,
        dot_params=dot_params,
        element_bytes=element_bytes,
        extents=extents,
        **kwargs,
    )


def gpu_limits(gpu: dict[str, Any]) -> dict[str, Any]:
    """Per-block shared memory, registers per thread and threads per block of the child's GPU, from the GPU
    catalogue (``ncu_advisor.gpus``); empty (the Hopper defaults of ``Limits``) when the GPU is unknown."""
    name = gpu.get("name")
    if not isinstance(name, str) or not name:
        return {}
    try:
        from ncu_advisor import gpus

        spec, _warnings = gpus.spec_for(
            {"gpu": name, "cc": gpu.get("cc"), "device__attribute_multiprocessor_count": gpu.get("sm_count")}
        )
    except (ImportError, AdvisorError, KeyError, TypeError, ValueError):
        return {}
    limits: dict[str, Any] = {}
    if getattr(spec, "smem_per_block_kb", None):
        limits["shared_per_block"] = int(spec.smem_per_block_kb * 1024)
    if getattr(spec, "max_regs_per_thread", None):
        limits["max_registers"] = int(spec.max_regs_per_thread)
    if getattr(spec, "max_threads_per_block", None):
        limits["max_threads"] = int(spec.max_threads_per_block)
    return limits


def copy_kernel(kernel_file: Path, run_dir: Path) -> None:
    shutil.copyfile(kernel_file, run_dir / "kernel.py")


def has_class(path: Path, name: str) -> bool:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    return any(isinstance(n, ast.ClassDef) and n.name == name for n in tree.body)
