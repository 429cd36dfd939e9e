"""JUnit XML: one test case per variant, a failure when it is incorrect or has a finding >= ``fail_on``."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ncu_advisor.analysis.result import Analysis, gpu_name, variant_failures
from ncu_advisor.analysis.summary import VariantSummary
from ncu_advisor.model import Finding
from ncu_advisor.render.skipped import Skipped, notes_of, of_analysis
from ncu_advisor.render.units import milliseconds, quantity


def variant_text(variant: VariantSummary, skipped: Skipped | None = None) -> str:
    """One line on a variant for its test case's ``system-out``: every number with its unit, no ``None``.

    Parts the run has no value for (a variant that was not timed, or not profiled) are left out;
    ``skipped``: the rules skipped on its launches for missing metrics, named after the finding count.
    """
    parts: list[str] = []
    if variant.median_ms is not None:
        reps = "repetition" if variant.reps == 1 else "repetitions"
        parts.append(f"median {milliseconds(variant.median_ms)} over {variant.reps} {reps}")
    elif variant.status == "unknown" and not variant.reason:
        parts.append("not timed (a plain report: no timings, no correctness check)")
    else:
        parts.append(f"not timed ({variant.reason or variant.status})")
    if variant.speedup_vs_reference is not None and not variant.is_reference:
        parts.append(f"{variant.speedup_vs_reference:.2f}x the reference")
    if variant.main_kernel:
        kernel = f"longest kernel {variant.main_kernel}"
        if variant.kernel_time_ms is not None:
            kernel += f" ({milliseconds(variant.kernel_time_ms)} under ncu)"
        parts.append(kernel)
    if variant.registers is not None:
        parts.append(quantity(variant.registers, "register/thread"))
    if variant.occupancy_limiter:
        parts.append(f"occupancy limited by {variant.occupancy_limiter.replace('_', ' ')}")
    missing = [f for x in variant.launches for f in x.findings if f.evidence.get("not_profiled")]
    count = len(variant.findings) - sum(1 for f in variant.findings if f.evidence.get("not_profiled"))
    parts.append(f"{count} finding{'' if count == 1 else 's'}")
    if skipped:
        parts.append(skipped.text())
    parts += [f"{f.kernel} launch {f.launch} {f.message}" for f in missing]
    return "; ".join(parts)


def _finding_line(finding: Finding) -> str:
    """One finding for ``system-out``: ``warning NA101 name on kernel launch 0: message``."""
    return (
        f"{finding.severity.value} {finding.rule} {finding.name} on {finding.kernel} "
        f"launch {finding.launch}: {finding.message}"
    )


def render_junit(data: Analysis, *, fail_on: str | None = "error") -> str:
    """Render the report as a JUnit XML document (``<testsuites><testsuite><testcase>``).

    Args:
        data: the report.
        fail_on: ``info``, ``warning``, ``error`` or ``never``: the severity at which a finding fails its
            variant's test case. Incorrect or failed variants fail whatever it is; the reference never fails
            on findings (it is not evaluated).

    Returns:
        The XML text with an XML declaration.
    """
    suite_name = f"ncu-advisor {data.kernel_path or data.run_path.name} on {gpu_name(data)}"
    suites = ET.Element("testsuites", name="ncu-advisor")
    suite = ET.SubElement(suites, "testsuite", name=suite_name)
    notes = notes_of(data)
    if notes:  # what the analysis noticed (no kernel file, a rule that failed ...), before the cases
        properties = ET.SubElement(suite, "properties")
        for note in notes:
            ET.SubElement(properties, "property", name="note", value=note)
    failures = 0
    skipped = 0
    total_time = 0.0
    for variant in data.variants:
        seconds = (variant.median_ms or 0.0) / 1000.0
        total_time += seconds
        case = ET.SubElement(
            suite,
            "testcase",
            name=variant.name,
            classname=data.kernel_path or "kernel",
            time=f"{seconds:.6f}",
        )
        reasons = variant_failures(variant, None if variant.is_reference else fail_on)
        if variant.status in ("skipped", "pending") and not reasons:
            ET.SubElement(case, "skipped", message=variant.reason or variant.status)
            skipped += 1
        elif reasons:
            failure = ET.SubElement(
                case,
                "failure",
                message=reasons[0][:500],
                type="incorrect" if variant.correct is False else "finding",
            )
            failure.text = "\n".join(reasons)
            failures += 1
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(
            [variant_text(variant, None if variant.is_reference else of_analysis(data, variant=variant.name))]
            + [_finding_line(f) for f in variant.findings if not f.evidence.get("not_profiled")]
        )
    for element in (suites, suite):
        element.set("tests", str(len(data.variants)))
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("skipped", str(skipped))
        element.set("time", f"{total_time:.6f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
