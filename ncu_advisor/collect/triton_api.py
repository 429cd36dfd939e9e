"""What the installed Triton's ``triton.language`` offers, for the optimiser prompt's API constraints.

The seed prompts say "Triton has NO: tl.tanh, tl.sigmoid, tl.gelu, tl.silu, tl.softmax, tl.mish"; current
Triton has ``tl.sigmoid`` and ``tl.softmax``. ``probe_triton_language`` checks each name against the
installed module (importing it needs no GPU); the prompt keeps the seeds' text, saying so, where Triton is
not importable (``render.prompt.api_constraints``).
"""

from __future__ import annotations

import importlib

from ncu_advisor.render.prompt import SEED_MISSING_FUNCTIONS, TritonApi


def probe_triton_language() -> TritonApi | None:
    """Which of the seeds' "missing" functions the installed ``triton.language`` lacks.

    Returns:
        The Triton version and the names (without ``tl.``) of ``SEED_MISSING_FUNCTIONS`` that
        ``triton.language`` does not define; None when Triton cannot be imported here.
    """
    try:
        triton = importlib.import_module("triton")
        language = importlib.import_module("triton.language")
    except Exception:  # not installed, or broken (a driver-less import error): keep the seeds' text
        return None
    missing = tuple(name for name in SEED_MISSING_FUNCTIONS if not callable(getattr(language, name, None)))
    return TritonApi(version=str(getattr(triton, "__version__", "?")), missing=missing)
