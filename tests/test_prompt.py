"""`recommend --format prompt`: the seed prompts' structure, filled from a real report."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.ingest.readers import read_report
from ncu_advisor.render.prompt import STAGE_GUIDANCE

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


# ---- the "Triton has NO" line: from the installed triton.language, else the seeds' text ----------------


def test_prompt_keeps_the_seed_list_when_triton_is_not_importable(monkeypatch) -> None:
    import builtins

    from ncu_advisor.collect.triton_api import probe_triton_language

    real_import = builtins.__import__

    def no_triton(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "triton" or name.startswith("triton."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_triton)
    for name in [m for m in list(sys.modules) if m == "triton" or m.startswith("triton.")]:
        monkeypatch.delitem(sys.modules, name)
    assert probe_triton_language() is None
    prompt = _prompt(str(SEED001), "--source", str(FUSED))
    line = next(x for x in prompt.splitlines() if x.startswith("- Triton has NO:"))
    assert line.startswith("- Triton has NO: tl.tanh, tl.sigmoid, tl.gelu, tl.silu, tl.softmax, tl.mish")
    assert "the seed prompts' list" in line and "not importable" in line
    assert "Triton HAS" not in prompt


def test_prompt_derives_the_list_from_the_installed_triton(monkeypatch) -> None:
    """A triton.language with sigmoid and softmax (as Triton 3.x has) and no tanh/gelu/silu/mish."""
    from ncu_advisor.collect.triton_api import probe_triton_language

    triton = types.ModuleType("triton")
    triton.__version__ = "3.6.0"  # type: ignore[attr-defined]
    language = types.ModuleType("triton.language")
    language.sigmoid = lambda x: x  # type: ignore[attr-defined]
    language.softmax = lambda x: x  # type: ignore[attr-defined]
    language.gelu = "not a function"  # type: ignore[attr-defined]
    triton.language = language  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "triton", triton)
    monkeypatch.setitem(sys.modules, "triton.language", language)
    api = probe_triton_language()
    assert api is not None and api.version == "3.6.0"
    assert api.missing == ("tanh", "gelu", "silu", "mish")
    prompt = _prompt(str(SEED001), "--source", str(FUSED))
    lines = [x for x in prompt.splitlines() if x.startswith("- Triton ")]
    assert lines == [
        "- Triton has NO: tl.tanh, tl.gelu, tl.silu, tl.mish "
        "(checked against the installed triton.language, Triton 3.6.0)",
        "- Triton HAS: tl.sigmoid, tl.softmax (checked against the installed triton.language, Triton 3.6.0)",
    ]
