"""Static checks on the kernel corpus (``kernels/corpus/``) and the sweep's file handling, without torch or
triton (runs in CI).

Every corpus file must follow the KernelBench convention (``Model``, ``ModelNew``, ``ModelNew_best``,
``get_inputs``, ``get_init_inputs``), describe itself in its module docstring (what it computes, its roofline
floor, each variant), and carry what ``bench/sweep_corpus.py`` needs: ``SWEEP_SPACE`` (30-80 configs,
powers of two for every ``BLOCK*``), ``RTOL``, ``INTERPRET_SHAPES`` naming real size constants,
``roofline()`` and a one-line ``ModelNew_best.config`` over exactly the space's keys with the
``# FILLED FROM SWEEP`` marker. The corpus as a whole must cover the launch styles issue 13 lists. The
sweep script's pure parts (config order, probes, ``--fill``'s rewrite, the summary) are tested here on
synthetic records.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "kernels" / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.py"))
MARKER = "# FILLED FROM SWEEP"
ALLOWED_IMPORTS = {"math", "torch", "torch.nn", "triton", "triton.language"}
MISSING_TL_FUNCTIONS = {"tanh", "sigmoid", "gelu", "relu", "silu", "softmax_fn"}  # absent in Triton 3.6
MIN_FILES = 12
SPACE_SIZE = (30, 80)


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _module_assign(tree: ast.Module, name: str) -> ast.expr | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
    return None


def _literal_dict(expr: ast.expr) -> dict[str, Any]:
    """A ``dict(K=...)`` call or a ``{"K": ...}`` literal, evaluated with ``ast.literal_eval``."""
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Name)
        and expr.func.id == "dict"
        and not expr.args
    ):
        return {k.arg: ast.literal_eval(k.value) for k in expr.keywords if k.arg}
    value = ast.literal_eval(expr)
    assert isinstance(value, dict)
    return value


def _class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)


def _class_config(cls: ast.ClassDef) -> tuple[dict[str, Any], ast.Assign] | None:
    for node in cls.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "config" for t in node.targets
        ):
            return _literal_dict(node.value), node
    return None


def _is_pow2(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


def _decorator_names(fn: ast.FunctionDef) -> list[str]:
    return [ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in fn.decorator_list]


def _launch_sites(tree: ast.Module) -> list[ast.Call]:
    """Calls ``kernel[grid](...)`` (including ``kernel.fn[grid](...)``)."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Subscript)]


def test_corpus_has_enough_files() -> None:
    assert len(CORPUS_FILES) >= MIN_FILES, [p.name for p in CORPUS_FILES]


def test_existing_zoo_glob_does_not_reach_the_corpus() -> None:
    """tests/test_kernels_static.py and test_kernels_interpret.py glob ``kernels/*.py``: not recursive."""
    top = {p.resolve() for p in (ROOT / "kernels").glob("*.py")}
    assert not top & {p.resolve() for p in CORPUS_FILES}


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_kernelbench_names_and_sweep_contract(path: Path) -> None:
    tree = _parse(path)
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"Model", "ModelNew", "ModelNew_best"} <= classes, f"{path.name}: classes {sorted(classes)}"
    assert {"get_inputs", "get_init_inputs", "roofline"} <= functions, f"{path.name}: {sorted(functions)}"
    for name in ("SWEEP_SPACE", "RTOL", "INTERPRET_SHAPES"):
        assert _module_assign(tree, name) is not None, f"{path.name}: no module-level {name}"
    rtol = ast.literal_eval(_module_assign(tree, "RTOL"))  # type: ignore[arg-type]
    assert isinstance(rtol, (int, float)) and 0 <= rtol <= 2e-2, f"{path.name}: RTOL {rtol}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_docstring_describes_kernel_floor_and_variants(path: Path) -> None:
    doc = ast.get_docstring(_parse(path)) or ""
    assert len(doc) > 300, f"{path.name}: docstring too short"
    assert "``ModelNew``" in doc and "``ModelNew_best``" in doc, f"{path.name}: variants not described"
    assert "roofline floor" in doc.lower(), f"{path.name}: no roofline floor"
    assert any(u in doc for u in (" MB", " GB", "FLOP")), f"{path.name}: no byte or FLOP count"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_sweep_space(path: Path) -> None:
    tree = _parse(path)
    space = _literal_dict(_module_assign(tree, "SWEEP_SPACE"))  # type: ignore[arg-type]
    size = math.prod(len(v) for v in space.values())
    assert SPACE_SIZE[0] <= size <= SPACE_SIZE[1], f"{path.name}: {size} configs"
    assert "num_warps" in space, f"{path.name}: num_warps not swept"
    for key, values in space.items():
        assert isinstance(values, list) and values and len(set(values)) == len(values), f"{path.name}: {key}"
        assert values == sorted(values), f"{path.name}: {key} values not ascending"
        if key.startswith("BLOCK") or key in ("num_warps", "SPLIT_M"):
            assert all(_is_pow2(v) for v in values), f"{path.name}: {key}={values}"
    assert all(v <= 32 for v in space["num_warps"]), f"{path.name}: num_warps above 32"
    assert all(1 <= v <= 6 for v in space.get("num_stages", [1])), f"{path.name}: num_stages"
    kernels = [n for n in tree.body if isinstance(n, ast.FunctionDef) and "triton.jit" in _decorator_names(n)]
    params = {a.arg for k in kernels for a in k.args.args}
    for key in space:
        assert key in params or key in ("num_warps", "num_stages"), (
            f"{path.name}: {key} is no kernel parameter"
        )


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_best_config_is_one_line_in_space_with_marker(path: Path) -> None:
    tree = _parse(path)
    space = _literal_dict(_module_assign(tree, "SWEEP_SPACE"))  # type: ignore[arg-type]
    cls = _class(tree, "ModelNew_best")
    assert cls is not None
    found = _class_config(cls)
    assert found is not None, f"{path.name}: ModelNew_best has no class attribute config"
    config, node = found
    assert list(config) == list(space), f"{path.name}: config keys {list(config)} != space keys {list(space)}"
    for key, value in config.items():
        assert value in space[key], f"{path.name}: ModelNew_best {key}={value} not in {space[key]}"
    assert node.lineno == node.end_lineno, f"{path.name}: config must be one line (--fill rewrites it)"
    line = path.read_text().splitlines()[node.lineno - 1]
    assert MARKER in line, f"{path.name}: no '{MARKER}' marker on the config line"
    forward = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    assert "self.config" in ast.unparse(forward), f"{path.name}: ModelNew_best.forward must read self.config"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_interpret_shapes_name_size_constants(path: Path) -> None:
    tree = _parse(path)
    shapes = _literal_dict(_module_assign(tree, "INTERPRET_SHAPES"))  # type: ignore[arg-type]
    assert shapes, f"{path.name}: empty INTERPRET_SHAPES"
    for name, value in shapes.items():
        full = _module_assign(tree, name)
        assert full is not None, f"{path.name}: INTERPRET_SHAPES names {name}, which is no module constant"
        assert isinstance(value, int) and 0 < value <= ast.literal_eval(full), f"{path.name}: {name}={value}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_block_values_are_powers_of_two(path: Path) -> None:
    """Every literal bound to a BLOCK*/TILE* name: keywords, dict keys, defaults, module constants."""
    tree = _parse(path)
    bindings: list[tuple[str, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            bindings += [(k.arg, k.value) for k in node.keywords if k.arg and k.arg.startswith("BLOCK")]
        elif isinstance(node, ast.Dict):
            bindings += [
                (k.value, v)
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and str(k.value).startswith("BLOCK")
            ]
        elif isinstance(node, ast.FunctionDef):
            args = node.args
            pairs = list(zip(args.args[len(args.args) - len(args.defaults) :], args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
            bindings += [(a.arg, d) for a, d in pairs if a.arg.startswith("BLOCK")]
    for node in tree.body:
        if isinstance(node, ast.Assign):
            bindings += [
                (t.id, node.value)
                for t in node.targets
                if isinstance(t, ast.Name) and ("BLOCK" in t.id or "TILE_M" in t.id or "TILE_N" in t.id)
            ]
    checked = 0
    for name, value in bindings:
        if isinstance(value, ast.Constant) and isinstance(value.value, int):
            assert _is_pow2(value.value), (
                f"{path.name}:{value.lineno}: {name}={value.value} is not a power of two"
            )
            checked += 1
    assert checked, f"{path.name}: no literal BLOCK value found"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_imports_and_triton_functions(path: Path) -> None:
    tree = _parse(path)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= ALLOWED_IMPORTS, f"{path.name}: imports {sorted(imported - ALLOWED_IMPORTS)}"
    used = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "tl"
        and n.attr in MISSING_TL_FUNCTIONS
    }
    assert not used, f"{path.name}: tl.{sorted(used)} do not exist in Triton 3.6"


def _styles(path: Path) -> set[str]:
    """The launch styles a file uses, as issue 13 names them."""
    tree = _parse(path)
    module_names = {
        t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
    }
    styles = set()
    if any("triton.autotune" in _decorator_names(n) for n in tree.body if isinstance(n, ast.FunctionDef)):
        styles.add("autotune")
    if "lambda meta" in path.read_text():
        styles.add("grid of meta")
    start = _class(tree, "ModelNew")
    assert start is not None
    for call in _launch_sites(tree):
        grid = call.func.slice  # type: ignore[attr-defined]
        if isinstance(grid, ast.Tuple) and len(grid.elts) == 1 and isinstance(grid.elts[0], ast.Name):
            styles.add("fixed tuple grid (rows)")
    for node in ast.walk(start):
        if isinstance(node, ast.Call):
            for k in node.keywords:
                if k.arg and k.arg.startswith("BLOCK") and isinstance(k.value, ast.Constant):
                    styles.add("literal keywords")
                if (
                    k.arg
                    and k.arg.startswith("BLOCK")
                    and isinstance(k.value, ast.Name)
                    and k.value.id in module_names
                ):
                    styles.add("module constants")
    if any(
        isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "config" for t in n.targets)
        for n in start.body
    ):
        styles.add("class config")
    return styles


def test_corpus_covers_the_launch_styles() -> None:
    counts: dict[str, int] = {}
    for path in CORPUS_FILES:
        for style in _styles(path):
            counts[style] = counts.get(style, 0) + 1
    assert counts.get("autotune", 0) >= 2, counts
    for style in (
        "grid of meta",
        "fixed tuple grid (rows)",
        "literal keywords",
        "module constants",
        "class config",
    ):
        assert counts.get(style, 0) >= 1, f"no corpus file uses {style}: {counts}"


def test_no_two_files_of_the_same_kind() -> None:
    firsts = [(ast.get_docstring(_parse(p)) or "").split(":")[0].strip().lower() for p in CORPUS_FILES]
    assert len(set(firsts)) == len(firsts), firsts


def test_readme_lists_every_file() -> None:
    text = (CORPUS / "README.md").read_text()
    missing = [p.name for p in CORPUS_FILES if p.name not in text]
    assert not missing, f"kernels/corpus/README.md does not list {missing}"
    assert "<!-- sweep-table:start -->" in text and "<!-- sweep-table:end -->" in text


# ---- the sweep script's pure parts (no torch) ----------------------------------------------------------


@pytest.fixture(scope="module")
def sweep() -> Any:
    spec = importlib.util.spec_from_file_location(
        "sweep_corpus_under_test", ROOT / "bench" / "sweep_corpus.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert "torch" not in module.__dict__
    return module


def test_ordered_configs_are_the_whole_space_current_first(sweep: Any) -> None:
    space = {"BLOCK_SIZE": [128, 256, 512], "num_warps": [4, 8]}
    configs = sweep.ordered_configs(space, {"BLOCK_SIZE": 512, "num_warps": 8})
    assert configs[0] == {"BLOCK_SIZE": 512, "num_warps": 8}
    assert sorted(map(str, configs)) == sorted(map(str, sweep.expand(space))) and len(configs) == 6
    assert configs == sweep.ordered_configs(space, {"BLOCK_SIZE": 512, "num_warps": 8})  # deterministic


def test_probe_configs_are_the_extremes(sweep: Any) -> None:
    space = {"BLOCK_M": [16, 32, 64], "BLOCK_N": [32, 64], "num_warps": [4, 8]}
    probes = sweep.probe_configs(space)
    assert probes[0] == {"BLOCK_M": 16, "BLOCK_N": 32, "num_warps": 4}
    assert probes[1] == {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 8}
    assert probes[2] == {"BLOCK_M": 16, "BLOCK_N": 64, "num_warps": 4}


def _synthetic_sweep(path: Path, mode: str = "gpu") -> None:
    key = "kernels/corpus/rmsnorm_rows.py"
    records = [
        {
            "type": "header",
            "mode": mode,
            "gpu": "NVIDIA H200",
            "date": "2026-11-30T00:00:00Z",
            "copy_tbps": 4.27,
        },
        {"type": "file", "file": key, "configs": 3, "roofline": {"bytes": 536903680, "flops": 536870912}},
        {
            "type": "start",
            "file": key,
            "variant": "ModelNew",
            "ms": 0.40,
            "ok": True,
            "launch": {"rmsnorm_fwd_kernel": {"BLOCK_SIZE": 128, "num_warps": 4, "num_stages": 3}},
        },
        {
            "type": "config",
            "file": key,
            "index": 0,
            "config": {"BLOCK_SIZE": 128, "num_warps": 4, "num_stages": 3},
            "ms": 0.41,
            "ok": True,
        },
        {
            "type": "config",
            "file": key,
            "index": 1,
            "config": {"BLOCK_SIZE": 4096, "num_warps": 8, "num_stages": 1},
            "ms": 0.125,
            "ok": True,
        },
        {
            "type": "config",
            "file": key,
            "index": 2,
            "config": {"BLOCK_SIZE": 8192, "num_warps": 2, "num_stages": 1},
            "ms": 0.05,
            "ok": False,
            "error": "incorrect: relative L2 error 1 > 0.01",
        },
        {
            "type": "config",
            "file": key,
            "index": 1,
            "ok": False,
            "error": "worker: stalled",
        },  # a later verdict wins
        {
            "type": "config",
            "file": key,
            "index": 3,
            "config": {"BLOCK_SIZE": 2048, "num_warps": 8, "num_stages": 3},
            "ms": 0.13,
            "ok": True,
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_summary_takes_the_fastest_correct_config(sweep: Any, tmp_path: Path) -> None:
    _synthetic_sweep(tmp_path / "s.jsonl")
    (summary,) = sweep.summarise(sweep.read_jsonl(tmp_path / "s.jsonl"))
    assert summary["best_config"] == {"BLOCK_SIZE": 2048, "num_warps": 8, "num_stages": 3}
    assert summary["best_ms"] == 0.13 and summary["speedup"] == round(0.40 / 0.13, 3)
    assert (summary["measured"], summary["ok"], summary["failed"]) == (4, 2, 2)
    assert summary["best_tbps"] == round(536903680 / 0.13 / 1e9, 3)
    table = sweep.render_table(sweep.read_jsonl(tmp_path / "s.jsonl"))
    assert "rmsnorm_rows.py" in table and "3.08x" in table and "BLOCK_SIZE=2048" in table


def test_fill_rewrites_only_the_best_config_line(sweep: Any, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(CORPUS, tree / "kernels" / "corpus")
    _synthetic_sweep(tmp_path / "s.jsonl")
    assert sweep.main(["--fill", str(tmp_path / "s.jsonl"), "--root", str(tree)]) == 0
    before = (CORPUS / "rmsnorm_rows.py").read_text().splitlines()
    after = (tree / "kernels" / "corpus" / "rmsnorm_rows.py").read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(before) == len(after) and len(changed) == 1, changed
    line = changed[0][1]
    assert line.strip().startswith("config = dict(BLOCK_SIZE=2048, num_warps=8, num_stages=3)  " + MARKER), (
        line
    )
    assert line.endswith("0.1300 ms (H200 2026-11-30)"), line
    # idempotent: filling again from the same sweep changes nothing
    assert sweep.main(["--fill", str(tmp_path / "s.jsonl"), "--root", str(tree)]) == 0
    assert (tree / "kernels" / "corpus" / "rmsnorm_rows.py").read_text().splitlines() == after
    readme = (tree / "kernels" / "corpus" / "README.md").read_text()
    assert "| rmsnorm_rows.py | 0.4000 | 0.1300 | 3.08x |" in readme


def test_fill_refuses_a_sweep_not_measured_on_a_gpu(sweep: Any, tmp_path: Path) -> None:
    _synthetic_sweep(tmp_path / "s.jsonl", mode="interpret")
    with pytest.raises(SystemExit, match="not measured on a GPU"):
        sweep.main(["--fill", str(tmp_path / "s.jsonl"), "--root", str(tmp_path)])


def test_worker_resumes_after_the_config_that_killed_it(sweep: Any) -> None:
    files = ["kernels/corpus/a.py", "kernels/corpus/b.py"]
    assert sweep.next_position(files, {"file": files[0], "stage": "config", "index": 4}) == {
        "file": files[0],
        "index": 5,
        "skip_start": True,
    }
    assert sweep.next_position(files, {"file": files[0], "stage": "start", "index": -1}) == {
        "file": files[0],
        "index": 0,
        "skip_start": True,
    }
    assert sweep.next_position(files, {"file": files[0], "stage": "setup", "index": -1}) == {
        "file": files[1],
        "index": 0,
    }
    assert sweep.next_position(files, {"file": files[1], "stage": "setup", "index": -1}) is None
