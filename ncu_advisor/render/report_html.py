"""HTML report: one self-contained page (inline CSS, SVG and a status script; no network, no external file).

Order: the title; the verdict table (one row per variant: correct, median time, speed against the
reference, registers, occupancy limiter, throughputs of its longest launch); the time and occupancy plots;
then one section per kernel, ordered by the time its findings can save (``global_effect`` x the variant's
kernel time), each with its roofline chart (``render.roofline_svg``), the numbers behind it, its findings
and the proposed ``@triton.autotune`` configs. Kernels the kernel file does not define (cuDNN, PyTorch's
own) are folded in one ``<details>``. Text fields are markdown, rendered by markdown-it-py (raw HTML in
them is escaped).

The inline script records JavaScript errors, the plots and marks drawn, and elements wider than their box
(code blocks, tables) as ``data-*`` attributes of the hidden ``#render-status``, so a headless browser test
reads the outcome from the DOM (tests/test_html_browser.py).
"""

from __future__ import annotations

import html
from typing import Any

from markdown_it import MarkdownIt

from ncu_advisor.render import report_groups
from ncu_advisor.render import skipped as skips
from ncu_advisor.render.axes import Axis, linear_ticks, milliseconds, tick_marks
from ncu_advisor.render.report_groups import KernelGroup, finding_saving_ms
from ncu_advisor.render.roofline_svg import chart_svg, chart_table
from ncu_advisor.render.units import EvidenceUnits

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
WIDTH = 640
OCCUPANCY_LIMITS = {
    "registers": "launch__occupancy_limit_registers",
    "shared_mem": "launch__occupancy_limit_shared_mem",
    "warps": "launch__occupancy_limit_warps",
    "blocks": "launch__occupancy_limit_blocks",
}
_MARKDOWN = MarkdownIt("js-default")  # CommonMark + tables, raw HTML escaped


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def markdown_html(text: str) -> str:
    """Markdown (CommonMark with GitHub tables) as HTML; raw HTML in ``text`` is escaped, not passed on."""
    return str(_MARKDOWN.render(text))


def _inline(text: str) -> str:
    """One line of markdown (a finding's message: backticks, bold) as inline HTML."""
    return str(_MARKDOWN.renderInline(" ".join(str(text).split())))


def colors(data: Any) -> dict[str, str]:
    """A colour per variant, in the order of ``data.variants``."""
    return {v.name: PALETTE[i % len(PALETTE)] for i, v in enumerate(data.variants)}


def _gpu_name(data: Any) -> str:
    return str((data.gpu or {}).get("name") or "unknown GPU")


def _header(data: Any) -> list[str]:
    facts = ", ".join(
        f"{label} {data.gpu[key]}"
        for key, label in (("cc", "CC"), ("sm_count", "SMs"), ("driver", "driver"))
        if data.gpu.get(key)
    )
    versions = ", ".join(f"{k} {v}" for k, v in data.versions.items() if v and k != "ncu_path")
    options = ", ".join(
        f"{k}={data.options[k]}" for k in ("clock_control", "cache_control", "reps") if k in data.options
    )
    recorded = f" recorded {_e(data.created)}" if data.created else ""
    lines = [f"Run <code>{_e(data.run_path.name)}</code>{recorded}"]
    lines.append(f"GPU: {_e(_gpu_name(data))}" + (f" ({_e(facts)})" if facts else ""))
    if versions:
        lines.append(f"Versions: {_e(versions)}")
    if options:
        lines.append(f"Options: {_e(options)}")
    return ['<p class="meta">' + "<br>".join(lines) + "</p>"]


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "–" if value is None else format(value, fmt)


def _correct(variant: Any) -> str:
    if variant.is_reference:
        return '<span class="ref">reference</span>'
    if variant.correct is True:
        return '<span class="ok">yes</span>'
    if variant.correct is False:
        return '<span class="bad">no</span>'
    return f'<span class="warn">{_e(variant.status)}</span>'


def _verdict(data: Any) -> list[str]:
    palette = colors(data)
    head = (
        "<tr><th>variant</th><th>correct</th><th>median</th><th>vs reference</th><th>registers</th>"
        "<th>limiter</th><th>DRAM %</th><th>SM %</th><th>L2 hit %</th><th>longest kernel</th>"
        "<th>findings</th></tr>"
    )
    rows = []
    for v in data.variants:
        speed = "–" if v.speedup_vs_reference is None else f"{v.speedup_vs_reference:.2f}×"
        rows.append(
            f'<tr><td class="vname"><span class="swatch" style="background:{palette[v.name]}"></span>'
            f"{_e(v.name)}</td>"
            f"<td>{_correct(v)}</td><td class='n'>{'–' if v.median_ms is None else milliseconds(v.median_ms)}"
            f"</td><td class='n'>{speed}</td><td class='n'>{_num(v.registers, '.0f')}</td>"
            f"<td>{_e(v.occupancy_limiter or '–')}</td><td class='n'>{_num(v.dram_pct)}</td>"
            f"<td class='n'>{_num(v.sm_pct)}</td><td class='n'>{_num(v.l2_hit_pct)}</td>"
            f"<td class='kname'><code>{_e(v.main_kernel or '–')}</code></td>"
            f"<td class='n'>{len(v.findings)}</td></tr>"
        )
    out = [
        '<section id="verdict"><h2>Verdict</h2>',
        f'<div class="table-scroll"><table class="verdict">{head}{"".join(rows)}</table></div>',
        '<p class="caption">Median time: median of the per-repetition medians in timings.csv. Registers, '
        "limiter and throughputs: the variant's longest kernel launch.</p>",
    ]
    for v in data.variants:
        if not v.is_reference and v.correct is not True:
            reason = f": {_inline(v.reason)}" if v.reason else ""
            out.append(f'<p class="problem"><strong>{_e(v.name)}</strong>: {_e(v.status)}{reason}</p>')
    return [*out, "</section>"]


def _svg_open(svg_id: str, title: str, height: int) -> str:
    return (
        f'<svg id="{svg_id}" class="plot" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>'
        f'<text class="ptitle" x="8" y="18">{_e(title)}</text>'
    )


def _time_svg(data: Any) -> str:
    """Median time per variant as bars with the min-max whiskers of the repetitions, on a ms axis."""
    timed = [v for v in data.variants if v.median_ms is not None]
    palette, row, left, right = colors(data), 26, 170, 150
    height = 40 + row * max(len(timed), 1) + 30
    top = max((max(v.timings_ms or [v.median_ms or 0.0]) for v in timed), default=1.0) or 1.0
    ticks = linear_ticks(0.0, top)
    x = Axis(0.0, ticks[-1], left, WIDTH - left - right)
    out = [_svg_open("plot-time", "Time per variant (median; whiskers: min-max of the repetitions)", height)]
    out += tick_marks(x, ticks, milliseconds, vertical=False, other=(32, height - 30))
    for i, v in enumerate(timed):
        y0 = 36 + i * row
        median = v.median_ms or 0.0
        label = milliseconds(median)
        if v.speedup_vs_reference is not None and not v.is_reference:
            label += f" ({v.speedup_vs_reference:.2f}× the reference)"
        out.append(
            f'<text x="{left - 6}" y="{y0 + 13}" text-anchor="end">{_e(v.name[:26])}</text>'
            f'<rect class="bar" x="{left}" y="{y0}" width="{x(median) - left:.1f}" height="{row - 8}" '
            f'fill="{palette[v.name]}"><title>{_e(v.name)}: {_e(milliseconds(median))}</title></rect>'
            f'<text x="{x(median) + 4:.1f}" y="{y0 + 13}">{_e(label)}</text>'
        )
        if v.timings_ms:
            mid = y0 + (row - 8) / 2
            out.append(
                f'<line class="whisker" x1="{x(min(v.timings_ms)):.1f}" y1="{mid:.1f}" '
                f'x2="{x(max(v.timings_ms)):.1f}" y2="{mid:.1f}"/>'
            )
    if not timed:
        out.append(f'<text x="{WIDTH / 2}" y="52" text-anchor="middle">no timings in the run</text>')
    return "".join(out) + "</svg>"


def _occupancy_svg(data: Any) -> str:
    """The four blocks-per-SM limits of each variant's longest launch; the smallest (the limiter) in red."""
    shown = []
    for v in data.variants:
        main = next((x for x in v.launches if x.kernel == v.main_kernel), None)
        if main is not None:
            limits = {name: main.metrics.get(column) for name, column in OCCUPANCY_LIMITS.items()}
            if any(value is not None for value in limits.values()):
                shown.append((v.name, main, limits))
    block, left = 4 * 16 + 26, 170
    height = 40 + block * max(len(shown), 1)
    top = max((val for _, _, lim in shown for val in lim.values() if val is not None), default=1.0)
    x = Axis(0.0, top, left, WIDTH - left - 100)  # room for "32 blocks/SM" right of the longest bar
    title = "Occupancy limits of each variant's longest launch (blocks per SM; red: the limiter)"
    out = [_svg_open("plot-occupancy", title, height)]
    for i, (name, main, limits) in enumerate(shown):
        y0 = 32 + i * block
        out.append(f'<text x="8" y="{y0 + 14}" class="vname">{_e(name)}: {_e(main.kernel[:60])}</text>')
        for j, (limit, value) in enumerate(limits.items()):
            y1 = y0 + 20 + j * 16
            fill = "#d62728" if limit == main.occupancy_limiter else "#9ecae1"
            out.append(f'<text x="{left - 6}" y="{y1 + 11}" text-anchor="end">{limit}</text>')
            if value is not None:
                out.append(
                    f'<rect class="bar" x="{left}" y="{y1}" width="{x(value) - left:.1f}" height="12" '
                    f'fill="{fill}"><title>{_e(name)} {limit}: {value:g} blocks/SM</title></rect>'
                    f'<text x="{x(value) + 4:.1f}" y="{y1 + 11}">{value:g} blocks/SM</text>'
                )
    if not shown:
        out.append(
            f'<text x="{WIDTH / 2}" y="52" text-anchor="middle">no occupancy metrics in the run</text>'
        )
    return "".join(out) + "</svg>"


def _legend(data: Any) -> str:
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:{c}"></span>{_e(n)}</span>'
        for n, c in colors(data).items()
    )
    return f'<div class="legend">{items}</div>'


def _evidence(finding: Any, units: EvidenceUnits) -> str:
    rows = "".join(f"<tr><td><code>{_e(k)}</code></td><td>{_e(v)}</td></tr>" for k, v in units.items(finding))
    condition = finding.evidence.get("condition")
    fired = f"<p>Fired on <code>{_e(condition)}</code></p>" if condition else ""
    return f"<details class='evidence'><summary>Evidence</summary><table>{rows}</table>{fired}</details>"


def _finding(data: Any, group: KernelGroup, finding: Any, units: EvidenceUnits) -> str:
    where = data.location_of(finding) if not group.library else None
    at = f" · <code>{_e(where.path)}:{where.line}</code>" if where else ""
    saving = finding_saving_ms(finding, group.variant_time_ms.get(finding.variant or ""))
    effect = ""
    if saving is not None:
        share = finding.evidence.get("global_effect")
        of = f" ({share:.0%} of the variant's kernel time)" if isinstance(share, float) else ""
        effect = f" · can save up to {_e(milliseconds(saving))}{of}"
    elif finding.estimated_effect:
        effect = f" · up to {finding.estimated_effect:.0%} of the {_e(finding.effect_kind)} time"
    severity = finding.severity.value
    return (
        f'<li class="finding sev-{_e(severity)}" data-rule="{_e(finding.rule)}">'
        f'<div class="fhead"><span class="badge {_e(severity)}">{_e(severity)}</span> '
        f"<strong>{_e(finding.rule)} {_e(finding.name)}</strong> · {_e(finding.variant or '')} launch "
        f"{finding.launch}{at}{effect}</div>"
        f'<p class="message">{_inline(finding.message)}</p>'
        f'<p class="do"><strong>Do:</strong> {_inline(finding.recommendation)}</p>'
        f"{_evidence(finding, units)}</li>"
    )


def _group(data: Any, group: KernelGroup, index: int) -> str:
    out = [
        f'<section class="kernel-group{" library" if group.library else ""}" id="kernel-{index}" '
        f'data-kernel="{_e(group.kernel)}">',
        f"<h3><code>{_e(group.kernel)}</code></h3>",
        f'<p class="summary">{_e(group.summary())}</p>',
    ]
    if group.chart is not None:
        note = group.chart.note()
        out += [
            f'<figure class="roofline-figure">{chart_svg(group.chart, f"roofline-{index}")}',
            f"<figcaption>{_e(note)}</figcaption></figure>" if note else "</figure>",
            chart_table(group.chart),
        ]
    out += [f'<p class="note">{_inline(n)}</p>' for n in group.notes]
    skipped = skips.of_analysis(data, kernel=group.kernel)
    if group.findings:
        units = EvidenceUnits.of(data)
        items = "".join(_finding(data, group, f, units) for f in group.findings)
        out.append(f'<ol class="findings">{items}</ol>')
    else:
        text = skipped.after("No rule fired on this kernel", code=True)
        out.append(f'<p class="quiet">{_inline(text)}.</p>')
    if group.findings and skipped:
        out.append(f'<p class="quiet">Not checked: {_inline(skipped.text(code=True))}.</p>')
    for variant, block in group.proposals.items():
        out.append(
            f"<p>Proposed configs for <code>{_e(group.kernel)}</code> in {_e(variant)}:</p>"
            f'<pre><code class="language-python">{_e(block.rstrip())}</code></pre>'
        )
    return "\n".join([*out, "</section>"])


def _kernels(data: Any) -> list[str]:
    groups = report_groups.kernel_groups(data, colors(data))
    own = [g for g in groups if not g.library]
    library = [g for g in groups if g.library]
    total = sum(len(g.findings) for g in own)
    out = [f'<section id="kernels"><h2>Findings by kernel ({total})</h2>']
    if own:
        out.append(
            '<p class="caption">Kernels in order of the time their findings can save; within a kernel, '
            "findings in the same order. Each roofline places the kernel's launches against the GPU's "
            "memory and compute roofs (gpus.yaml).</p>"
        )
    out += [_group(data, g, i) for i, g in enumerate(own)]
    if library:
        count = sum(len(g.findings) for g in library)
        where = f"not defined in {data.kernel_path}" if data.kernel_path else "library kernels"
        out.append(
            f'<details class="library-kernels"><summary>Library kernels: {len(library)} kernel(s), {count} '
            f"finding(s) ({_e(where)}: cuDNN, PyTorch; not tunable from the Triton source)</summary>"
        )
        out += [_group(data, g, len(own) + i) for i, g in enumerate(library)]
        out.append("</details>")
    return [*out, "</section>"]


def render_html(data: Any) -> str:
    """The report as one self-contained HTML page.

    Args:
        data: the analysis of a run (``analysis.analyze``'s ``Analysis``; ``variants``, ``gpu``,
            ``location_of`` ... as the other renderers read them).

    Returns:
        The page, UTF-8 text (no external URL, no script source, no stylesheet link).
    """
    title = f"ncu-advisor report: {data.kernel_path or data.run_path.name} on {_gpu_name(data)}"
    body = _header(data) + _verdict(data)
    body += [
        '<section id="plots"><h2>Time and occupancy</h2>',
        _legend(data),
        _time_svg(data),
        _occupancy_svg(data),
        "</section>",
    ]
    body += _kernels(data)
    if notes := skips.notes_of(data):
        body.append('<section id="notes"><h2>Notes</h2><ul>')
        body += [f"<li>{_inline(n)}</li>" for n in notes]
        body.append("</ul></section>")
    return html_page(title, body)


STATUS_SCRIPT = """
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
window.addEventListener('load', function () {
  var status = document.getElementById('render-status');
  var wide = [];
  var viewport = document.documentElement.clientWidth + 1;
  document.querySelectorAll('pre, code, table, svg, p, li, h1, h2, h3, figcaption').forEach(function (el) {
    if (el.closest('.table-scroll')) { return; }  // a wide table scrolls inside its own box
    var scrolls = getComputedStyle(el).display !== 'inline' && el.scrollWidth > el.clientWidth + 1;
    if (scrolls || el.getBoundingClientRect().right > viewport) {
      var name = el.className ? '.' + String(el.className.baseVal || el.className) : '';
      wide.push(el.tagName.toLowerCase() + name);
    }
  });
  var scrolled = 0;
  document.querySelectorAll('.table-scroll').forEach(function (el) {
    if (el.scrollWidth > el.clientWidth + 1 || el.getBoundingClientRect().right > viewport) { scrolled += 1; }
  });
  status.setAttribute('data-scrolled', String(scrolled));
  status.setAttribute('data-plots', String(document.querySelectorAll('svg.plot').length));
  status.setAttribute('data-marks', String(document.querySelectorAll('svg.plot circle, svg.plot rect.bar, '
    + 'svg.plot line.achieved-bandwidth').length));
  status.setAttribute('data-overflow', String(wide.length));
  status.setAttribute('title', wide.slice(0, 8).join(' '));
  status.setAttribute('data-backticks', String((document.body.innerText.match(/`/g) || []).length));
  status.setAttribute('data-errors', String(window.__errors.length));
  if (window.__errors.length) { status.textContent = window.__errors.join('; '); }
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; padding: 0 16px; color: #222; max-width: 1100px;
  line-height: 1.45; }
h1 { font-size: 1.6em; overflow-wrap: anywhere; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { margin-bottom: 4px; overflow-wrap: anywhere; }
code { font-family: ui-monospace, monospace; font-size: 0.92em; background: #f3f3f3; padding: 0 3px;
  overflow-wrap: break-word; }
pre { background: #f6f8fa; padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 100%; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; margin: 8px 0; max-width: 100%; }
.table-scroll { overflow-x: auto; max-width: 100%; }
td, th { border: 1px solid #ccc; padding: 3px 6px; font-size: 13px; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
td.n { text-align: right; white-space: nowrap; } td.vname { white-space: nowrap; }
td.kname, td.kname code { max-width: 24em; overflow-wrap: anywhere; }
p, li, figcaption, summary { overflow-wrap: anywhere; }
svg.plot { background: #fff; border: 1px solid #ddd; margin: 8px 0; display: block; max-width: 100%;
  height: auto; }
svg text { font-size: 11px; fill: #222; } svg .ptitle { font-size: 13px; font-weight: bold; }
svg .axis-title { font-size: 12px; } svg .roof-label { font-size: 11px; font-weight: bold; fill: #333; }
.grid { stroke: #e6e6e6; } .frame { fill: none; stroke: #bbb; } .whisker { stroke: #000; }
.roof { stroke: #333; stroke-width: 2.5; } .achieved-bandwidth { stroke-width: 2; stroke-dasharray: 5 4; }
.legend .key { margin-right: 14px; font-size: 13px; }
.swatch { display: inline-block; width: 11px; height: 11px; margin-right: 5px; vertical-align: middle; }
.meta { color: #444; } .caption, figcaption, .quiet { color: #555; font-size: 13px; }
figure { margin: 8px 0; }
.kernel-group { border-left: 4px solid #1f77b4; padding: 2px 0 2px 14px; margin: 22px 0; }
.kernel-group.library { border-left-color: #999; }
.library-kernels > summary { cursor: pointer; font-weight: bold; margin: 16px 0; }
ol.findings { padding-left: 22px; } li.finding { margin: 10px 0; }
.fhead { font-size: 14px; } .message, .do { margin: 3px 0; }
.badge { font-size: 11px; padding: 1px 6px; border-radius: 8px; color: #fff; background: #777; }
.badge.error { background: #c62828; } .badge.warning { background: #e08a00; }
.badge.info { background: #1f77b4; }
.ok { color: #2e7d32; } .bad { color: #c62828; font-weight: bold; } .warn { color: #e08a00; }
.ref { color: #555; } .note { background: #fff8e1; padding: 4px 8px; font-size: 13px; }
details.evidence summary { cursor: pointer; color: #555; font-size: 13px; }
"""


def html_page(title: str, body: list[str]) -> str:
    """A self-contained page: inline style and status script, the title as the one h1, ``body``, and the
    hidden status element the browser test reads."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{STYLE}</style>",
            f"<script>{STATUS_SCRIPT}</script>",
            "</head><body>",
            f"<h1>{_e(title)}</h1>",
            *body,
            '<p id="render-status" hidden data-errors="-1"></p>',
            "</body></html>",
            "",
        ]
    )
