"""`recommend --format prompt`: the seed prompts' structure, filled from a real report."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.render.prompt import STAGE_GUIDANCE
from ncu_advisor.ingest.readers import read_report

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "seeds"
SEED000 = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed000_small.ncu-rep.gz"
SEED001 = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"
FUSED = ROOT / "kernels" / "fused.py"
runner = CliRunner()


def _prompt(*args: str) -> str:
    result = runner.invoke(app, ["recommend", *args, "--format", "prompt"])
    assert result.exit_code == 0, result.output
    return result.stdout


def _metrics_json(prompt: str) -> dict:
    block = prompt.split("[NCU PROFILING METRICS]\n", 1)[1]
    decoder = json.JSONDecoder()
    document, _ = decoder.raw_decode(block)
    return document


def test_prompt_sections_in_seed_order() -> None:
    prompt = _prompt(str(SEED001), "--source", str(FUSED))
    order = [
        "You are a Triton kernel optimization specialist. Generate the FASTEST possible kernel.",
        "# Target GPU",
        "[OPTIMIZATION STAGE]",
        "[CURRENT CODE]",
        "[NCU PROFILING METRICS]",
        "[ADVISOR FINDINGS]",
        "**Task**: Analyze the NCU metrics",
        "OUTPUT RULES (STRICT):",
    ]
    positions = [prompt.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "H200" in prompt.split("[OPTIMIZATION STAGE]")[0]  # the report's GPU, not the seeds' 4090
    assert "def conv2d_scale_min_kernel(" in prompt
    code = prompt.split("[CURRENT CODE]", 1)[1].split("[NCU PROFILING METRICS]", 1)[0]
    assert "class ModelNew_seed001(nn.Module)" in code  # the variant's own code, as in the seed prompt
    assert "class ModelNew_seed000(" not in code and "def scale_channel_min_kernel(" not in code


def test_prompt_metrics_are_the_reports_values() -> None:
    prompt = _prompt(str(SEED001), "--source", str(FUSED))
    metrics = _metrics_json(prompt)
    assert list(metrics) == ["conv2d_scale_min_kernel"]
    table = read_report(SEED001)
    row = table.iloc[0]
    values = metrics["conv2d_scale_min_kernel"]
    for name in (
        "sm__throughput.avg.pct_of_peak_sustained_elapsed",
        "sm__warps_active.avg.pct_of_peak_sustained_active",
        "dram__throughput.avg.pct_of_peak_sustained_elapsed",
        "lts__t_sector_hit_rate.pct",
    ):
        assert values[name] == round(float(row[name]), 2)
    assert values["launch__grid_size"] == int(row["launch__grid_size"])
    assert values["launch__registers_per_thread"] == int(row["launch__registers_per_thread"])
    assert values["launch__occupancy_limit_registers"] == int(row["launch__occupancy_limit_registers"])


def test_prompt_shows_only_the_sources_kernels_like_the_seed() -> None:
    prompt = _prompt(str(SEED000), "--source", str(FUSED))
    assert list(_metrics_json(prompt)) == ["scale_channel_min_kernel"]  # not cuDNN's or PyTorch's kernels
    assert "NA301 memory-bound" in prompt


def test_stage_guidance_is_the_seeds_text() -> None:
    if not SEEDS.is_dir():
        return
    seeds = {p.name[:3]: p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")}
    assert STAGE_GUIDANCE["block-size"] in seeds["000"]
    assert STAGE_GUIDANCE["fine-tune"] in seeds["001"]


def test_prompt_stage_choice() -> None:
    pressured = _prompt(str(SEED001), "--source", str(FUSED))
    assert "Focus: BLOCK_SIZE with register pressure awareness." in pressured  # 187 registers -> block-size
    tuned = _prompt(str(SEED001), "--source", str(FUSED), "--stage", "fine-tune")
    assert "Focus: Fine-tuning fused kernel parameters." in tuned
    assert "Focus: BLOCK_SIZE" not in tuned
    assert re.search(r"num_warps=4, num_stages=2\)", tuned)
