"""The HTML report's structure, axes and roofline, without a browser (tests/test_html_browser.py has one).

Real data: the recorded example runs (examples/runs) and the H200 ``--set full`` report of the seed kernel
(examples/reports/h200-seed), whose FP32 instruction rates place a launch on the roofline.
"""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ncu_advisor import gpus
from ncu_advisor.analysis.pipeline import analyze
from ncu_advisor.analysis.result import Analysis
from ncu_advisor.render.axes import linear_ticks, log_ticks, milliseconds, si
from ncu_advisor.render.report_html import markdown_html, render_html
from ncu_advisor.render.roofline_svg import (
    RooflineChart,
    chart_svg,
    launch_point,
    roofs_for,
)

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "examples" / "runs"
FULL_REPORT = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_full.ncu-rep.gz"


def analysis_of(run: Path) -> Analysis:
    """The analysis ``report`` renders (kernel paths relative to the repository root)."""
    return analyze([run], source_root=ROOT)


class Text(HTMLParser):
    """The page's visible text (script and style dropped; ``hidden`` elements dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style") or any(name == "hidden" for name, _ in attrs):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if self._skip and tag in ("script", "style", "p"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = Text()
    parser.feed(page)
    return "".join(parser.parts)


def test_linear_ticks_are_several_with_units() -> None:
    ticks = linear_ticks(0.0, 7.65)  # the tune plot whose axis showed only "0" and "7.65"
    assert ticks == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert [milliseconds(t) for t in ticks] == ["0 ms", "2 ms", "4 ms", "6 ms", "8 ms"]
    assert milliseconds(0.25) == "250 us" and milliseconds(1500.0) == "1.5 s"
    assert 4 <= len(linear_ticks(0.0, 0.0123)) <= 8
    with pytest.raises(ValueError):
        linear_ticks(1.0, 1.0)


def test_log_ticks_and_si_labels() -> None:
    assert log_ticks(0.003, 250.0) == [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
    assert si(4.27e12, "B/s") == "4.27 TB/s"
    assert si(66.9e12, "FLOP/s") == "66.9 TFLOP/s"
    assert si(1e15, "FLOP/s") == "1 PFLOP/s"
    assert si(0.01, "FLOP/B") == "0.01 FLOP/B"


def test_roofs_come_from_the_catalogue() -> None:
    h200 = gpus.catalogue()["h200"]
    bandwidth, source, roofs = roofs_for(h200, uses_dot=True)
    assert bandwidth == pytest.approx(4270e9) and source == "measured copy bandwidth"
    assert [r.flops_per_s for r in roofs] == [pytest.approx(989.4e12), pytest.approx(66.9e12)]
    _, _, fp32_only = roofs_for(h200, uses_dot=False)
    assert [r.name for r in fp32_only] == ["FP32"]
    bandwidth, source, _ = roofs_for(gpus.catalogue()["a100_40gb"], uses_dot=False)
    assert bandwidth == pytest.approx(1555e9) and source == "datasheet bandwidth"


def test_full_report_places_the_launch_on_the_roofline() -> None:
    if not FULL_REPORT.is_file():
        pytest.skip("examples/reports/h200-seed is not in this checkout")
    from ncu_advisor.ingest.readers import read_report

    row = read_report(FULL_REPORT).iloc[0]
    metrics = {str(k): float(v) for k, v in row.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    duration_ms = metrics["gpu__time_duration.sum"] / 1e6
    point = launch_point("ModelNew_seed001", "#2ca02c", metrics, duration_ms)
    assert point is not None and point.flops_source == "FP32 instruction rates x SM clock"
    # ncu's roofline formula on the recorded rates: (fadd + fmul + 2 ffma) / cycle x SM clock.
    rates = [
        metrics[f"smsp__sass_thread_inst_executed_op_{op}_pred_on.sum.per_cycle_elapsed"]
        for op in ("fadd", "fmul", "ffma")
    ]
    expected = (rates[0] + rates[1] + 2 * rates[2]) * metrics["smsp__cycles_elapsed.avg.per_second"]
    assert point.flops_per_s == pytest.approx(expected)
    moved = metrics["dram__bytes_read.sum"] + metrics["dram__bytes_write.sum"]
    assert point.bytes_per_s == pytest.approx(moved / (duration_ms * 1e-3))
    bandwidth, source, roofs = roofs_for(gpus.catalogue()["h200"], uses_dot=True)
    chart = RooflineChart("conv2d_scale_min_kernel", bandwidth, source, roofs, (point,), True)
    svg = chart_svg(chart, "roofline-test")
    assert svg.count('<circle class="point"') == 1 and "achieved-bandwidth" not in svg
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', svg)
    assert {"1 TFLOP/s", "100 TFLOP/s", "0.01", "100"} <= set(ticks)
    assert "tensor cores, BF16/FP16 dense 989 TFLOP/s" in svg and "FP32 66.9 TFLOP/s" in svg
    assert "leave out tensor-core work" in chart.note()


def test_memory_side_only_without_flops() -> None:
    h200 = gpus.catalogue()["h200"]
    metrics = {"dram__bytes_read.sum": 2.0e9, "dram__bytes_write.sum": 1.0e9}
    point = launch_point("ModelNew", "#d62728", metrics, 1.0)
    assert point is not None and point.flops_per_s is None and point.bytes_per_s == pytest.approx(3e12)
    chart = RooflineChart("k", *roofs_for(h200, uses_dot=False), (point,), False)
    svg = chart_svg(chart, "r")
    assert "<circle" not in svg and svg.count('class="achieved-bandwidth"') == 1
    assert "no FLOP counts" in chart.note()
    assert launch_point("x", "#000", {}, 1.0) is None


def test_markdown_is_rendered_and_raw_html_escaped() -> None:
    out = markdown_html("use `BLOCK_K` **now**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>x()</script>")
    assert "<code>BLOCK_K</code>" in out and "<strong>now</strong>" in out and "<table>" in out
    assert "<script>" not in out and "&lt;script&gt;" in out


@pytest.fixture(scope="module")
def improved() -> tuple[object, str]:
    if not (RUNS / "improved").is_dir():
        pytest.skip("examples/runs/improved is not in this checkout")
    data = analysis_of(RUNS / "improved")
    return data, render_html(data)


def test_one_title_then_verdict_then_plots_then_kernels(improved: tuple[object, str]) -> None:
    _, page = improved
    assert page.count("<h1>") == 1 and "<h1>ncu-advisor report: kernels/fused.py on NVIDIA H200</h1>" in page
    positions = [page.index(f'id="{section}"') for section in ("verdict", "plots", "kernels")]
    assert positions == sorted(positions)
    assert page.index('id="plot-time"') > page.index('class="verdict"')


def test_kernels_grouped_ordered_by_saving_library_folded(improved: tuple[object, str]) -> None:
    data, page = improved
    kernels = {x.kernel for v in data.variants for x in v.launches}  # type: ignore[attr-defined]
    groups = re.findall(
        r'<section class="kernel-group( library)?" id="kernel-\d+" data-kernel="([^"]+)"', page
    )
    assert {name for _, name in groups} == kernels and len(groups) == len(kernels)
    own = [name for library, name in groups if not library]
    library = [name for library, name in groups if library]
    assert own[:2] == ["conv2d_scale_min_kernel", "conv_min_tma_kernel"]
    assert any(name.startswith("sm80_xmma_fprop") for name in library)
    details = page.index('<details class="library-kernels">')
    assert all(page.index(f'data-kernel="{name}"') > details for name in library)
    assert all(page.index(f'data-kernel="{name}"') < details for name in own)
    # one roofline per kernel, each with the memory roof and at least one launch drawn
    assert page.count('class="plot roofline"') == len(kernels)
    first = page[page.index('data-kernel="conv2d_scale_min_kernel"') :]
    first = first[: first.index("</section>")]
    savings = [float(s) for s in re.findall(r"can save up to ([\d.]+) ms", first)]
    assert len(savings) >= 5 and savings == sorted(savings, reverse=True)
    assert savings[0] == pytest.approx(13.1, abs=0.1)  # NA310: 50% of ModelNew_seed001's 26.1 ms


def test_no_backticks_or_test_text_visible(improved: tuple[object, str]) -> None:
    _, page = improved
    text = visible_text(page)
    assert "`" not in text
    assert "rendered" not in text and "not rendered" not in text
    assert re.search(r'<p id="render-status" hidden[^>]*></p>', page)


def test_page_is_self_contained(improved: tuple[object, str]) -> None:
    _, page = improved
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page


@pytest.mark.parametrize("run", sorted(p.name for p in RUNS.iterdir() if (p / "manifest.json").is_file()))
def test_every_example_run_renders_a_roofline_per_kernel(run: str) -> None:
    data = analysis_of(RUNS / run)
    page = render_html(data)
    kernels = {x.kernel for v in data.variants for x in v.launches}
    assert page.count('class="plot roofline"') == len(kernels)
    # every kernel with DRAM bytes and a duration shows it: a point or its achieved-bandwidth line
    assert page.count('class="achieved-bandwidth"') + page.count('class="point"') >= len(kernels)
    assert "`" not in visible_text(page)


FULL_VARIANTS = {
    "ModelNew_seed000": "ModelNew_seed000_full.ncu-rep.gz",
    "ModelNew_seed001": "ModelNew_seed001_full.ncu-rep.gz",
}


def test_roofline_points_from_full_reports_match_ncu_formula(tmp_path: Path) -> None:
    """A run of the ``--set full`` reports: every launch is a point, at ncu's own roofline coordinates
    read straight from the report with ncu_report (FLOP/s: (fadd + fmul + 2 ffma)/cycle x SM clock)."""
    ncu_report = pytest.importorskip("ncu_report")
    from test_report_formats import build_seed_run

    from ncu_advisor import rundir

    run = build_seed_run(tmp_path, reports=FULL_VARIANTS)
    expected: dict[str, float] = {}
    for variant in FULL_VARIANTS:
        context = ncu_report.load_report(str(rundir.variant_dir(run, variant) / "profile.ncu-rep"))
        for r in range(context.num_ranges()):
            rng = context.range_by_idx(r)
            for a in range(rng.num_actions()):
                action = rng.action_by_idx(a)
                per_cycle = sum(
                    k
                    * action.metric_by_name(
                        f"smsp__sass_thread_inst_executed_op_{op}_pred_on.sum.per_cycle_elapsed"
                    ).value()
                    for op, k in (("fadd", 1), ("fmul", 1), ("ffma", 2))
                )
                clock = action.metric_by_name("smsp__cycles_elapsed.avg.per_second").value()
                expected[f"{variant}/{action.name()}/{a}"] = float(per_cycle * clock)
    page = render_html(analysis_of(run))
    titles = re.findall(r'<circle class="point"[^>]*><title>([^<]+)</title>', page)
    assert len(titles) == len([v for v in expected.values() if v > 0]) > 0
    flops = sorted(float(t.split(" FLOP/B, ")[1].split(" ")[0]) * _si(t) for t in titles)
    want = sorted(v for v in expected.values() if v > 0)
    assert flops == pytest.approx(want, rel=5e-3)  # labels carry 3 significant digits
    assert "no FLOP counts" not in page and 'class="achieved-bandwidth"' not in page


def _si(title: str) -> float:
    """The SI factor of the FLOP/s figure in a point's tooltip (``... FLOP/B, 40.6 GFLOP/s, ...``)."""
    unit = title.split(" FLOP/B, ")[1].split(" ")[1]
    return {"FLOP/s,": 1.0, "kFLOP/s,": 1e3, "MFLOP/s,": 1e6, "GFLOP/s,": 1e9, "TFLOP/s,": 1e12}[unit]
