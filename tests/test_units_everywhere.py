"""Every number a user reads in a finding's evidence carries its unit; no raw Python float, None or nan.

Issue 15: "every number in user-facing text formatted with its unit". The check renders every format of
``recommend`` and ``report`` (text, markdown, HTML, SARIF message text, JUnit, prompt) on every shipped run
(``examples/runs/*``, recorded on an H200), the shipped seed reports and, when present, a few real public
reports in ``../shared/reports-public``; it pulls each evidence value out of the text and fails on a bare
number (``time_share=1``, ``global_effect=0.4002``: the output before render/units.py). The scan uses only
the CLI's renderers (``formats.render`` / ``render_report``), so it runs on older code too, where it fails.

``test_the_scan_catches_unit_less_evidence`` shows the scan failing on evidence printed the old way.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from ncu_advisor.analysis.pipeline import analyze
from ncu_advisor.render import formats
from ncu_advisor.render.sarif import render_sarif

ROOT = Path(__file__).resolve().parent.parent
RUNS = sorted(p for p in (ROOT / "examples" / "runs").iterdir() if (p / "manifest.json").is_file())
SEED_REPORTS = sorted((ROOT / "examples" / "reports" / "h200-seed").glob("*_full.ncu-rep.gz"))
PUBLIC = ROOT.parent / "shared" / "reports-public"
PUBLIC_REPORTS = (
    [
        PUBLIC / name
        for name in (
            "flyinglandlord__sglang__profile.ncu-rep.gz",
            "LakshyaSingh354__CudaCode__naive.ncu-rep.gz",
            "yzwang2000__cudaCode__profile.ncu-rep.gz",
        )
        if (PUBLIC / name).is_file()
    ]
    if PUBLIC.is_dir()
    else []
)
INPUTS = [*RUNS, *SEED_REPORTS, *PUBLIC_REPORTS]

#: A value that is only a number (``1``, ``0.4002``, ``65,536``, ``1e-05``, ``-3.5``): no unit.
BARE_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(?:[eE][-+]?\d+)?$")
#: Raw Python values that must never reach prose: None, nan, inf, True/False, floats with 6+ decimals or
#: an exponent (what ``str(float)`` prints).
RAW_VALUE = re.compile(r"\b(?:None|nan|NaN|inf|True|False)\b|\b\d+\.\d{6,}\b|\b\d+(?:\.\d+)?e[-+]\d+\b")
#: The evidence entries of each format: ``name = value`` / ``name=value`` pairs.
_PAIR_TEXT = re.compile(r"(?:^|, )([A-Za-z_][\w.:]*) ?= ?(.+?)(?=, [A-Za-z_][\w.:]* ?= ?|$)")
_PAIR_CODE = re.compile(r"`([\w.:]+)` ?= ?(.+?)(?=<br>|, `|$)")
_PAIR_HTML = re.compile(r"<tr><td><code>([^<]+)</code></td><td>([^<]*)</td></tr>")


def evidence_text(text: str) -> list[tuple[str, str]]:
    """``recommend --format text``: the ``evidence: a=1, b=2; fired on: ...`` lines."""
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("evidence:"):
            body = line[len("evidence:") :].split("; fired on:")[0].strip()
            pairs += _PAIR_TEXT.findall(body)
    return pairs


def evidence_markdown(text: str) -> list[tuple[str, str]]:
    """``recommend --format markdown`` (a table cell, ``<br>`` apart) and ``report --format md``
    (``- Evidence: `a`=1, `b`=2; fired on ...``)."""
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("| ") and "<br>when `" in line:  # recommend: | sev | rule | msg | evidence | ...
            cell = line.split(" | ")[3].split("<br>when `")[0]
            pairs += _PAIR_CODE.findall(cell)
        elif line.strip().startswith("- Evidence:"):
            body = line.strip()[len("- Evidence:") :].split("; fired on")[0].strip()
            pairs += _PAIR_CODE.findall(body)
    return pairs


def evidence_html(text: str) -> list[tuple[str, str]]:
    """``report --format html``: the evidence table of each finding."""
    return [(html.unescape(k), html.unescape(v)) for k, v in _PAIR_HTML.findall(text)]


def evidence_sarif(text: str) -> list[tuple[str, str]]:
    """``report --format sarif``: the evidence in each result's message text (``Evidence: a = 1, ...``)."""
    pairs: list[tuple[str, str]] = []
    for run in json.loads(text)["runs"]:
        for result in run["results"]:
            message = result["message"]["text"]
            if "Evidence: " in message:
                body = message.split("Evidence: ", 1)[1].rsplit(". [", 1)[0]
                pairs += _PAIR_TEXT.findall(body)
    return pairs


def prose(text: str) -> str:
    """``text`` without code: fenced blocks, ``<pre>``, inline code, the prompt's kernel source and its
    metrics JSON block (the seeds' format, machine data), SVG and style/script elements."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"<(pre|svg|style|script)\b.*?</\1>", "", text, flags=re.S)
    text = re.sub(r"\[NCU PROFILING METRICS\]\n\{.*?\n\}\n", "", text, flags=re.S)
    text = re.sub(r"<code>.*?</code>|`[^`\n]*`", "", text)
    return re.sub(r"<[^>]+>", " ", text)


def unit_less(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{k} = {v}" for k, v in pairs if BARE_NUMBER.match(v.strip()) or RAW_VALUE.search(v)]


@pytest.fixture(scope="module", params=INPUTS, ids=lambda p: p.name)
def analysis(request: pytest.FixtureRequest) -> object:
    return analyze([request.param])


def _outputs(analysis: object) -> dict[str, str]:
    out = {f"recommend {f}": formats.render(f, analysis) for f in formats.RECOMMEND_FORMATS}  # type: ignore[arg-type]
    if getattr(analysis, "variants", None):
        out.update({f"report {f}": formats.render_report(f, analysis) for f in ("md", "html", "junit")})  # type: ignore[arg-type]
    out["report sarif"] = render_sarif(analysis)  # type: ignore[arg-type]
    return out


def test_every_evidence_value_has_its_unit(analysis: object) -> None:
    outputs = _outputs(analysis)
    extracted = {
        "recommend text": evidence_text(outputs["recommend text"]),
        "recommend markdown": evidence_markdown(outputs["recommend markdown"]),
        "report sarif": evidence_sarif(outputs["report sarif"]),
    }
    if "report md" in outputs:
        extracted["report md"] = evidence_markdown(outputs["report md"])
        extracted["report html"] = evidence_html(outputs["report html"])
    findings = sum(len(r.findings) for r in analysis.results)  # type: ignore[attr-defined]
    if findings:  # the scan found the evidence it checks (an empty scan would pass anything)
        assert extracted["recommend text"], "no evidence found in recommend text"
        assert extracted["recommend markdown"], "no evidence found in recommend markdown"
    bad = {name: unit_less(pairs) for name, pairs in extracted.items() if unit_less(pairs)}
    assert not bad, bad


def test_no_raw_python_value_in_prose(analysis: object) -> None:
    bad = {}
    for name, text in _outputs(analysis).items():
        if name in ("recommend json", "report sarif"):
            continue  # JSON: numbers in base units, units in evidence_units (checked by the schema tests)
        if name == "report junit":
            text = re.sub(r'(time|tests|failures|errors|skipped)="[^"]*"', "", text)  # XML attributes
        hits = sorted(set(RAW_VALUE.findall(prose(text))))
        if hits:
            bad[name] = hits
    assert not bad, bad


def test_the_scan_catches_unit_less_evidence() -> None:
    """Evidence printed as before render/units.py (``name=value`` with ``:.4g``) fails the scan."""
    old_text = (
        "          evidence: dram__throughput.avg.pct_of_peak_sustained_elapsed=80.03, "
        "launch__grid_size=65,536, at_roof=1, time_share=1, global_effect=0.4002; fired on: waves >= 1"
    )
    assert unit_less(evidence_text(old_text)) == [
        "dram__throughput.avg.pct_of_peak_sustained_elapsed = 80.03",
        "launch__grid_size = 65,536",
        "at_roof = 1",
        "time_share = 1",
        "global_effect = 0.4002",
    ]
    old_markdown = (
        "- Evidence: `launch__waves_per_multiprocessor`=31.03, `l2_gap`=6.402; fired on `waves >= 1`"
    )
    assert len(unit_less(evidence_markdown(old_markdown))) == 2
    assert unit_less(evidence_html("<tr><td><code>time_share</code></td><td>1</td></tr>")) == [
        "time_share = 1"
    ]
    assert RAW_VALUE.findall(prose("registers None, ratio 0.7234567, 1e-05 s, `code 1e-05`")) == [
        "None",
        "0.7234567",
        "1e-05",
    ]
    new_text = (
        "evidence: at_roof = yes, time_share = 100%, launch__grid_size = 65,536 blocks, l2_gap = 6.4 pp"
    )
    assert unit_less(evidence_text(new_text)) == []


def test_every_shipped_rules_evidence_has_a_unit() -> None:
    """Each value a shipped rule puts in its evidence (required metrics, gpu_/src_ facts, derived values)
    resolves to a unit: a new derived value without ``units:`` in its rule file fails here."""
    from ncu_advisor.analysis.pipeline import evidence_units  # noqa: PLC0415
    from ncu_advisor.render.units import evidence_unit  # noqa: PLC0415
    from ncu_advisor.rules import load_rules  # noqa: PLC0415

    missing = []
    for rule in load_rules():
        declared = evidence_units(rule)
        aliases = {r.alias for r in rule.spec.requires}
        keys = [r.name for r in rule.spec.requires] + list(rule.derived)
        keys += [n for n in rule.inputs if n not in aliases and n not in rule.derived]
        missing += [f"{rule.id}: {key}" for key in keys if evidence_unit(key, declared) is None]
    assert missing == []


def test_boolean_message_fields_read_yes_or_no() -> None:
    """A message field the rule's ``units`` call ``boolean`` (NA301's at_roof, NA322's partial_warp, NA317's
    binding flags) reads yes/no in the message, as in the evidence; it printed 1/0 before."""
    from ncu_advisor.rules import load_rules  # noqa: PLC0415

    booleans = {
        (rule.id, name)
        for rule in load_rules()
        for name, unit in rule.spec.units.items()
        if unit == "boolean" and "{" + name in rule.spec.message
    }
    assert booleans  # the shipped rules do use them in messages
    analysis = analyze([ROOT / "examples" / "runs" / "softmax"])
    messages = {f.rule: f.message for r in analysis.results for f in r.findings}
    checked = [rule for rule, _name in booleans if rule in messages]
    assert checked
    for rule in checked:
        assert not re.search(r"(: |=| warp )[01](\b|$)", messages[rule]), messages[rule]
    assert "at the roof (>= 80%): yes" in messages["NA301"]
