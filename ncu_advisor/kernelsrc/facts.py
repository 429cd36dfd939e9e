"""Static analysis of a Triton kernel file: the file is parsed with ``ast``, never imported or run.

For each ``@triton.jit`` function: its ``tl.constexpr`` parameters, its ``@triton.autotune`` configs
(with line numbers), the literal constexpr values and ``num_warps``/``num_stages`` at its launch sites
(``kernel[grid](..., BLOCK_M=128, num_warps=4)``), the number of distinct tensors it loads (``tl.load``
base pointers), whether it uses ``tl.dot``, its expensive operations and its loops. ``facts_for``
turns these into the ``src_*`` names rule expressions read.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ncu_advisor.errors import read_kernel_text
from ncu_advisor.kernelsrc.invariant import find_invariant_loads_in_function
from ncu_advisor.kernelsrc.launches import (
    PASSTHROUGH,
    ClassLaunch,
    Launch,
    class_config_literals,
    class_launches,
    variant_call_values,
    variant_code,
    variant_configs,
)
from ncu_advisor.kernelsrc.launches import (
    launch_sites as _launch_sites,
)
from ncu_advisor.kernelsrc.loops import chunk_loops, size_params
from ncu_advisor.kernelsrc.parse import parse_kernel_source
from ncu_advisor.kernelsrc.tiles import access_tiles

__all__ = [
    "KernelFacts",
    "SourceFacts",
    "analyze_file",
    "analyze_source",
    "class_config_literals",
    "facts_for",
    "variant_code",
]

#: Triton's defaults on NVIDIA GPUs when a launch gives no num_warps / num_stages.
TRITON_DEFAULT_NUM_WARPS = 4
TRITON_DEFAULT_NUM_STAGES = 3

#: Calls counted as expensive (the seeds: "Keep: expensive ops (exp, log, div, sqrt)").
EXPENSIVE_CALLS = frozenset(
    {"exp", "exp2", "log", "log2", "sqrt", "sqrt_rn", "rsqrt", "div_rn", "fdiv", "sin", "cos", "erf", "pow"}
)


@dataclass(frozen=True)
class AutotuneConfig:
    """One ``triton.Config`` of an ``@triton.autotune`` decorator."""

    params: dict[str, int]
    num_warps: int | None
    num_stages: int | None
    lineno: int


@dataclass(frozen=True)
class KernelFacts:
    """What the source says about one ``@triton.jit`` kernel."""

    name: str
    lineno: int
    params: list[str]
    constexpr_params: list[str]
    autotune_configs: list[AutotuneConfig]
    autotune_key: list[str]
    autotune_lineno: int | None
    launch_params: dict[str, int]
    launch_lineno: int | None
    num_distinct_loads: int
    load_bases: list[str]
    uses_dot: bool
    expensive_ops: list[str]
    num_loops: int

    @property
    def block_params(self) -> list[str]:
        """The constexpr parameters that are tile sizes (named ``BLOCK*``)."""
        return [p for p in self.constexpr_params if p.upper().startswith("BLOCK")]

    def candidate_configs(self) -> list[AutotuneConfig]:
        """The configurations the kernel may run with: its autotune configs, else the launch site's."""
        if self.autotune_configs:
            if self.autotune_choice is not None and 0 <= self.autotune_choice < len(self.autotune_configs):
                return [self.autotune_configs[self.autotune_choice]]
            return self.autotune_configs
        params = {k: v for k, v in self.launch_params.items() if k not in ("num_warps", "num_stages")}
        warps = self.launch_params.get("num_warps")
        stages = self.launch_params.get("num_stages")
        if warps is None and "num_warps" in self._non_literal_launch:
            warps = None
        elif warps is None:
            warps = TRITON_DEFAULT_NUM_WARPS
        if stages is None and "num_stages" in self._non_literal_launch:
            stages = None
        elif stages is None:
            stages = TRITON_DEFAULT_NUM_STAGES
        return [
            AutotuneConfig(params=params, num_warps=warps, num_stages=stages, lineno=self.launch_lineno or 0)
        ]

    _non_literal_launch: frozenset[str] = field(default_factory=frozenset)
    #: the index of the autotune config the profiled run chose (``rundir.AUTOTUNE_CHOICE``): the current
    #: config is that one, not the whole list
    autotune_choice: int | None = None
    #: launch keyword -> the launching function's parameter it passes through (``BLOCK_SIZE=BLOCK_SIZE``).
    launch_arguments: dict[str, str] = field(default_factory=dict)
    #: class name -> the values it passes to the launching function: its ``config = dict(...)`` literal (the
    #: convention of kernels/*.py variants) over its call's keywords (``kernelsrc.launches``).
    variant_configs: dict[str, dict[str, int]] = field(default_factory=dict)
    #: (loop line, load line) of each ``tl.load`` repeated by a loop it does not depend on
    #: (``ncu_advisor.kernelsrc.invariant``).
    invariant_loads: tuple[tuple[int, int], ...] = ()
    #: (step parameter, line) of loops walking a range in constexpr-sized chunks (``kernelsrc.loops``).
    chunk_loops: tuple[tuple[str, int], ...] = ()
    #: non-constexpr parameters used as sizes: the only ones an autotune ``key`` should name.
    size_params: tuple[str, ...] = ()
    #: class name -> the launch that class executes (``kernelsrc.launches``).
    class_launches: dict[str, ClassLaunch] = field(default_factory=dict)
    #: the constexprs shaping each load/store/atomic tile (``kernelsrc.tiles``): ``("BLOCK_D", "BLOCK_M")``
    access_tiles: tuple[tuple[str, ...], ...] = ()

    def tile_elements(self, params: dict[str, int]) -> int | None:
        """Elements per program of the largest access tile under ``params`` (constexpr values; names
        without a value count 1); None when no access has a tile shaped by a known value."""
        sizes = [
            int(np.prod([params.get(n, 1) for n in tile]))
            for tile in self.access_tiles
            if any(n in params for n in tile)
        ]
        return max(sizes) if sizes else None

    def launch_params_key(self) -> tuple[tuple[str, int], ...]:
        """The launch values as a hashable key (for caching per-variant results)."""
        return tuple(sorted(self.launch_params.items()))

    def names_variant(self, name: str) -> bool:
        """Whether ``name`` or a ``_``-prefix of it is a variant class of the file (one launching this
        kernel itself or passing a ``config``)."""
        while name:
            if name in self.class_launches or name in self.variant_configs:
                return True
            name = name.rsplit("_", 1)[0] if "_" in name else ""
        return False

    def for_variant(self, variant: str | None) -> KernelFacts:
        """These facts with the launch values a variant class's ``config`` passes to the launcher.

        ``variant`` may carry a suffix (``ModelNew_seed001_small`` finds class ``ModelNew_seed001``) and a
        prefix ending in a dot (a report named ``FILE.VARIANT.ncu-rep``, as in examples/reports/h200-corpus:
        ``rmsnorm_rows.ModelNew_best`` finds class ``ModelNew_best``, not the file's first launch).
        """
        name = variant or ""
        if "." in name and not self.names_variant(name):
            name = name.rsplit(".", 1)[1]
        config = None
        while name and config is None:
            own = self.class_launches.get(name)
            if own is not None:  # the variant class launches the kernel itself: its own launch decides
                return replace(
                    self,
                    launch_params=dict(own.params),
                    launch_lineno=own.lineno,
                    autotune_configs=[] if own.bypasses_autotune else self.autotune_configs,
                    _non_literal_launch=own.non_literal,
                )
            config = self.variant_configs.get(name)
            name = name.rsplit("_", 1)[0] if "_" in name else ""
        if not config or not self.launch_arguments:
            return self
        params = dict(self.launch_params)
        unknown = set(self._non_literal_launch)
        for keyword, argument in self.launch_arguments.items():
            if keyword == PASSTHROUGH:  # ``**config`` passed on: the caller's constexprs and launch options
                named = set(self.launch_arguments.values())
                options = (*self.constexpr_params, "num_warps", "num_stages")
                for key, value in config.items():
                    if key not in named and key in options:
                        params[key] = value
                        unknown.discard(key)
            elif argument in config:
                params[keyword] = config[argument]
                unknown.discard(keyword)
        return replace(self, launch_params=params, _non_literal_launch=frozenset(unknown))


@dataclass(frozen=True)
class SourceFacts:
    """All kernels of one file."""

    path: Path | None
    text: str
    kernels: list[KernelFacts]

    def kernel(self, ncu_name: str) -> KernelFacts | None:
        """The kernel an ncu kernel name refers to: same name, else the longest jit name it starts with."""
        by_name = {k.name: k for k in self.kernels}
        if ncu_name in by_name:
            return by_name[ncu_name]
        matches = [k for k in self.kernels if ncu_name.startswith(k.name + "_")]
        return max(matches, key=lambda k: len(k.name)) if matches else None


def analyze_file(path: Path | str) -> SourceFacts:
    """Parse a kernel file and return its facts.

    Raises:
        KernelFileError: the file cannot be read or is not valid Python.
    """
    text = read_kernel_text(path := Path(path))
    facts = analyze_source(text, str(path))
    return SourceFacts(path=path, text=facts.text, kernels=facts.kernels)


def analyze_source(text: str, filename: str = "<source>") -> SourceFacts:
    """Parse kernel source text and return its facts (never executes it).

    Raises:
        KernelFileError: the text is not valid Python.
    """
    tree = parse_kernel_source(text, filename)
    functions = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and _is_jit(node.decorator_list)
    ]
    names = {f.name for f in functions}
    launches = _launch_sites(tree, names)
    configs = variant_configs(tree)
    per_class = class_launches(tree, names, configs)
    # what each class passes to the launching function (its call's keywords over the function's defaults),
    # under its own config literal
    calls = variant_call_values(tree)
    passed = {c: {**calls.get(c, {}), **configs.get(c, {})} for c in set(calls) | set(configs)}
    kernels = [
        replace(
            _kernel_facts(function, launches.get(function.name)),
            variant_configs=passed,
            class_launches=per_class.get(function.name, {}),
        )
        for function in functions
    ]
    kernels.sort(key=lambda k: k.lineno)
    return SourceFacts(path=None, text=text, kernels=kernels)


def facts_for(kernel: KernelFacts) -> dict[str, float]:
    """The ``src_*`` values rule expressions read for one kernel (NaN-free; unknown ones left out)."""
    configs = kernel.candidate_configs()
    facts: dict[str, float] = {
        "src_num_loads": float(kernel.num_distinct_loads),
        "src_uses_dot": 1.0 if kernel.uses_dot else 0.0,
        "src_expensive_ops": float(len(kernel.expensive_ops)),
        "src_num_loops": float(kernel.num_loops),
        "src_num_configs": float(len(kernel.autotune_configs)),
        "src_loop_invariant_loads": float(len(kernel.invariant_loads)),
        "src_invariant_loop_line": float(kernel.invariant_loads[0][0]) if kernel.invariant_loads else 0.0,
        "src_invariant_load_line": float(kernel.invariant_loads[0][1]) if kernel.invariant_loads else 0.0,
    }
    warps = [c.num_warps for c in configs if c.num_warps is not None]
    stages = [c.num_stages for c in configs if c.num_stages is not None]
    if warps and len(warps) == len(configs):
        facts["src_num_warps"] = float(max(warps))
        facts["src_num_warps_min"] = float(min(warps))
    if stages and len(stages) == len(configs):
        facts["src_num_stages"] = float(max(stages))
        facts["src_num_stages_min"] = float(min(stages))
    facts["src_has_baseline"] = float(any(c.num_warps == 4 and c.num_stages == 2 for c in configs))
    block_values: list[int] = []
    for param in kernel.block_params:
        values = [c.params[param] for c in configs if param in c.params]
        if values and len(values) == len(configs):
            facts[f"src_{param.lower()}"] = float(max(values))
            block_values.extend(values)
    if block_values:
        facts["src_block_max"] = float(max(block_values))
        facts["src_block_min"] = float(min(block_values))
    tiles = [kernel.tile_elements(c.params) for c in configs]
    if tiles and all(t is not None for t in tiles):
        facts["src_tile_elements"] = float(max(t for t in tiles if t is not None))
    elif block_values:  # no tile the source shapes with known values: the largest BLOCK stands in
        facts["src_tile_elements"] = float(max(block_values))
    for param, line in kernel.chunk_loops[:1]:
        values = [c.params[param] for c in configs if param in c.params]
        if values and len(values) == len(configs):
            facts["src_chunk_block"] = float(max(values))
            facts["src_chunk_loop_line"] = float(line)
            # The other tile sizes: a 2-D program reads (other tiles) x (loop extent) elements.
            others = [facts.get(f"src_{p.lower()}", 1.0) for p in kernel.block_params if p != param]
            facts["src_chunk_other_blocks"] = float(np.prod(others)) if others else 1.0
    return facts


# ------------------------------------------------------------------------------------------ helpers
def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _is_jit(decorators: list[ast.expr]) -> bool:
    return any(_dotted(d).split(".")[-1] == "jit" for d in decorators)


def _int_literal(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return int(node.value)
    return None


def _is_constexpr(annotation: ast.expr | None) -> bool:
    return annotation is not None and _dotted(annotation).split(".")[-1] == "constexpr"


def _autotune(function: ast.FunctionDef) -> tuple[list[AutotuneConfig], list[str], int | None]:
    for decorator in function.decorator_list:
        if not (isinstance(decorator, ast.Call) and _dotted(decorator.func).split(".")[-1] == "autotune"):
            continue
        configs: list[AutotuneConfig] = []
        key: list[str] = []
        for keyword in decorator.keywords:
            if keyword.arg == "configs" and isinstance(keyword.value, (ast.List, ast.Tuple)):
                for element in keyword.value.elts:
                    config = _config(element)
                    if config is not None:
                        configs.append(config)
            if keyword.arg == "key" and isinstance(keyword.value, (ast.List, ast.Tuple)):
                key = [
                    e.value
                    for e in keyword.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
        return configs, key, decorator.lineno
    return [], [], None


def _config(node: ast.AST) -> AutotuneConfig | None:
    if not (isinstance(node, ast.Call) and _dotted(node.func).split(".")[-1] == "Config"):
        return None
    params: dict[str, int] = {}
    if node.args and isinstance(node.args[0], ast.Dict):
        for key, value in zip(node.args[0].keys, node.args[0].values, strict=True):
            literal = _int_literal(value)
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and literal is not None:
                params[key.value] = literal
    warps = stages = None
    for keyword in node.keywords:
        if keyword.arg == "num_warps":
            warps = _int_literal(keyword.value)
        elif keyword.arg == "num_stages":
            stages = _int_literal(keyword.value)
    return AutotuneConfig(
        params=params,
        num_warps=warps if warps is not None else TRITON_DEFAULT_NUM_WARPS,
        num_stages=stages if stages is not None else TRITON_DEFAULT_NUM_STAGES,
        lineno=node.lineno,
    )


def _assignments(function: ast.FunctionDef) -> dict[str, ast.expr]:
    """Last simple assignment ``name = expr`` of each local name (good enough to follow pointer math)."""
    assigned: dict[str, ast.expr] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigned.setdefault(node.targets[0].id, node.value)
    return assigned


def _pointer_base(node: ast.expr, assigned: dict[str, ast.expr], params: set[str], depth: int = 0) -> str:
    """Follow the left-most operand of pointer arithmetic back to a kernel parameter."""
    if depth > 20:
        return ast.dump(node)[:40]
    if isinstance(node, ast.BinOp):
        left = _pointer_base(node.left, assigned, params, depth + 1)
        if left in params:
            return left
        right = _pointer_base(node.right, assigned, params, depth + 1)
        return right if right in params else left
    if isinstance(node, ast.Name):
        if node.id in params:
            return node.id
        if node.id in assigned:
            return _pointer_base(assigned[node.id], assigned, params, depth + 1)
        return node.id
    if isinstance(node, ast.Call) and _dotted(node.func).split(".")[-1] == "make_block_ptr":
        base = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "base"), None)
        if base is not None:
            return _pointer_base(base, assigned, params, depth + 1)
    if isinstance(node, ast.Subscript):
        return _pointer_base(node.value, assigned, params, depth + 1)
    return ast.unparse(node)[:40]


def _kernel_facts(function: ast.FunctionDef, launch: Launch | None) -> KernelFacts:
    arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
    params = [a.arg for a in arguments]
    constexpr = [a.arg for a in arguments if _is_constexpr(a.annotation)]
    configs, key, autotune_line = _autotune(function)
    assigned = _assignments(function)
    pointer_params = set(params) - set(constexpr)
    bases: list[str] = []
    uses_dot = False
    expensive: set[str] = set()
    loops = 0
    for node in ast.walk(function):
        if isinstance(node, (ast.For, ast.While)):
            loops += 1
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            expensive.add("/")
        elif isinstance(node, ast.Call):
            called = _dotted(node.func)
            last = called.split(".")[-1]
            if last == "load" and called.split(".")[0] in ("tl", "triton"):
                pointer = (
                    node.args[0]
                    if node.args
                    else next((k.value for k in node.keywords if k.arg == "pointer"), None)
                )
                if pointer is not None:
                    base = _pointer_base(pointer, assigned, pointer_params)
                    if base not in bases:
                        bases.append(base)
            elif last == "dot" and called.split(".")[0] in ("tl", "triton"):
                uses_dot = True
            elif last in EXPENSIVE_CALLS and called.split(".")[0] in ("tl", "triton", "libdevice", "math"):
                expensive.add(f"tl.{last}" if called.startswith("tl.") else called)
    return KernelFacts(
        name=function.name,
        lineno=function.lineno,
        params=params,
        constexpr_params=constexpr,
        autotune_configs=configs,
        autotune_key=key,
        autotune_lineno=autotune_line,
        launch_params=dict(launch.params) if launch else {},
        launch_lineno=launch.lineno if launch else None,
        num_distinct_loads=len(bases),
        load_bases=bases,
        uses_dot=uses_dot,
        expensive_ops=sorted(expensive),
        num_loops=loops,
        _non_literal_launch=frozenset(launch.non_literal) if launch else frozenset(),
        launch_arguments=dict(launch.arguments) if launch else {},
        invariant_loads=_invariant_loads(function),
        chunk_loops=tuple(chunk_loops(function, constexpr)),
        size_params=tuple(size_params(function, params, constexpr)),
        access_tiles=tuple(access_tiles(function, constexpr)),
    )


def _invariant_loads(function: ast.FunctionDef) -> tuple[tuple[int, int], ...]:
    return tuple((f.loop_line, f.load_line) for f in find_invariant_loads_in_function(function))
