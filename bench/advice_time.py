"""The advice benchmark's GPU step (issue 13): time each top proposal the exhaustive sweep did not measure.

Recall ("the top-ranked proposal applied to the start is >= 5% faster") can be read from the sweep only when
the proposal is a point of the swept space. The others are timed here, in two steps:

``plan`` (CPU): ``bench_advice.analyze`` on the recorded runs; for every kernel file whose top proposal is
outside the sweep, the kernel file is copied to ``--variants-dir`` and the proposal is appended to the copy as
a variant class by the project's own ``tune --write`` machinery (``collect.tune.emit.write_tuned_variant``,
the ``config`` dict method: ``class ModelNew_best_tuned(ModelNew_best): config = {**ModelNew_best.config,
...}``, launch options the ``config`` lacks through the kernel's ``run``). One JSON line per proposal.

``time`` (GPU; ``--interpret`` rehearses it on the CPU under ``TRITON_INTERPRET=1`` with the files' small
``INTERPRET_SHAPES``): per plan line, the start variant and the written class are built like
``bench/sweep_corpus.py`` builds them (same reference, seeds and poisoned outputs), each checked against the
float64 reference (the file's ``RTOL``), then timed alternately ``--reps`` times with ``do_bench`` (median
of each, the sweep's warmup/rep). The gain is ``1 - proposal / start`` from the same process, so clocks
and the GPU's state are the same for both. One JSON line per proposal (``ok`` false with the error when the
proposal fails to compile, run or match the reference: a failed proposal (``proposal_failed``) is a recall
miss, not a gap; a failure of the start or of the environment leaves the proposal unmeasured).
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_OPTIONS = ("num_warps", "num_stages")


def static_case(source: Path) -> tuple[str, str, dict[str, list[Any]]]:
    """(start variant, sweep variant, swept space) of a kernel file without importing it (no torch needed):
    the zoo's from ``sweep_corpus.ZOO``, a corpus file's from its literal ``SWEEP_SPACE = dict(...)``."""
    import ast  # noqa: PLC0415

    import sweep_corpus as sc  # noqa: PLC0415 - bench/ is on sys.path (bench_advice)

    key = sc.rel(source)
    if key in sc.ZOO:
        zoo = sc.ZOO[key]
        return str(zoo["start"]), str(zoo["sweep"]), dict(zoo["space"])
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SWEEP_SPACE" for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call):
                return (
                    "ModelNew",
                    "ModelNew_best",
                    {k.arg: ast.literal_eval(k.value) for k in value.keywords if k.arg},
                )
            return "ModelNew", "ModelNew_best", dict(ast.literal_eval(value))
    raise ValueError(f"{key}: no literal SWEEP_SPACE")


def plan(rows: list[Any], variants_dir: Path) -> list[dict[str, Any]]:
    """Write a variant file per unmeasured top proposal of ``rows`` (``bench_advice.KernelAdvice``)."""
    from ncu_advisor.collect.tune.emit import METHOD_CLASS_CONFIG, write_tuned_variant  # noqa: PLC0415
    from ncu_advisor.model import LaunchConfig  # noqa: PLC0415

    variants_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for row in rows:
        if row.top_proposal is None or row.top_ms is not None or not row.source_file:
            continue
        source = ROOT / row.source_file
        start, sweep, space = static_case(source)
        keys = set(space) | {k for k in row.top_proposal if k.startswith("BLOCK")}
        params = {k: int(v) for k, v in row.top_proposal.items() if k in keys and k not in LAUNCH_OPTIONS}
        config = LaunchConfig.make(
            params, int(row.top_proposal["num_warps"]), int(row.top_proposal["num_stages"])
        )
        copy = variants_dir / f"{row.file}.py"
        shutil.copyfile(source, copy)
        note = f"bench_advice top proposal {row.top_rule}"
        tuned = write_tuned_variant(copy, sweep, row.kernel or "", config, METHOD_CLASS_CONFIG, note)
        entries.append(
            {
                "stem": row.file,
                "file": row.source_file,
                "variant_file": str(copy),
                "start_variant": start,
                "proposal_variant": tuned,
                "rule": row.top_rule,
                "config": row.top_proposal,
            }
        )
    return entries


def _timer(interpret: bool, warmup_ms: float, rep_ms: float) -> Any:
    if interpret:
        import sweep_corpus as sc  # noqa: PLC0415

        return sc.wall_bench
    import triton.testing  # noqa: PLC0415

    def timer(fn: Any) -> float:
        return float(triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median"))

    return timer


def time_entry(
    entry: dict[str, Any], *, interpret: bool, reps: int, warmup_ms: float = 10.0, rep_ms: float = 40.0
) -> dict[str, Any]:
    """Check and time the start and the proposal of one plan line; the record written for it."""
    import sweep_corpus as sc  # noqa: PLC0415
    import torch  # noqa: PLC0415

    path = Path(entry["variant_file"])
    device = "cpu" if interpret else "cuda"
    record: dict[str, Any] = {k: entry[k] for k in ("stem", "file", "config", "rule", "proposal_variant")}
    module = sc.load_module(path)
    case = sc.case_for(ROOT / entry["file"], module)
    if interpret:
        sc.apply_shapes(module, case.interpret_shapes)
    init, reference, inputs = sc.build(module, device)
    expected = sc.reference64(reference, inputs)
    timer = _timer(interpret, warmup_ms, rep_ms)
    env = sc.Env("interpret" if interpret else "gpu", device, timer=timer)
    models = {}
    for role, name in (("start", entry["start_variant"]), ("proposal", entry["proposal_variant"])):
        model = sc.instantiate(module, name, init, reference, device)
        checked = sc.measure(env, model, inputs, expected, case.rtol, record_launch=True)
        keys = ("ok", "rel_err", "error", "first_call_s", "launch")  # launch: the keywords Triton ran with
        record[f"{role}_check"] = {k: checked.get(k) for k in keys}
        if not checked.get("ok"):  # only the proposal's own failure is a recall miss, not the start's
            record.update(
                ok=False, error=f"{role}: {checked.get('error')}", proposal_failed=role == "proposal"
            )
            return record
        models[role] = (model, [float(checked["ms"])])
    for _ in range(max(0, reps - 1)):  # alternate, so drift hits both alike
        for model, times in models.values():
            with torch.no_grad():
                times.append(float(timer(lambda m=model: m(*inputs))))
    start_ms = statistics.median(models["start"][1])
    ms = statistics.median(models["proposal"][1])
    record.update(
        ok=True,
        start_ms=start_ms,
        ms=ms,
        gain=1 - ms / start_ms,
        times={role: times for role, (_model, times) in models.items()},
        mode="interpret" if interpret else "gpu",
    )
    return record


def run_time(
    plan_file: Path,
    out: Path,
    only: list[str] | None,
    interpret: bool,
    reps: int,
    warmup_ms: float,
    rep_ms: float,
) -> int:
    """``time`` mode: every (or ``only``'s) plan line timed; one JSON line each appended to ``out``."""
    entries = [json.loads(line) for line in plan_file.read_text().splitlines() if line.strip()]
    failed = 0
    for entry in entries:
        if only and entry["stem"] not in only:
            continue
        try:
            record = time_entry(entry, interpret=interpret, reps=reps, warmup_ms=warmup_ms, rep_ms=rep_ms)
        except Exception as exc:  # one file's failure is its record, the others still run
            record = {k: entry[k] for k in ("stem", "file", "config", "rule")}
            record.update(
                ok=False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            )
        failed += not record.get("ok")
        with out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        gain = f"{record['gain']:+.1%}" if record.get("ok") else record.get("error")
        print(f"{entry['stem']}: {entry['rule']} {gain}", file=sys.stderr)
    return 1 if failed else 0


def timed_gains(path: Path | None) -> dict[str, dict[str, Any]]:
    """``time``'s records by kernel file stem (the last record of a stem wins)."""
    if path is None or not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["stem"]: r for r in records if "stem" in r}
