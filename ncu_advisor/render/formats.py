"""The output formats: one registry line per format, each a pure function of an ``Analysis``.

To add an output format, write ``render/<name>.py`` with ``def render_<name>(analysis, options) -> str``
and add one line to ``RECOMMEND`` (``recommend --format``) or ``REPORT`` (``report --format``). The
commands list their choices from these registries; ``md`` and ``markdown`` name one format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ncu_advisor.analysis.result import Analysis
from ncu_advisor.render import advice_prompt, findings, junit, report_html, report_json, report_md, sarif
from ncu_advisor.render.prompt import TritonApi


@dataclass(frozen=True)
class RenderOptions:
    """Options a format may read: ``show_skipped`` (recommend text), ``fail_on`` (JUnit failures),
    ``triton_api`` (the installed Triton's ``tl.*`` names, for the prompt)."""

    show_skipped: bool = False
    fail_on: str = "never"
    triton_api: TritonApi | None = None


Renderer = Callable[[Analysis, RenderOptions], str]

#: ``recommend --format``: findings per launch.
RECOMMEND: dict[str, Renderer] = {
    "text": lambda a, o: findings.render_text(a, show_skipped=o.show_skipped),
    "json": lambda a, o: findings.render_json(a),
    "markdown": lambda a, o: findings.render_markdown(a),
    "prompt": lambda a, o: advice_prompt.render_prompts(a, o.triton_api),
}

#: ``report --format``: the run as a CI artifact.
REPORT: dict[str, Renderer] = {
    "md": lambda a, o: report_md.render_markdown(a),
    "html": lambda a, o: report_html.render_html(a),
    "json": lambda a, o: report_json.report_json(a),
    "junit": lambda a, o: junit.render_junit(a, fail_on=o.fail_on),
    "sarif": lambda a, o: sarif.render_sarif(a),
    "csv": lambda a, o: report_json.report_csv(a),
}

RECOMMEND_FORMATS = tuple(RECOMMEND)
REPORT_FORMATS = tuple(REPORT)


def render(fmt: str, analysis: Analysis, options: RenderOptions | None = None) -> str:
    """``analysis`` in the ``recommend`` format ``fmt`` (one of ``RECOMMEND_FORMATS``)."""
    return RECOMMEND[fmt](analysis, options or RenderOptions())


def render_report(fmt: str, analysis: Analysis, *, fail_on: str = "never") -> str:
    """``analysis`` in the ``report`` format ``fmt`` (one of ``REPORT_FORMATS``)."""
    return REPORT[fmt](analysis, RenderOptions(fail_on=fail_on))
