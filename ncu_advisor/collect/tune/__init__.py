"""`ncu-advisor tune`: apply the advice, measure it, keep only what gains at least 2% beyond the noise.

Modules:
    space        tuning configurations, GPU-limit checks, candidate generation from findings
    invariant    static analysis: ``tl.load`` calls repeated by a loop they do not depend on
    pin          runs in the child process: overrides a kernel's launch parameters (torch/triton duck-typed)
    loop         the trial loop (recommend, generate, measure, keep/revert) and the child-process backend
    trajectory   the ``tune.json`` trajectory: write, read, summary
    plot         the time-per-trial SVG (``tune.svg``)
    emit         the final config as paste-ready text, and ``--write``: a ``ModelNew_<variant>_tuned`` class
    session      the tuned kernel, start config and limits of one kernel file and variant
    child        ``python -m ncu_advisor.collect.tune.child``: the profile child with a pinned configuration
"""
