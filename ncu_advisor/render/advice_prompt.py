"""``recommend --format prompt``: one optimiser prompt per variant (``render.prompt``), from an Analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ncu_advisor import gpus
from ncu_advisor.analysis.result import Analysis
from ncu_advisor.errors import AdvisorError
from ncu_advisor.kernelsrc.facts import variant_code
from ncu_advisor.render.prompt import TritonApi, render_prompt

if TYPE_CHECKING:
    from ncu_advisor.rules.engine import KernelResult

SEPARATOR = "\n" + "=" * 100 + "\n"


def _gpu_block(results: list[KernelResult]) -> str | None:
    gpu_name = next((r.gpu for r in results if r.gpu), None)
    try:
        spec, _warnings = gpus.spec_for(pd.DataFrame({"gpu": [gpu_name]}))
    except AdvisorError:
        return None
    return str(gpus.prompt_block(spec)).rstrip() if spec is not None else None


def render_prompts(analysis: Analysis, triton_api: TritonApi | None = None) -> str:
    """One prompt per variant, showing only the kernels the kernel file defines (as the seeds do).

    Without a kernel file the prompt's ``[CURRENT CODE]`` is empty. ``triton_api``: the installed Triton's
    ``tl.*`` names (``collect.triton_api.probe_triton_language``), else the seeds' list.
    """
    facts = analysis.kernel_facts[0] if analysis.kernel_facts else None
    variants: dict[str | None, list[KernelResult]] = {}
    for result in analysis.results:
        variants.setdefault(result.variant, []).append(result)
    prompts = []
    for group in variants.values():
        shown = [r for r in group if facts is not None and facts.kernel(r.kernel) is not None] or group
        code = None
        if facts is not None:
            jit_names = [k.name for r in shown if (k := facts.kernel(r.kernel)) is not None]
            code = variant_code(facts.text, jit_names, shown[0].variant)
        prompts.append(
            render_prompt(
                shown,
                code=code,
                stage=analysis.stage,
                gpu_block=_gpu_block(shown),
                ncu_rules=analysis.ncu_rules,
                triton_api=triton_api,
                not_profiled=[
                    f"{x['kernel']} launch {x['launch']}: not profiled: {x['reason']}"
                    for x in analysis.not_profiled
                    if x.get("variant") == shown[0].variant
                ],
            )
        )
    return SEPARATOR.join(prompts)
