"""JUnit XML: one test case per variant, a failure when it is incorrect or has a finding >= ``fail_on``."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ncu_advisor.analysis.report_data import ReportData, gpu_name, variant_failures


def render_junit(data: ReportData, *, fail_on: str | None = "error") -> str:
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
        out.text = (
            f"median {variant.median_ms} ms over {variant.reps} repetitions; longest kernel "
            f"{variant.main_kernel}; registers {variant.registers}; occupancy limiter "
            f"{variant.occupancy_limiter}; {len(variant.findings)} findings"
        )
    for element in (suites, suite):
        element.set("tests", str(len(data.variants)))
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("skipped", str(skipped))
        element.set("time", f"{total_time:.6f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
