"""Rules are data: YAML files checked by pydantic, with expressions run by a whitelisting evaluator.

Public API: ``load_rules``, ``required_metrics``, ``evaluate``, ``Rule``, ``KernelResult``.
"""

from __future__ import annotations

from ncu_advisor.rules.engine import STAGE_CHOICES, KernelResult, evaluate
from ncu_advisor.rules.loader import load_rules, required_metrics, shipped_rules_dir
from ncu_advisor.rules.schema import Rule

__all__ = [
    "STAGE_CHOICES",
    "KernelResult",
    "Rule",
    "evaluate",
    "load_rules",
    "required_metrics",
    "shipped_rules_dir",
]
