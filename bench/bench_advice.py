"""Benchmark: does the advice hold on kernels nobody here wrote? (issue 13)

Per corpus kernel (kernels/corpus/*.py: a mistuned ``ModelNew`` and the sweep's ``ModelNew_best``):

- **precision**: warning- or error-level findings on ``ModelNew_best``'s own kernels (goal 0; info findings
  such as "at 93% of its roof" are fine);
- **recall**: the top-ranked proposal applied to the start, its time read from the exhaustive sweep
  (``bench/sweep_corpus.py`` JSONL; timed on the GPU when the config is outside the swept space; goal:
  >= 5% faster on >= 80% of kernels) and **direction**: the top three proposals move every parameter the
  sweep's best changed in the same direction (up/down);
- **agreement with ncu** on start and best when ``--set full`` reports are given (``bench_ncu_agreement``);
- **calibration**: Spearman rank correlation between the top proposal's estimated effect and its measured
  gain, over the kernels with both.

Modes:
    python bench/bench_advice.py analyze --runs DIR --sweep SWEEP.jsonl [--full DIR] [--out FILE.json]
        CPU: DIR/<stem>/ is the ``ncu-advisor profile`` run directory of kernels/corpus/<stem>.py (both
        variants); --full DIR/<stem>/{ModelNew,ModelNew_best}.ncu-rep are ``--set full`` reports. Without
        --sweep only precision (and agreement) are computed from the recorded runs.
    python bench/bench_advice.py run-variant FILE VARIANT [--config JSON] [--calls N]
        GPU helper: build and call one variant N times (the program ncu --set full profiles).
    python bench/bench_advice.py variants SWEEP.jsonl
        Each swept file with its start and swept variant (tab-separated), for the GPU script.
    python bench/bench_advice.py plan --runs DIR [--runs DIR2] --sweep SWEEP --variants-dir D --out P.jsonl
        CPU: each top proposal outside the swept space written as a variant class of a copy of its kernel file
        (``bench/advice_time.py``), one JSON line each.
    python bench/bench_advice.py time P.jsonl --out TIMED.jsonl [--only STEM] [--reps 5] [--interpret]
        GPU: each planned proposal checked and timed against the start in the same process; ``analyze
        --timed TIMED.jsonl`` reads the gains (``--interpret``: a CPU rehearsal, its times are not used).
The GPU runs are bench/device/advice.sh, advice_rest.sh (profiling) and advice_time.sh (the timing step).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ncu_advisor.model import Proposal, Severity  # noqa: E402

START, BEST = "ModelNew", "ModelNew_best"
RECALL_GAIN = 0.05


@dataclass
class Truth:
    """What the exhaustive sweep measured for one kernel file."""

    start_config: dict[str, int]
    start_ms: float
    best_config: dict[str, int]
    best_ms: float
    measured: list[tuple[dict[str, int], float]] = field(default_factory=list)
    #: the variants the sweep started from and swept (zoo files: e.g. ModelNew_block64_w8 and ModelNew)
    variants: tuple[str, str] = (START, BEST)

    def ms_of(self, config: dict[str, int]) -> float | None:
        """The sweep's time of ``config`` (keys the sweep varies; others ignored), None if not swept."""
        for swept, ms in self.measured:
            if all(config.get(k) == v for k, v in swept.items()):
                return ms
        return None


@dataclass
class KernelAdvice:
    """The benchmark's verdicts for one kernel file."""

    file: str
    kernel: str | None = None
    warnings_on_best: list[str] | None = None
    top_proposal: dict[str, int] | None = None
    top_rule: str | None = None
    top_estimated: float | None = None
    start_ms: float | None = None
    top_ms: float | None = None
    best_ms: float | None = None
    gain: float | None = None
    changed: dict[str, int] = field(default_factory=dict)
    direction_hits: dict[str, bool] = field(default_factory=dict)
    agreement: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    passes: int | None = None
    source_file: str | None = None
    #: where the gain comes from: "sweep" (a swept config) or "timed" (``time``, same run as the start)
    gain_source: str | None = None
    #: the ``time`` step's error when the proposal failed to compile, run or match the reference
    timed_error: str | None = None
    #: per changed parameter: whether the move is beyond the noise (the best config that does not move it
    #: that way is more than ``NOISE`` slower than the best); a move within it is a tie the best won by chance
    beyond_noise: dict[str, bool] = field(default_factory=dict)
    #: the start's roofline fraction when launch-parameter advice was withheld at the roof (issue 13's
    #: "within ~10% of its roof, launch-parameter advice is suppressed"); None when it was not
    withheld_at: float | None = None

    @property
    def precise(self) -> bool | None:
        return None if self.warnings_on_best is None else not self.warnings_on_best

    @property
    def recalled(self) -> bool | None:
        if self.timed_error is not None:
            return False  # a proposal that does not compile, run or match the reference gains nothing
        return None if self.gain is None else self.gain >= RECALL_GAIN

    @property
    def direction_ok(self) -> bool | None:
        """Strict: every parameter the sweep's best changed, ties included (None: nothing changed, or the
        advice was withheld at the roof by design)."""
        if not self.changed or self.withheld_at is not None:
            return None
        return all(self.direction_hits.values())

    @property
    def direction_beyond_noise(self) -> bool | None:
        """Every move of the best that is beyond the noise (``beyond_noise``); None when there is none or the
        advice was withheld at the roof."""
        real = [k for k, v in self.beyond_noise.items() if v]
        if not real or self.withheld_at is not None:
            return None
        return all(self.direction_hits[k] for k in real)


def _start_launch(launch: dict[str, Any]) -> dict[str, int]:
    """The start's launch keywords; the sweep records them per kernel (``{kernel: {...}}``): merged."""
    merged: dict[str, int] = {}
    for key, value in launch.items():
        if isinstance(value, dict):
            merged.update(value)
        else:
            merged[key] = value
    return merged


def sweep_truths(records: list[dict[str, Any]]) -> dict[str, Truth]:
    """Per kernel file (its ``file`` key): the start's and the best's config and time."""
    starts = {r["file"]: r for r in records if r.get("type") == "start" and r.get("ok") and r.get("ms")}
    files = {r["file"]: r for r in records if r.get("type") == "file" and r.get("start_variant")}
    truths: dict[str, Truth] = {}
    for record in records:
        if record.get("type") != "config" or not record.get("ok") or not record.get("ms"):
            continue
        start = starts.get(record["file"])
        if start is None:
            continue
        truth = truths.setdefault(
            record["file"],
            Truth(
                _start_launch(start.get("launch") or {}),
                float(start["ms"]),
                dict(record["config"]),
                float(record["ms"]),
            ),
        )
        truth.measured.append((dict(record["config"]), float(record["ms"])))
        if record["file"] in files:
            head = files[record["file"]]
            truth.variants = (str(head["start_variant"]), str(head.get("sweep_variant") or BEST))
        if float(record["ms"]) < truth.best_ms:
            truth.best_config, truth.best_ms = dict(record["config"]), float(record["ms"])
    return truths


def proposal_config(proposal: Proposal, start: dict[str, int]) -> dict[str, int]:
    """The start's launch config with a proposal's BLOCKs, warps and stages applied."""
    return {
        **start,
        **dict(proposal.params),
        "num_warps": proposal.num_warps,
        "num_stages": proposal.num_stages,
    }


def directions(
    start: dict[str, int], best: dict[str, int], proposals: list[Proposal]
) -> tuple[dict[str, int], dict[str, bool]]:
    """Each parameter the best changed (+1 up, -1 down) and whether a top-three proposal moves it that way."""
    changed = {k: (1 if v > start[k] else -1) for k, v in best.items() if k in start and v != start[k]}
    hits = {}
    for name, sign in changed.items():
        moved = [proposal_config(p, start).get(name, start[name]) - start[name] for p in proposals[:3]]
        hits[name] = any(m * sign > 0 for m in moved)
    return changed, hits


#: A move of the sweep's best counts as beyond the noise when every config without it is more than this much
#: slower: the seeds' keep threshold (keep a change only if it is >= 2% faster; rules/NA206).
NOISE = 0.02


def beyond_noise(truth: Truth, changed: dict[str, int]) -> dict[str, bool]:
    """Per changed parameter: True when the fastest swept config that does not move it in the best's
    direction is more than ``NOISE`` slower than the best (no such config: True)."""
    out = {}
    for name, sign in changed.items():
        others = [
            ms
            for config, ms in truth.measured
            if (config.get(name, truth.start_config[name]) - truth.start_config[name]) * sign <= 0
        ]
        out[name] = not others or min(others) > truth.best_ms * (1 + NOISE)
    return out


def _withheld(result: Any) -> float | None:
    """The roofline fraction when ``result``'s launch-parameter advice was withheld at the roof
    (``analysis.advice`` withholds it exactly when the launch's roofline is ``at_roof``)."""
    roof = getattr(result, "roofline", None)
    return roof.fraction if roof is not None and roof.at_roof else None


def _main_result(results: list[Any], variant: str) -> Any:
    """The longest launch of ``variant`` among kernels the source defines."""
    own = [r for r in results if r.variant == variant and r.user_kernel]
    return max(own, key=lambda r: r.metrics.get("gpu__time_duration.sum", 0.0), default=None)


def analyze_kernel(
    stem: str,
    run_dir: Path,
    truth: Truth | None,
    full_dir: Path | None,
    rules: Any,
    variants: tuple[str, str] = (START, BEST),
    timed: dict[str, Any] | None = None,
) -> KernelAdvice:
    """The verdicts of one kernel file from its recorded run (and sweep truth, and full reports)."""
    from ncu_advisor import rundir  # noqa: PLC0415
    from ncu_advisor.kernelsrc.facts import analyze_file  # noqa: PLC0415
    from ncu_advisor.rules import evaluate  # noqa: PLC0415

    run = rundir.load_run(run_dir)
    facts = analyze_file(run.kernel_file) if run.kernel_file else None
    results = evaluate(run.table, rules, source=facts)
    row = KernelAdvice(file=stem, source_file=_repo_path(run))
    passes = run.table.get("profiler__replayer_passes")
    if passes is not None and passes.notna().any():
        row.passes = int(passes.max())
    start_variant, best_variant = variants
    best = _main_result(results, best_variant)
    if best is not None:
        row.warnings_on_best = [f.rule for f in best.findings if f.severity.rank >= Severity.WARNING.rank]
    start = _main_result(results, start_variant)
    if start is None:
        row.notes.append("no start launch of a kernel the source defines")
        return row
    row.kernel = start.kernel
    if truth is not None:
        row.start_ms, row.best_ms = truth.start_ms, truth.best_ms
        row.changed, row.direction_hits = directions(truth.start_config, truth.best_config, start.proposals)
        row.beyond_noise = beyond_noise(truth, row.changed)
    row.withheld_at = _withheld(start)
    if start.proposals:
        top = start.proposals[0]
        row.top_rule = top.reason.split()[0].rstrip(":")
        row.top_estimated = next((f.estimated_effect for f in start.findings if f.rule == row.top_rule), None)
        if truth is not None:
            row.top_proposal = proposal_config(top, truth.start_config)
            row.top_ms = truth.ms_of(row.top_proposal)
            if row.top_ms is not None:
                row.gain, row.gain_source = 1 - row.top_ms / truth.start_ms, "sweep"
            else:
                _timed_gain(row, timed)
    if full_dir is not None:
        row.agreement = _agreement(full_dir / stem, rules)
    return row


def _timed_gain(row: KernelAdvice, timed: dict[str, Any] | None) -> None:
    """The ``time`` step's gain of the top proposal (same config, measured on the GPU), else a note."""
    if not timed or timed.get("config") != row.top_proposal or timed.get("mode", "gpu") != "gpu":
        row.notes.append("top proposal outside the swept space: time it on the GPU (bench_advice time)")
        return
    if not timed.get("ok"):
        if timed.get("proposal_failed"):  # the start ran and matched, the proposal did not: a recall miss
            row.timed_error = str(timed.get("error"))
        row.notes.append(f"top proposal not timed on the GPU: {timed.get('error')}")
        return
    row.top_ms, row.gain, row.gain_source = float(timed["ms"]), float(timed["gain"]), "timed"
    row.notes.append(
        f"top proposal timed against the start in one run: {timed['start_ms']:.4f} -> {timed['ms']:.4f} ms"
    )


def _repo_path(run: Any) -> str | None:
    """The profiled file as the repository names it (``kernels/...``), from the run's manifest."""
    entry = run.manifest.get("kernel_file")
    path = entry.get("path") if isinstance(entry, dict) else entry
    if isinstance(path, str) and "kernels/" in path:
        return path[path.index("kernels/") :]
    return None


def _agreement(folder: Path, rules: Any) -> dict[str, list[int]]:
    from bench_ncu_agreement import agreement, summarize  # noqa: PLC0415

    from ncu_advisor.ingest import readers  # noqa: PLC0415

    totals: dict[str, list[int]] = {}
    for report in sorted(folder.glob("*.ncu-rep*")):
        rows = agreement(report.name, readers.read_report(report), readers.rule_results(report), rules)
        for measure, (agree, judged) in summarize(rows).items():
            total = totals.setdefault(measure, [0, 0])
            total[0] += agree
            total[1] += judged
    return totals


def spearman(pairs: list[tuple[float, float]]) -> float | None:
    """Spearman's rank correlation of (x, y) pairs (average ranks for ties); None under three pairs."""
    if len(pairs) < 3:
        return None

    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return out

    xs, ys = ranks([p[0] for p in pairs]), ranks([p[1] for p in pairs])
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True))
    var = math.sqrt(sum((a - mx) ** 2 for a in xs) * sum((b - my) ** 2 for b in ys))
    return cov / var if var else None


def analyze(
    runs: Path, sweep: Path | None, full: Path | None = None, timed: Path | None = None
) -> tuple[list[KernelAdvice], dict[str, Any]]:
    """Every kernel of ``runs`` (a run directory per corpus file stem) against the sweep; the summary."""
    from ncu_advisor.rules import load_rules  # noqa: PLC0415

    text = sweep.read_text() if sweep is not None and sweep.is_file() else ""
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    truths = {Path(k).stem: v for k, v in sweep_truths(records).items()}
    from advice_time import timed_gains  # noqa: PLC0415

    gains = timed_gains(timed)
    rules = load_rules()
    rows = [
        analyze_kernel(
            d.name,
            d,
            truths.get(d.name),
            full,
            rules,
            truths[d.name].variants if d.name in truths else (START, BEST),
            gains.get(d.name),
        )
        for d in sorted(runs.iterdir())
        if d.is_dir() and (d / "manifest.json").is_file()
    ]
    return rows, summary(rows)


def summary(rows: list[KernelAdvice]) -> dict[str, Any]:
    """The headline figures over ``rows``."""
    recalled = [r.recalled for r in rows if r.recalled is not None]
    direction = [r.direction_ok for r in rows if r.direction_ok is not None]
    real = [r.direction_beyond_noise for r in rows if r.direction_beyond_noise is not None]
    agree: dict[str, list[int]] = {}
    for row in rows:
        for measure, (a, n) in row.agreement.items():
            agree.setdefault(measure, [0, 0])
            agree[measure][0] += a
            agree[measure][1] += n
    pairs = [(r.top_estimated, r.gain) for r in rows if r.top_estimated is not None and r.gain is not None]
    return {
        "kernels": len(rows),
        "precise": [sum(bool(r.precise) for r in rows), sum(r.precise is not None for r in rows)],
        "recalled": [sum(recalled), len(recalled)],
        "direction": [sum(direction), len(direction)],
        "direction_beyond_noise": [sum(real), len(real)],
        "withheld_at_roof": [r.file for r in rows if r.withheld_at is not None],
        "agreement": agree,
        "calibration_spearman": spearman(pairs),  # type: ignore[arg-type]
        "max_replay_passes": max((r.passes for r in rows if r.passes is not None), default=None),
    }


def table(rows: list[KernelAdvice], totals: dict[str, Any]) -> str:
    """The printed table: one line per kernel, the summary last."""
    lines = [
        f"{'kernel file':<26} {'warn@best':>9} {'top rule':>8} {'gain':>7} {'dir':>5} "
        f"{'start ms':>9} {'best ms':>8}"
    ]
    for r in rows:
        gain = f"{r.gain:+.1%}" if r.gain is not None else ("fail" if r.timed_error else "-")
        gain += "*" if r.gain_source == "timed" else ""
        direction = "-" if r.direction_ok is None else ("ok" if r.direction_ok else "miss")
        if r.direction_beyond_noise is not None and r.direction_ok is False:
            direction = "tie" if r.direction_beyond_noise else "miss"  # missed only moves within the noise
        if r.withheld_at is not None:
            direction = "roof"
        start = f"{r.start_ms:.4f}" if r.start_ms else "-"
        best = f"{r.best_ms:.4f}" if r.best_ms else "-"
        warned = "-" if r.warnings_on_best is None else str(len(r.warnings_on_best))
        lines.append(
            f"{r.file:<26} {warned:>9} {r.top_rule or '-':>8} {gain:>7} {direction:>5} {start:>9} {best:>8}"
        )
    lines.append(
        f"precision {totals['precise'][0]}/{totals['precise'][1]} kernels with 0 warnings on best; "
        f"recall {totals['recalled'][0]}/{totals['recalled'][1]} >= 5% faster; direction "
        f"{totals['direction'][0]}/{totals['direction'][1]} (beyond the noise: "
        f"{totals['direction_beyond_noise'][0]}/{totals['direction_beyond_noise'][1]}); "
        f"calibration rho {totals['calibration_spearman']}"
    )
    lines.append(
        "dir: ok = the top three proposals move every parameter the sweep's best changed its way; tie = they "
        f"miss only moves within {NOISE:.0%} (a config without that move is within {NOISE:.0%} of the best); "
        "roof = advice withheld at >= 90% of the roof (not counted): "
        + (", ".join(totals["withheld_at_roof"]) or "none")
    )
    if any(r.gain_source == "timed" or r.timed_error for r in rows):
        lines.append(
            "gain*: timed on the GPU against the start in the same run (bench_advice time); fail: failed"
        )
    lines.append(f"default metric set: at most {totals['max_replay_passes']} replay passes (goal <= 12)")
    for measure, (a, n) in totals["agreement"].items():
        lines.append(f"ncu agreement {measure}: {a}/{n}")
    return "\n".join(lines)


def _load_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(path: Path, variant: str, config: dict[str, Any] | None) -> tuple[Any, list[Any]]:
    import torch  # noqa: PLC0415 - GPU helper modes only

    module = _load_module(path)
    model = getattr(module, variant)(*module.get_init_inputs()).cuda()
    if config:
        model.config = dict(config)
    inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in module.get_inputs()]
    return model, inputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("analyze")
    a.add_argument("--runs", type=Path, required=True)
    a.add_argument("--sweep", type=Path, help="the corpus sweep JSONL (without it: precision only)")
    a.add_argument("--full", type=Path)
    a.add_argument("--out", type=Path)
    r = sub.add_parser("run-variant")
    r.add_argument("file", type=Path)
    r.add_argument("variant")
    r.add_argument("--config")
    r.add_argument("--calls", type=int, default=2)
    a.add_argument("--timed", type=Path, help="JSON lines of `time` results for proposals outside the sweep")
    v = sub.add_parser("variants")
    v.add_argument("sweep", type=Path)
    p = sub.add_parser("plan")
    p.add_argument("--runs", type=Path, action="append", required=True)
    p.add_argument("--sweep", type=Path, required=True)
    p.add_argument("--variants-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("time")
    t.add_argument("plan", type=Path)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--only", action="append", help="kernel file stem (repeatable; default: every plan line)")
    t.add_argument("--reps", type=int, default=5)
    t.add_argument("--warmup-ms", type=float, default=10.0)
    t.add_argument("--rep-ms", type=float, default=40.0)
    t.add_argument("--interpret", action="store_true", help="CPU rehearsal under TRITON_INTERPRET=1")
    args = parser.parse_args(argv)
    if args.mode == "analyze":
        rows, totals = analyze(args.runs, args.sweep, args.full, args.timed)
        if args.out:
            args.out.write_text(json.dumps({"rows": [asdict(r) for r in rows], "summary": totals}, indent=1))
        print(table(rows, totals))
        return 0
    if args.mode == "variants":
        records = [json.loads(line) for line in args.sweep.read_text().splitlines() if line.strip()]
        for record in records:
            if record.get("type") == "file" and record.get("start_variant"):
                print(f"{record['file']}\t{record['start_variant']}\t{record.get('sweep_variant') or BEST}")
        return 0
    if args.mode == "run-variant":
        import torch  # noqa: PLC0415

        model, inputs = _build(args.file, args.variant, json.loads(args.config) if args.config else None)
        for _ in range(args.calls - 1):  # compile and warm up outside the profiled range
            model(*inputs)
        torch.cuda.synchronize()
        torch.cuda.nvtx.range_push("advice")
        model(*inputs)
        torch.cuda.synchronize()
        torch.cuda.nvtx.range_pop()
        return 0
    import advice_time  # noqa: PLC0415

    if args.mode == "plan":
        rows = [row for runs in args.runs for row in analyze(runs, args.sweep)[0]]
        entries = advice_time.plan(rows, args.variants_dir)
        args.out.write_text("".join(json.dumps(e) + "\n" for e in entries))
        for entry in entries:
            print(
                f"{entry['stem']}\t{entry['rule']}\t{entry['proposal_variant']}\t{json.dumps(entry['config'])}"
            )
        return 0
    return advice_time.run_time(
        args.plan, args.out, args.only, args.interpret, args.reps, args.warmup_ms, args.rep_ms
    )


if __name__ == "__main__":
    raise SystemExit(main())
