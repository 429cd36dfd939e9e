"""``recommend --format prompt``: the seed prompts' structure, filled from a report and a kernel file.

Sections, in the seeds' order: the specialist header, the ``# Target GPU`` block (``gpus.prompt_block``),
``[OPTIMIZATION STAGE]`` with the chosen stage's guidance (the seeds' text, verbatim), ``[CURRENT CODE]``,
``[NCU PROFILING METRICS]`` (JSON keyed by kernel name: the seeds' five metrics plus registers and
occupancy), then what the seeds did not have: ``[ADVISOR FINDINGS]`` (our rules, with evidence and the
proposed autotune block) and ``[NCU GUIDED ANALYSIS]`` (ncu's own rules, marked when Triton cannot act on
them), and finally the task and the seeds' output rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ncu_advisor.analysis.result import PRESSURE_METRICS, SEED_METRICS, register_pressure
from ncu_advisor.render.findings import NcuRules, ncu_rule_entries
from ncu_advisor.render.skipped import rule_failures, skipped_for_missing

if TYPE_CHECKING:
    from ncu_advisor.rules.engine import KernelResult

HEADER = "You are a Triton kernel optimization specialist. Generate the FASTEST possible kernel."

#: The seeds' stage guidance, verbatim (seed 000: block-size, seed 001: fine-tune).
STAGE_GUIDANCE = {
    "block-size": """## Current Optimization Stage

Focus: BLOCK_SIZE with register pressure awareness.

Key Principle:
- Fusion increases register usage (intermediates stay in registers)
- Spill to local memory kills fusion benefit

Register Pressure Signals (from NCU):
- launch__registers_per_thread > 128 → likely spilling
- launch__occupancy_limit_registers < other limits → register-bound

Rules:
- Start conservative: BLOCK_SIZE ∈ {256, 512} for element-wise
- For matmul fusion: BLOCK_M/N ∈ {32, 64}, BLOCK_K ∈ {32}
- If registers > 128: reduce BLOCK_* by half
- Trade-off: recompute cheap ops (e.g., x*0.5) vs store intermediate

When to Recompute vs Keep:
- Keep: expensive ops (exp, log, div, sqrt)
- Recompute: cheap ops (add, mul, max) if register pressure high
- Example: `y = relu(x); z = y * scale` → keep y
- Example: `y = x * 0.5; z = y + bias` → can recompute y if needed

Autotune:
- 2-3 BLOCK_SIZE configs, always include smaller fallback""",
    "fine-tune": """## Current Optimization Stage

Focus: Fine-tuning fused kernel parameters.

Params:
- num_warps ∈ {4, 8}
- num_stages ∈ {2, 3}

Conditional Rules (NOT one-size-fits-all):

IF register pressure LOW (regs < 96, no spill):
  - Try num_warps=8 for compute-bound fusion
  - num_stages=3 may help hide latency

IF register pressure HIGH (regs > 128 or occupancy_limit_registers):
  - Use num_warps=4 (fewer warps = more registers per warp)
  - Keep num_stages=2 (higher stages need more registers)

IF multi-input fusion (3+ distinct loads):
  - num_stages=2 preferred (each stage buffers all inputs)
  - num_warps=4 often better than 8

Autotune:
- Max 2-3 configs to reduce compilation time
- Always include conservative baseline (num_warps=4, num_stages=2)
- Test before/after: revert if gain < 2%""",
}

OUTPUT_RULES = """\
**Task**: Analyze the NCU metrics and current code, then generate optimized code that maximizes performance.

## CRITICAL — Code MUST compile and run:
1. EVERY kernel function MUST have `@triton.jit` decorator
2. Grid size MUST be > 0: use `triton.cdiv(N, BLOCK)` or `max(1, N // BLOCK)`
3. BLOCK sizes MUST be power-of-2: 16, 32, 64, 128, 256
4. `tl.program_id(axis)` only supports axis = 0, 1, 2
5. No `continue`, `break`, `return` inside loops — use masking
6. No tensor indexing with loop vars: `x[:, i]` is INVALID
7. mask shape MUST match data shape in tl.load/tl.store

TRITON API CONSTRAINTS (CRITICAL):
{api_constraints}

OUTPUT RULES (STRICT):
1. Follow this exact order:
   1. Imports: torch, torch.nn, triton, triton.language as tl
   2. @triton.jit decorated kernel function(s)
   3. Wrapper function(s) for grid calculation and kernel launch
   4. class ModelNew(nn.Module) that calls your kernels
2. Do NOT include: testing code, if __name__, get_inputs, get_init_inputs

```python
# <optimized Triton code>
```"""

#: The functions the seed prompts call missing from Triton ("Triton has NO: tl.tanh, ...").
SEED_MISSING_FUNCTIONS = ("tanh", "sigmoid", "gelu", "silu", "softmax", "mish")


@dataclass(frozen=True)
class TritonApi:
    """The installed Triton, as ``collect.triton_api.probe_triton_language`` found it.

    Attributes:
        version: ``triton.__version__``.
        missing: the names of ``SEED_MISSING_FUNCTIONS`` that its ``triton.language`` does not define.
    """

    version: str
    missing: tuple[str, ...]


def api_constraints(api: TritonApi | None) -> str:
    """The prompt's "Triton has NO" line: from the installed Triton when known, else the seeds' text.

    Either way the line says where it comes from, so a reader (or the LLM) can weigh it.
    """
    if api is None:
        names = ", ".join(f"tl.{name}" for name in SEED_MISSING_FUNCTIONS)
        return f"- Triton has NO: {names} (the seed prompts' list, unchecked: triton is not importable here)"
    present = [name for name in SEED_MISSING_FUNCTIONS if name not in api.missing]
    source = f"checked against the installed triton.language, Triton {api.version}"
    lines = []
    if api.missing:
        lines.append(f"- Triton has NO: {', '.join(f'tl.{name}' for name in api.missing)} ({source})")
    if present:
        lines.append(f"- Triton HAS: {', '.join(f'tl.{name}' for name in present)} ({source})")
    return "\n".join(lines)


PROMPT_METRICS = SEED_METRICS + tuple(m for m in PRESSURE_METRICS if m != "gpu__time_duration.sum")


def choose_stage(results: Sequence[KernelResult], requested: str) -> str:
    """The one stage a prompt teaches: the requested one, or (all/auto) block-size when any kernel shown
    is under register pressure (the ``--stage auto`` criterion), else fine-tune."""
    if requested in STAGE_GUIDANCE:
        return requested
    return "block-size" if register_pressure(results) else "fine-tune"


def target_gpu_block(gpu_name: str | None, spec: Any = None) -> str:
    """The seed-001 ``# Target GPU`` block from the GPU catalogue; the seed-000 one-liner without it."""
    try:
        from ncu_advisor import gpus  # noqa: PLC0415 - the catalogue is optional
    except ImportError:
        return f"# Target GPU: {gpu_name or 'unknown'}"
    if spec is None:
        return f"# Target GPU: {gpu_name or 'unknown'}"
    return str(gpus.prompt_block(spec)).rstrip()


def _metric_json(results: Sequence[KernelResult]) -> str:
    document: dict[str, dict[str, Any]] = {}
    for result in results:
        key = result.kernel if result.kernel not in document else f"{result.kernel} (launch {result.launch})"
        document[key] = {
            name: round(result.metrics[name], 2)
            if isinstance(result.metrics[name], float)
            else result.metrics[name]
            for name in PROMPT_METRICS
            if name in result.metrics
        }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _findings_section(results: Sequence[KernelResult]) -> list[str]:
    """``[ADVISOR FINDINGS]``: the findings, roofline headlines, notes and proposed configs; when rules were
    skipped for missing metrics, how many and which metrics (never a bare "no findings")."""
    parts: list[str] = []
    findings = [(r, f) for r in results for f in r.findings]
    skipped = skipped_for_missing(results)
    failures = rule_failures(results)
    if skipped or findings or failures:
        parts += ["", "[ADVISOR FINDINGS]"]
    if skipped:  # never a bare "no findings": say what the rules could not check
        parts.append(
            "- " + (f"not checked: {skipped.text()}" if findings else skipped.after("no rule fired"))
        )
    parts.extend(f"- {failure.text()}" for failure in failures)  # a rule that failed checked nothing
    if not findings:
        return parts
    for result, finding in findings:
        parts.append(
            f"- {result.kernel}: {finding.rule} {finding.name} ({finding.severity.value}, "
            f"est. {finding.effect_text}): {finding.message}. "
            f"Action: {finding.recommendation}"
        )
    for result in results:
        if result.roofline is not None:
            parts.append(f"- {result.kernel}: {result.roofline.headline()}")
        parts.extend(f"- {result.kernel}: note: {note}" for note in result.notes)
    for result in results:
        if result.autotune_block:
            parts += [
                f"Suggested configs for {result.kernel}:",
                "```python",
                result.autotune_block,
                "```",
            ]
    return parts


def render_prompt(
    results: Sequence[KernelResult],
    *,
    code: str | None,
    stage: str = "auto",
    gpu_block: str | None = None,
    ncu_rules: NcuRules | None = None,
    triton_api: TritonApi | None = None,
    not_profiled: Sequence[str] = (),
) -> str:
    """The optimiser prompt for ``results`` (normally the launches of one variant's Triton kernels).

    Args:
        results: the kernel results to show; give only the kernels of the code (the seeds show only those).
        code: the kernel source for ``[CURRENT CODE]``.
        stage: ``block-size``/``fine-tune``, or ``auto``/``all`` to choose from the metrics.
        gpu_block: the ``# Target GPU`` block; default from the results' GPU name.
        ncu_rules: ncu's guided-analysis results keyed by (report, launch).
        triton_api: the installed Triton's API (``collect.triton_api.probe_triton_language``); None keeps
            the seeds' "Triton has NO" list and says it was not checked.
        not_profiled: one line per launch ncu failed to profile (``kernel launch N: not profiled: why``).
    """
    chosen = choose_stage(results, stage)
    gpu_name = next((r.gpu for r in results if r.gpu), None)
    parts = [
        HEADER,
        "",
        gpu_block or target_gpu_block(gpu_name),
        "",
        "[OPTIMIZATION STAGE]",
        "",
        STAGE_GUIDANCE[chosen],
    ]
    parts += [
        "",
        "",
        "",
        "[CURRENT CODE]",
        "```python",
        (code or "# (kernel source not available)").rstrip(),
        "```",
    ]
    parts += ["", "[NCU PROFILING METRICS]", _metric_json(results)]
    if not_profiled:
        parts += ["", "[NOT PROFILED] (no metric values: nothing is known about these launches)"]
        parts += [f"- {line}" for line in not_profiled]
    parts += _findings_section(results)
    ncu_lines = []
    for result in results:
        for entry in ncu_rule_entries((ncu_rules or {}).get((result.source, result.launch), [])):
            mark = "" if entry["actionable_from_triton"] else " [not actionable from Triton]"
            ncu_lines.append(f"- {result.kernel}: {entry['rule']}{mark}: {entry['message']}")
    if ncu_lines:
        parts += ["", "[NCU GUIDED ANALYSIS]", *ncu_lines]
    parts += ["", OUTPUT_RULES.format(api_constraints=api_constraints(triton_api))]
    return "\n".join(parts) + "\n"
