"""`ncu-advisor gpus` lists the GPU catalogue."""

from __future__ import annotations

import typer
from tabulate import tabulate

from ncu_advisor.cli import app, handle_errors
from ncu_advisor.gpus import catalogue, prompt_block


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@app.command("gpus")
@handle_errors
def gpus_command(
    key: str | None = typer.Argument(
        None, help="Print this GPU's prompt block (e.g. rtx4090) instead of the list."
    ),
) -> None:
    """List the GPU catalogue (datasheet figures; tensor TFLOPS dense, FP32 accumulate)."""
    specs = catalogue()
    if key is not None:
        if key not in specs:
            from ncu_advisor.errors import InputError

            raise InputError(f"no GPU {key!r} in the catalogue", hint=f"known: {', '.join(specs)}")
        typer.echo(prompt_block(specs[key]))
        return
    headers = [
        "key",
        "name",
        "arch",
        "CC",
        "SMs",
        "GB/s",
        "TF32",
        "BF16",
        "FP16",
        "FP32",
        "warps/SM",
        "smem/SM KB",
        "L2 MB",
    ]
    rows = [
        [
            s.key,
            s.name,
            s.architecture,
            s.cc,
            s.sm_count,
            _fmt(s.mem_bw_gbs),
            _fmt(s.tf32_tflops),
            _fmt(s.bf16_tflops),
            _fmt(s.fp16_tflops),
            _fmt(s.fp32_tflops),
            s.max_warps_per_sm,
            _fmt(s.smem_per_sm_kb),
            _fmt(s.l2_mb),
        ]
        for s in specs.values()
    ]
    typer.echo(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    typer.echo(f"{len(specs)} GPUs; `ncu-advisor gpus KEY` prints one as the prompt's Target GPU block")
