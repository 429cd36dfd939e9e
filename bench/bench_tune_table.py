"""The pure half of bench/bench_tune.py (no GPU, tested on the CPU): random search from the sweep's timings,
the three goals with their reasons, the table, the JSONL reader and cross-check, and the merge of the
per-GPU parts.

What the two walls include (both from the same kind of start, so the ratio compares searches, not start-ups):
- tune wall: from ``TuneSession(settings)`` (static plan, run directory) to the end of the search
  (``--no-ncu``): one measurement worker's start (python, torch and triton imports, the model, inputs and
  reference built once), every batch compiled ahead by the compile pool and benched.
- sweep wall: from a fresh measurement worker's start (the same start-up) to its last result, every
  configuration of the space submitted at once (compiled ahead together by the same compile pool).
``start_s`` of each: the sweep worker's start to ready; tune's first trial (worker start + the start config).
"""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path
from typing import Any

TARGET_QUALITY = 0.98
#: Timings of the sweep's best and tune's pick, alternated, after the sweep (``bench_tune._confirm``).
CONFIRM_ROUNDS = 3
TARGET_WALL = 0.5
TARGET_SHARE = 0.9
#: The JSONL's best counts as confirmed when the fresh sweep times it within this of the fresh best.
CROSS_CHECK = 0.98
WALLS = (
    "Walls: tune = TuneSession start (worker start: imports, model, inputs, reference) to the end of the "
    "search; sweep = a fresh worker's start (the same start-up) to its last result, every config submitted "
    "at once; start = each one's worker start (tune: its first trial, the start config included)."
)


def random_search(
    sweep_ms: list[float | None], start_ms: float, trials: int, draws: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Random search at ``trials`` trials: the start plus ``trials - 1`` sweep configurations drawn without
    replacement (None: a failing or wrong configuration, it finds nothing); quality = sweep best / best found,
    at most 1 (the start's timing comes from tune's run: one faster than the sweep's best is a tie with it).

    Returns ``{"mean": ..., "p10": ...}`` over ``draws`` draws (p10: the 10th percentile, the bad luck case).
    """
    good = [ms for ms in sweep_ms if ms is not None]
    if not good:
        return {"mean": 0.0, "p10": 0.0}
    best = min(good)
    rng = random.Random(seed)
    k = max(0, min(trials - 1, len(sweep_ms)))
    qualities = []
    for _ in range(draws):
        found = [ms for ms in rng.sample(sweep_ms, k) if ms is not None] + [start_ms]
        qualities.append(min(1.0, best / min(found)))  # a start timed faster than the best ties with it
    qualities.sort()
    return {"mean": statistics.fmean(qualities), "p10": qualities[int(0.1 * (len(qualities) - 1))]}


def judge(result: dict[str, Any]) -> dict[str, Any]:
    """Add ``quality``, ``wall_ratio``, ``goals`` (each True/False) and ``why`` (the goals missed, with the
    data that explains them) to one kernel's result (keys: sweep, tune, random, start_ms)."""
    sweep, tune, rnd = result["sweep"], result["tune"], result["random"]
    one_pass = sweep["best_ms"] / tune["best_ms_in_sweep"] if tune.get("best_ms_in_sweep") else 0.0
    confirmed = confirmed_quality(sweep.get("confirm"))
    # a pick timed faster than the sweep's best is a tie with it (nothing in the space beats the best)
    quality = min(1.0, confirmed) if confirmed is not None else one_pass
    wall_ratio = tune["wall_s"] / sweep["wall_s"] if sweep["wall_s"] else float("inf")
    band = sweep.get("spread") or 0.0
    goals = {
        "quality": quality >= TARGET_QUALITY,
        "wall": wall_ratio <= TARGET_WALL,
        "vs_random": quality >= rnd["mean"] - 1e-9,
    }
    result = {
        **result,
        "quality_one_pass": one_pass,
        "quality_confirmed": confirmed,
        "vs_random_within_noise": quality >= rnd["mean"] - band,
    }
    why = []
    if not goals["quality"]:
        differs = [
            f"{k} {tune['best'].get(k)} -> {v}" for k, v in sweep["best"].items() if tune["best"].get(k) != v
        ]
        why.append(
            f"{quality:.1%} of the best: tune stopped ({tune['stop_reason']}) at a config the sweep's best "
            f"beats by changing {', '.join(differs) or 'nothing in the space'}"
        )
    if not goals["wall"]:
        why.append(_wall_why(sweep, tune, wall_ratio))
    if not goals["vs_random"]:
        why.append(f"random search's mean at {tune['trials']} trials is {rnd['mean']:.1%}")
    return {**result, "quality": quality, "wall_ratio": wall_ratio, "goals": goals, "why": why}


def confirmed_quality(confirm: dict[str, Any] | None) -> float | None:
    """The sweep's best over tune's pick from the alternated timings after the sweep (medians of all their
    reps); 1.0 when tune picked the sweep's best; None when not measured (a capped sweep, an older run)."""
    if not confirm:
        return None
    if confirm.get("same"):
        return 1.0
    reps = confirm.get("reps") or {}
    if not reps.get("best") or not reps.get("tune"):
        return None
    return float(statistics.median(reps["best"]) / statistics.median(reps["tune"]))


def _wall_why(sweep: dict[str, Any], tune: dict[str, Any], wall_ratio: float) -> str:
    text = (
        f"wall {tune['wall_s']:.1f} s = {wall_ratio:.0%} of the sweep's {sweep['wall_s']:.1f} s "
        f"({tune['trials']} of {sweep['configs']} configs measured; "
        f"worker start {tune.get('start_s') or tune.get('build_s') or 0:.1f} s"
        f"{'; measured the whole space' if tune.get('exhaustive') else ''})"
    )
    start = sweep.get("start_s")
    if start and start >= TARGET_WALL * sweep["wall_s"]:
        measuring = sweep["wall_s"] - start
        text += (
            f"; a cheap space: the sweep's {sweep['wall_s']:.1f} s is {start:.1f} s worker start + "
            f"{measuring:.1f} s measuring {sweep['configs']} configs, and tune pays the same start, so half "
            f"the sweep's wall ({TARGET_WALL * sweep['wall_s']:.1f} s) is no more than the start alone"
        )
    return text


def _starts(r: dict[str, Any]) -> str:
    sweep, tune = r["sweep"].get("start_s"), r["tune"].get("start_s")
    return "/".join("-" if s is None else f"{s:.1f}" for s in (sweep, tune))


def _cross(r: dict[str, Any]) -> str:
    check = r["sweep"].get("jsonl_check")
    return "-" if not check else f"{check['ratio']:.1%}"


def _compiles(r: dict[str, Any]) -> str:
    """"ready/asked, prefetched used/started": of tune's candidates compiled ahead in the pool, how many
    found their compile done when measured; of the pool's prefetches, how many were measured later."""
    pool = (r["tune"].get("compile") or {}).get("pool") or {}
    if not pool:
        return "-"
    return f"{pool.get('ready', 0)}/{pool.get('requested', 0)}, {pool.get('prefetch_used', 0)}/" + str(
        pool.get("prefetch_started", 0)
    )


def table(results: list[dict[str, Any]]) -> str:
    """The markdown table of judged results, then the overall verdict line and what the walls include."""
    lines = [
        "| kernel | space | sweep best ms | tune % of best | one pass % | random mean % | random p10 % "
        "| trials | sweep wall s | tune wall s | tune/sweep wall | start s sweep/tune | JSONL best % "
        "| compiles ready, prefetch used | goals | why |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['kernel']} |" + " - |" * 13 + f" ERROR | {r['error']} |")
            continue
        s, t, rnd = r["sweep"], r["tune"], r["random"]
        met = sum(r["goals"].values())
        one = r.get("quality_one_pass", r["quality"])
        lines.append(
            f"| {r['kernel']} | {s['configs']} | {s['best_ms']:.4f} | {r['quality']:.1%} | {one:.1%} "
            f"| {rnd['mean']:.1%} | {rnd['p10']:.1%} | {t['trials']} | {s['wall_s']:.1f} | {t['wall_s']:.1f} "
            f"| {r['wall_ratio']:.2f} | {_starts(r)} | {_cross(r)} | {_compiles(r)} | "
            f"{met}/3 | {'; '.join(r['why']) or 'all met'} |"
        )
    judged = [r for r in results if "error" not in r]
    share = sum(1 for r in judged if r["goals"]["quality"]) / len(judged) if judged else 0.0
    fast = sum(1 for r in judged if r["goals"]["wall"])
    beats = sum(1 for r in judged if r["goals"]["vs_random"])
    whole = sum(1 for r in judged if r["tune"].get("exhaustive"))
    noise = sum(1 for r in judged if r.get("vs_random_within_noise", r["goals"]["vs_random"]))
    lines += [
        "",
        f"tune >= {TARGET_QUALITY:.0%} of the sweep's best on {share:.0%} of {len(judged)} kernels (goal "
        f">= {TARGET_SHARE:.0%}); wall <= {TARGET_WALL:.0%} of the sweep's on {fast}/{len(judged)}; "
        f">= random search's mean on {beats}/{len(judged)} ({noise}/{len(judged)} within the sweep's "
        f"measured noise); measured the whole space on {whole}; "
        f"{len(results) - len(judged)} errors.",
        "",
        WALLS + " tune % of best: the sweep's best over tune's pick, both timed again alternately after the "
        "sweep (one pass %: from the sweep's single timing of each). JSONL best %: the fresh sweep's best "
        "over its timing of the in-process JSONL's best. compiles ready, prefetch used: of tune's candidates "
        "compiled ahead in the pool, how many found their compile done when measured (of those asked), "
        "and how many of the pool's prefetched compiles were measured later (of those started).",
    ]
    return "\n".join(lines + _inline_lines(judged))


def _inline_lines(judged: list[dict[str, Any]]) -> list[str]:
    """The kernels that also got the in-line sweep (``bench_tune.py --inline-sweep``): tune's wall against
    both sweeps, measured in the same run."""
    rows = [r for r in judged if r.get("sweep_inline")]
    if not rows:
        return []
    lines = [
        "",
        "The sweep as the issue measured it (no compile ahead: each config compiles at its own launch, one "
        "at a time), for these kernels, same run:",
        "",
        "| kernel | configs | in-line sweep wall s | sweep wall s (compile ahead) | tune wall s "
        "| tune / in-line sweep | tune / sweep |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        inline, s, t = r["sweep_inline"], r["sweep"], r["tune"]
        capped = " (capped)" if inline.get("capped") else ""
        lines.append(
            f"| {r['kernel']} | {inline['configs']}{capped} | {inline['wall_s']:.1f} | {s['wall_s']:.1f} "
            f"| {t['wall_s']:.1f} | {t['wall_s'] / inline['wall_s']:.2f} | {r['wall_ratio']:.2f} |"
        )
    return lines


def read_sweep_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    """bench/sweep_corpus.py's JSONL by kernel file name:
    ``{"configs": [(flat config, ms or None)], "wall_s": s}``.

    Lines of ``"type": "config"`` carry the flat ``config`` (space keys), ``ok`` and ``ms``; a
    ``"type": "file_end"`` line carries the file's ``wall_s`` (in-process: no process start in it). A kernel
    whose sweep stopped early (``skipped`` > 0) is left out.
    """
    out: dict[str, dict[str, Any]] = {}
    partial: set[str] = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or not row.get("file"):
            continue
        name = Path(str(row["file"])).name
        entry = out.setdefault(name, {"configs": [], "wall_s": None})
        if row.get("type") == "config" and isinstance(row.get("config"), dict):
            ms = row.get("ms") if row.get("ok") else None
            entry["configs"].append((flat(row["config"]), float(ms) if ms is not None else None))
        elif row.get("type") == "file_end":
            entry["wall_s"] = float(row.get("wall_s") or 0.0)
            if row.get("skipped"):
                partial.add(name)
    return {k: v for k, v in out.items() if v["configs"] and v["wall_s"] and k not in partial}


def lookup(configs: list[tuple[dict[str, int], float | None]], config: dict[str, int]) -> float | None:
    """The sweep's timing of ``config`` (flat): the entry whose every key has ``config``'s value."""
    for swept, ms in configs:
        if all(config.get(k) == v for k, v in swept.items()):
            return ms
    return None


def cross_check(
    jsonl: dict[str, Any], fresh: list[tuple[dict[str, int], float | None]]
) -> dict[str, Any] | None:
    """The in-process JSONL's best config against the fresh sweep: ``ratio`` = fresh best / the fresh
    sweep's timing of the JSONL's best (1.0: the same best; None when the fresh sweep lacks it)."""
    good = [(c, ms) for c, ms in jsonl["configs"] if ms is not None]
    fresh_good = [ms for _, ms in fresh if ms is not None]
    if not good or not fresh_good:
        return None
    config, ms = min(good, key=lambda item: item[1])
    # the JSONL's configs name the swept keys only; the fresh sweep's name every dimension
    again = next((ms for c, ms in fresh if all(c.get(k) == v for k, v in config.items())), None)
    if again is None:
        return None
    ratio = min(fresh_good) / again
    return {
        "jsonl_best": config,
        "jsonl_best_ms": ms,
        "fresh_ms": again,
        "ratio": ratio,
        "confirmed": ratio >= CROSS_CHECK,
        "jsonl_wall_s": jsonl["wall_s"],
    }


def merge(paths: list[Path]) -> list[dict[str, Any]]:
    """The results of several ``bench_tune.json`` parts (one per GPU), in the order given, each marked
    with its ``part`` (the folder name); a kernel a part planned (``planned``) but has no result for (the
    part was killed by its timeout) becomes an error row.

    Raises:
        ValueError: a part is missing, not JSON, or holds no ``results`` list.
    """
    results: list[dict[str, Any]] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read the part ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise ValueError(f"{path}: no 'results' list (not a bench_tune.json)")
        part = Path(path).parent.name
        results += [{**r, "part": part} for r in data["results"]]
        done = {r.get("kernel") for r in data["results"]}
        results += [
            {"kernel": k, "part": part, "error": f"not run: part {part} ended (its timeout) before it"}
            for k in data.get("planned") or []
            if k not in done
        ]
    return results


def nested(config: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``flat``: ``{"params": {...}, "num_warps": W, "num_stages": S}``."""
    launch = ("num_warps", "num_stages")
    return {"params": {k: v for k, v in config.items() if k not in launch}, **{k: config[k] for k in launch}}


def spread_of(reps: list[list[float]]) -> float | None:
    """The sweep's measured noise: the median over configurations of (max - min) / median of their reps."""
    spreads = [(max(r) - min(r)) / statistics.median(r) for r in reps if len(r) >= 2 and statistics.median(r)]
    return statistics.median(spreads) if spreads else None


def flat(config: dict[str, Any] | None) -> dict[str, Any]:
    """``{"params": {...}, "num_warps": W, "num_stages": S}`` (or an already flat dict) as one flat dict."""
    if not config:
        return {}
    if "params" not in config:
        return dict(config)
    return {**config.get("params", {}), "num_warps": config["num_warps"], "num_stages": config["num_stages"]}
