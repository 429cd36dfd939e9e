"""Which kernel source a run profiled, and whether two runs profiled the same problem (for ``compare``).

A run directory names its kernel file (``manifest.json`` ``kernel_file.path``, with the file's sha256) and
keeps a copy (``kernel.py``). ``compare`` times variants by name, so two runs of different kernel files
(``softmax.py`` and ``elementwise.py``, both with a ``ModelNew``) would be judged as one variant made
faster or slower, and the reference ``Model``'s change blamed on the machine.

The *problem* of a kernel file is what its reference defines: the ``Model`` class, ``get_inputs`` and
``get_init_inputs``, and the module-level assignments they read (``N_ROWS = 8192``), compared as source
text without comments or formatting (``ast.unparse``). Two runs profile different kernel sources when both
problems are known and differ (another problem, or other input shapes), or, when either is unknown (no
copy, no reference in it, a copy that does not parse), when the recorded kernel file names differ. Editing
the variants of one file keeps its problem: that is what ``compare`` measures, and it only warns.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ncu_advisor.analysis.result import Analysis

#: The top-level definitions that make up a kernel file's problem (the KernelBench convention the
#: profiler runs: ``collect/profile``).
PROBLEM_NAMES = ("Model", "get_inputs", "get_init_inputs")
#: Largest kernel copy read to find its problem (the profiler refuses kernel files over 16 MB).
MAX_COPY_BYTES = 16 << 20


@dataclass(frozen=True)
class KernelSource:
    """What one run profiled: its ``run`` directory, the kernel file's recorded ``path`` (None: not
    recorded), the sha256 of its copy, and its problem's fingerprint (None: unknown)."""

    run: Path
    path: str | None
    sha256: str | None
    problem: str | None

    @property
    def name(self) -> str | None:
        """The kernel file's name (``softmax.py``), or None."""
        return Path(self.path).name if self.path else None

    def describe(self) -> str:
        """``examples/runs/softmax (kernel file softmax.py, sha256 7467b742e11b)``."""
        name = f"kernel file {self.name}" if self.name else "kernel file not recorded"
        digest = f", sha256 {self.sha256[:12]}" if self.sha256 else ""
        return f"{self.run} ({name}{digest})"


def problem_fingerprint(text: str) -> str | None:
    """sha256 of the problem's definitions in a kernel file's ``text``; None without any of them or when
    the text does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    named: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            named[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    named[target.id] = node
    wanted = [name for name in PROBLEM_NAMES if name in named]
    if not wanted:
        return None
    seen: set[str] = set()
    while wanted:  # the definitions, then the module-level names they read, transitively
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        wanted += [n.id for n in ast.walk(named[name]) if isinstance(n, ast.Name) and n.id in named]
    try:
        text = "\n".join(f"{name}: {ast.unparse(named[name])}" for name in sorted(seen))
    except (RecursionError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def kernel_source(data: Analysis) -> KernelSource:
    """The kernel source of the run ``data`` analysed: recorded path, and the copy's digest and problem."""
    copy = data.kernel_copy
    sha256 = problem = None
    try:
        if copy is not None and copy.is_file() and copy.stat().st_size <= MAX_COPY_BYTES:
            raw = copy.read_bytes()
            sha256 = hashlib.sha256(raw).hexdigest()
            problem = problem_fingerprint(raw.decode("utf-8", errors="replace"))
    except OSError:
        pass
    return KernelSource(run=data.run_path, path=data.kernel_path, sha256=sha256, problem=problem)


def different_sources(base: KernelSource, new: KernelSource) -> str | None:
    """Why the runs profiled different kernel sources (naming both), or None when they did not (or it
    cannot be told: neither problem nor both file names known)."""
    if base.problem is not None and new.problem is not None:
        if base.problem == new.problem:
            return None
        why = "their problems differ (Model, get_inputs, get_init_inputs or the constants they read)"
    elif base.name is not None and new.name is not None and base.name != new.name:
        why = "the kernel file names differ"
    else:
        return None
    return (
        f"the runs profile different kernel sources: BASE {base.describe()}, NEW {new.describe()}; {why}, "
        "so their times are of different code and problems, not a change of the machine"
    )
