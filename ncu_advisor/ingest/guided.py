"""ncu's guided-analysis findings (``OPT``/``WRN``/``INF`` rule text) as the table carries them.

Text inputs (the details page's rule columns, the plain text's rule paragraphs) give ncu's findings as
text; they go to ``table.attrs["guided"]`` in the shape of ``ncu_report_reader.rule_results`` so the
renderers show them like the binary report's, and never into metric columns.
"""

from __future__ import annotations

from typing import Any

# ncu's printed rule types -> the severities of ncu_report's message types (MsgType_*).
SEVERITY_OF_TYPE = {
    "OPT": "optimization",
    "WRN": "warning",
    "WARN": "warning",
    "ERR": "error",
    "ERROR": "error",
    "INF": "info",
    "INFO": "info",
}


def finding(
    *,
    launch: int,
    kernel: str | None,
    rule: str | None,
    section: str | None,
    rule_type: str,
    message: str,
    speedup_type: str | None = None,
    speedup: float | None = None,
) -> dict[str, Any] | None:
    """One guided finding; None for ncu's own failures (a rule's traceback is not advice)."""
    if "Traceback (most recent call last)" in message or not message.strip():
        return None
    return {
        "launch": launch,
        "kernel": kernel,
        "rule": rule,
        "name": rule,
        "section": section,
        "type": rule_type,
        "severity": SEVERITY_OF_TYPE.get(rule_type.strip().upper(), rule_type.strip().lower() or None),
        "title": None,
        "message": " ".join(message.split()),
        "speedup_type": speedup_type.strip().lower() if speedup_type and speedup_type.strip() else None,
        "speedup": speedup,
        "focus_metrics": [],
    }
