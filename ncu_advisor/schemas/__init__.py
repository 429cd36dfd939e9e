"""The JSON Schemas of ncu-advisor's JSON outputs, shipped in the wheel next to this file.

Every JSON document ncu-advisor writes is an object whose ``schema_version`` (an integer, raised on an
incompatible change) names the version of its schema here:

- ``report``: ``report RUN --format json`` (``render.report_json.REPORT_SCHEMA_VERSION``)
- ``findings``: ``recommend --format json`` (``render.findings.SCHEMA_VERSION``)
- ``comparison``: ``compare BASE NEW --format json`` (``analysis.compare.COMPARISON_SCHEMA_VERSION``)
- ``metrics``: ``metrics --format json`` (``render.table.METRICS_SCHEMA_VERSION``)
- ``tune-report``: ``report TUNE_RUN --format json`` (``render.tune_report.TUNE_REPORT_SCHEMA_VERSION``)

SARIF (``report --format sarif``) follows the OASIS SARIF 2.1.0 schema instead (its ``version`` field).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

#: Schema name -> file name in this package.
SCHEMA_FILES = {
    "report": "report.schema.json",
    "findings": "findings.schema.json",
    "comparison": "comparison.schema.json",
    "metrics": "metrics.schema.json",
    "tune-report": "tune-report.schema.json",
}


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft-07) of one output, as a dict.

    Args:
        name: a key of ``SCHEMA_FILES``.

    Raises:
        KeyError: unknown name.
    """
    text = resources.files(__name__).joinpath(SCHEMA_FILES[name]).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document
