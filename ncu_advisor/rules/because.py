"""The text of a finding's ``evidence["info_because"]``: its rule's ``info_when``, said in words where an
optional metric's stand-in is tested (``tensor_busy < 0``: the report lacks the tensor-pipe metric)."""

from __future__ import annotations

import re

from ncu_advisor.metrics import catalogue
from ncu_advisor.rules.schema import Rule


def because_text(rule: Rule) -> str:
    """``rule.info_when``'s text with each ``ALIAS < 0`` test on an optional metric whose ``default`` is
    negative (the stand-in for "not in the report") replaced by ``<what the metric measures> not measured``.

    ``tensor_busy < 0 and src_uses_dot == 1`` -> ``tensor-core pipe not measured and src_uses_dot == 1``
    (NA305). The words are the metric's ``meaning`` in metrics.yaml up to its first comma or parenthesis,
    less a trailing ``busy``; a metric not in the catalogue keeps its alias (``x not measured``). Empty
    when the rule has no info_when.
    """
    if rule.info_when is None:
        return ""
    text = rule.info_when.text
    known = catalogue()
    for alias, requirement in rule.aliases.items():
        if requirement.default is None or requirement.default >= 0:
            continue
        info = known.get(requirement.name)
        head = re.split(r"[,(]", info.meaning, maxsplit=1)[0] if info else alias
        words = head.strip().removesuffix(" busy")
        text = re.sub(rf"\b{re.escape(alias)}\s*<\s*0(?![\d.])", f"{words} not measured", text)
    return text
