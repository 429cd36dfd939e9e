"""Exhaustive in-process config sweep of the kernel corpus (``kernels/corpus/``) and optionally the zoo: the
ground truth for the advice benchmark (issue 13) and the tune benchmark (issue 14).

Usage:
    python bench/sweep_corpus.py --out OUT.jsonl [--files F ...] [--zoo] [--deadline-s 400] [--budget-s 25]
                                 [--jobs 12] [--warmup-ms 10] [--rep-ms 40]          # GPU machine
    python bench/sweep_corpus.py --interpret-smoke --out OUT.jsonl [--files F ...]  # CPU: interpreter
    python bench/sweep_corpus.py --compile-only --out OUT.jsonl [--ptxas]           # CPU: compile all
    python bench/sweep_corpus.py --check FILE                                       # CPU: JSON out
    python bench/sweep_corpus.py --fill SWEEP.jsonl [--files F ...]                 # rewrite ModelNew_best
    python bench/sweep_corpus.py --table SWEEP.jsonl                                # start / best per kernel

The convention it relies on (``kernels/corpus/README.md``): each corpus file has ``Model``, a mistuned start
``ModelNew`` (any launch style), ``ModelNew_best`` whose launch configuration is the class attribute
``config = dict(...)`` read as ``self.config`` at every call, ``SWEEP_SPACE`` (the values of each swept
constexpr and launch option, whose keys are exactly ``ModelNew_best.config``'s), ``RTOL`` (relative L2 error
allowed against the reference in float64), ``INTERPRET_SHAPES`` (small values for its size constants) and
``roofline()`` (DRAM bytes and FLOPs of one call). A config is set on a variant by assigning the instance
attribute ``model.config``. The zoo files (``--zoo``) are swept through their tuned ``ModelNew``'s ``config``
over the spaces in ``ZOO`` below, starting from their mistuned variant.

How one kernel file is swept (on the GPU): model, inputs and the float64 reference are built once on the GPU;
the start variant runs as it is (its executed launch keywords are recorded from Triton's ``run``, defaults
filled in: num_warps 4, num_stages 3); then every config of the space, in a fixed shuffled order after the
current one, is set on the sweep variant, run once with its output buffers poisoned (``torch.empty`` fills
NaN, or -77 for integers), checked against the reference, and timed with ``triton.testing.do_bench``
(median). Each result is one JSON line of ``--out`` as soon as it is measured.

Robustness: the sweep runs in a worker process; this process only watches it. A config that raises
(``OutOfResources`` for too much shared memory, a compile error) is recorded and the sweep goes on. A config
that kills the worker or leaves the CUDA context broken, or stalls past ``--config-timeout-s``, is recorded
as failed with the reason, and a new worker resumes after it. ``--budget-s`` caps each file, ``--deadline-s``
the whole run; what they cut is counted as skipped, never silently dropped.

Compile ahead: Triton compiles each config on first launch (0.2-1.5 s each, more than its timing). The worker
captures the arguments of the first compile of each kernel (signature, specialisation, options) and hands
every remaining config to a pool of ``--jobs`` processes that compile it with ``triton.compile`` into
Triton's on-disk cache, so the worker's own first launch of a config mostly loads a cached binary. The
worker waits only for a config the pool has already started; one still queued is cancelled and compiled by
the worker itself. Each record says what the first call cost (``first_call_s``), whether the config was
compiled ahead and the pool's seconds for it; with ``--jobs 0`` the worker compiles alone.
``--compile-only`` runs the same pipeline on a CPU with a stand-in driver (target sm_90a): every config is
compiled (never launched), which finds compile errors and shared-memory overflows before GPU time is spent
and shows whether the pool's binaries are the ones the JIT looks up. Measured there (2 CPUs, 864 configs):
every pool binary was the one the JIT looked up (first call 1-2 ms instead of 0.4-2 s), but 2 pool processes
on 2 CPUs made the run slower (63 s against 40 s for 60 configs), hence no pool below 8 CPUs; on the GPU
machine (16 CPUs) the default is 8.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib.util
import itertools
import json
import math
import os
import platform
import random
import re
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "kernels" / "corpus"
README = CORPUS / "README.md"
MARKER = "# FILLED FROM SWEEP"
CUDA_DEFAULTS = {"num_warps": 4, "num_stages": 3}
LAUNCH_OPTIONS = ("num_warps", "num_stages")
MAX_SHARED_SM90 = 232448  # bytes of shared memory one block may opt in to on the H100/H200 (227 KB)
CRASH_ENV = "SWEEP_CORPUS_CRASH_AT"  # tests: "file_stem:index" makes the worker die at that config
STICKY_CUDA = (
    "illegal memory access",
    "unspecified launch failure",
    "misaligned address",
    "an illegal instruction",
    "CUDA error: device-side assert",
    "context is destroyed",
)


@dataclass
class Case:
    """One file of the sweep: which variant is the start, which one the sweep sets configs on."""

    file: str  # path relative to the repository root
    start: str
    sweep: str
    space: dict[str, list[Any]]
    rtol: float
    interpret_shapes: dict[str, int] = field(default_factory=dict)


# The zoo's kernels, swept through their tuned variant's config, from their mistuned start. Their wrappers
# accept only these keys (softmax's BLOCK_SIZE is the row length; grid_size None is one program per row).
ZOO: dict[str, dict[str, Any]] = {
    "kernels/elementwise.py": dict(
        start="ModelNew_block64_w8",
        sweep="ModelNew",
        rtol=1e-5,
        space={"BLOCK_SIZE": [64, 128, 256, 512, 1024, 2048, 4096, 8192], "num_warps": [1, 2, 4, 8, 16]},
        interpret_shapes={"N_ELEMENTS": 3001},
    ),
    "kernels/softmax.py": dict(
        start="ModelNew_w1",
        sweep="ModelNew",
        rtol=1e-5,
        space={"grid_size": [264, 1056, 4224, None], "num_warps": [1, 2, 4, 8, 16, 32]},
        interpret_shapes={"N_ROWS": 37, "N_COLS": 100, "TAIL_GRID": 5},
    ),
    "kernels/spill.py": dict(
        start="ModelNew_block8192_w1",
        sweep="ModelNew",
        rtol=1e-5,
        space={"BLOCK_SIZE": [256, 512, 1024, 2048, 4096, 8192], "num_warps": [1, 2, 4, 8, 16]},
        interpret_shapes={"N_ELEMENTS": 2500},
    ),
    "kernels/matmul_epilogue.py": dict(
        start="ModelNew_tile16_w1_s1",
        sweep="ModelNew",
        rtol=5e-3,
        space={
            "BLOCK_M": [64, 128, 256],
            "BLOCK_N": [64, 128, 256],
            "BLOCK_K": [32, 64],
            "GROUP_M": [8],
            "num_warps": [4, 8],
            "num_stages": [3, 4],
        },
        interpret_shapes={"M_ROWS": 70, "IN_FEATURES": 48, "OUT_FEATURES": 40},
    ),
}


# --------------------------------------------------------------------------------------------------------
# Files, modules, cases


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.py"))


def rel(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def selected_files(args: argparse.Namespace) -> list[Path]:
    if args.files:
        return [Path(f).resolve() for f in args.files]
    files = corpus_files()
    if getattr(args, "zoo", False):
        files += [ROOT / f for f in ZOO]
    return files


def module_name(path: Path) -> str:
    return "sweep_" + re.sub(r"\W", "_", rel(path).removesuffix(".py"))


def load_module(path: Path) -> Any:
    """Import a kernel file under a name derived from its path (the same in every process)."""
    name = module_name(path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def case_for(path: Path, module: Any) -> Case:
    key = rel(path)
    if key in ZOO:
        z = ZOO[key]
        return Case(key, z["start"], z["sweep"], z["space"], z["rtol"], z["interpret_shapes"])
    for name in ("SWEEP_SPACE", "RTOL", "ModelNew", "ModelNew_best"):
        if not hasattr(module, name):
            raise AttributeError(f"{key} has no {name}")
    return Case(
        key,
        "ModelNew",
        "ModelNew_best",
        {k: list(v) for k, v in module.SWEEP_SPACE.items()},
        float(module.RTOL),
        dict(getattr(module, "INTERPRET_SHAPES", {})),
    )


def apply_shapes(module: Any, shapes: dict[str, int]) -> None:
    for name, value in shapes.items():
        if not hasattr(module, name):
            raise AttributeError(f"{module.__name__} has no size constant {name}")
        setattr(module, name, value)


def expand(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(space[k] for k in keys))]


def ordered_configs(space: dict[str, list[Any]], current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every config of the space: the variant's current one first (when in the space), the rest in a fixed
    shuffled order, so a run cut short by its budget has still sampled the whole space evenly."""
    configs = expand(space)
    random.Random(0).shuffle(configs)
    if current is not None:
        head = [c for c in configs if c == {k: current.get(k) for k in space}]
        configs = head + [c for c in configs if c not in head]
    return configs


def probe_configs(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The extremes of a space (all smallest, all largest, alternating): what the interpreter checks."""

    def pick(i: int, j: int) -> Any:
        values = list(space.values())[i]
        return values[0] if j == 0 else values[-1]

    keys = list(space)
    lo = {k: pick(i, 0) for i, k in enumerate(keys)}
    hi = {k: pick(i, 1) for i, k in enumerate(keys)}
    mixed = {k: pick(i, i % 2) for i, k in enumerate(keys)}
    out: list[dict[str, Any]] = []
    for c in (lo, hi, mixed):
        if c not in out:
            out.append(c)
    return out


# --------------------------------------------------------------------------------------------------------
# Triton and torch plumbing (imported lazily: --fill and --table need neither)


def wall_bench(fn: Callable[[], Any], quantiles: Any = None, **_: Any) -> Any:
    """A benchmarker for machines without a GPU (autotune under the interpreter): one timed call."""
    t0 = time.perf_counter()
    fn()
    ms = (time.perf_counter() - t0) * 1e3
    return [ms] * len(quantiles) if quantiles else ms


def install_stand_in_driver(compile_target: bool) -> None:
    """Make Triton usable without a GPU: a benchmarker for autotune under the interpreter, and (with
    ``compile_target``) a device, stream and sm_90a target so the JIT compiles for the H100/H200."""
    import torch
    from triton.backends.compiler import GPUTarget
    from triton.runtime.driver import driver

    class StandInDriver:
        def get_benchmarker(self) -> Callable[..., Any]:
            return wall_bench

        def get_current_device(self) -> int:
            return 0

        def get_current_stream(self, device: int | None = None) -> int:
            return 0

        def get_current_target(self) -> Any:
            return GPUTarget("cuda", 90, 32)

        def get_active_torch_device(self) -> Any:
            return torch.device("cpu")

    if compile_target or os.environ.get("TRITON_INTERPRET") == "1":
        driver.set_active(StandInDriver())
    if os.environ.get("TRITON_INTERPRET") == "1":
        patch_interpreter_bf16()


def patch_interpreter_bf16() -> None:
    """Triton 3.6's interpreter stores bf16 as raw uint16 bits; ``tl.dot`` then multiplies the bit patterns
    and casts between bf16 and anything but fp32 reinterpret integers as bits. Route both through fp32 (what
    the GPU computes: bf16 products accumulate in fp32). Only the CPU checks use the interpreter."""
    import numpy as np
    import triton.language as tl
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    if getattr(builder, "_sweep_bf16_patched", False):
        return
    cast_impl, create_dot = builder.cast_impl, builder.create_dot

    def widen(handle: Any) -> Any:
        if handle.dtype.scalar == tl.bfloat16:
            data = (handle.data.astype(np.uint32) << 16).view(np.float32)
            return interpreter.TensorHandle(data, tl.float32)
        return handle

    def patched_cast(self: Any, src: Any, dst_type: Any) -> Any:
        src_ty, dst_ty = src.dtype.scalar, dst_type.scalar
        if src_ty == tl.bfloat16 and dst_ty not in (tl.bfloat16, tl.float32):
            return cast_impl(self, widen(src), dst_type)
        if dst_ty == tl.bfloat16 and src_ty not in (tl.bfloat16, tl.float32):
            as_fp32 = interpreter.TensorHandle(src.data.astype(np.float32), tl.float32)
            return cast_impl(self, as_fp32, dst_type)
        return cast_impl(self, src, dst_type)

    def patched_dot(self: Any, a: Any, b: Any, d: Any, *args: Any) -> Any:
        return create_dot(self, widen(a), widen(b), d, *args)

    builder.cast_impl = patched_cast
    builder.create_dot = patched_dot
    builder._sweep_bf16_patched = True


def _jit_classes() -> list[type]:
    from triton.runtime.jit import JITFunction

    classes: list[type] = [JITFunction]
    try:
        from triton.runtime.interpreter import InterpretedFunction

        if "run" in InterpretedFunction.__dict__ and InterpretedFunction not in classes:
            classes.append(InterpretedFunction)
    except ImportError:
        pass
    return classes


@contextlib.contextmanager
def launch_recorder(force_warmup: bool = False) -> Iterator[list[tuple[str, dict[str, Any], Any]]]:
    """Record every kernel launch (kernel name, keyword arguments, returned compiled kernel). With
    ``force_warmup`` nothing is launched: each launch only compiles (``--compile-only``)."""
    launches: list[tuple[str, dict[str, Any], Any]] = []
    saved = {}
    for cls in _jit_classes():
        original = cls.__dict__["run"]
        saved[cls] = original

        def run(
            self: Any, *args: Any, grid: Any, warmup: Any, _original: Any = original, **kwargs: Any
        ) -> Any:
            result = _original(self, *args, grid=grid, warmup=bool(warmup or force_warmup), **kwargs)
            launches.append((self.fn.__name__, dict(kwargs), result))
            return result

        cls.run = run  # type: ignore[attr-defined]
    try:
        yield launches
    finally:
        for cls, original in saved.items():
            cls.run = original  # type: ignore[attr-defined]


@contextlib.contextmanager
def compile_capture(captured: dict[str, dict[str, Any]]) -> Iterator[None]:
    """Keep the arguments of the first JIT compile of each kernel (what the ahead-of-time pool needs)."""
    from triton.runtime.jit import JITFunction

    original = JITFunction.__dict__.get("_do_compile")
    if original is None:
        yield
        return

    def _do_compile(
        self: Any,
        key: Any,
        signature: Any,
        device: Any,
        constexprs: Any,
        options: Any,
        attrs: Any,
        warmup: Any,
    ) -> Any:
        name = self.fn.__name__
        if name not in captured:
            try:
                captured[name] = {
                    "signature": dict(signature),
                    "constexprs": dict(constexprs),
                    "attrs": attrs,
                    "options": dict(options.__dict__),
                    "target": self.device_caches[device][2],
                    "params": [p.name for p in self.params],
                }
            except Exception:  # capture is an optimisation; never let it break the launch
                pass
        return original(self, key, signature, device, constexprs, options, attrs, warmup)

    JITFunction._do_compile = _do_compile  # type: ignore[method-assign]
    try:
        yield
    finally:
        JITFunction._do_compile = original  # type: ignore[method-assign]


@contextlib.contextmanager
def poisoned_allocations() -> Iterator[None]:
    """Fill every tensor the variant allocates with ``torch.empty*`` (NaN; -77 or 77 for integers), so an
    output element the kernel never writes cannot pass the check by holding an earlier config's result."""
    import torch

    def poison(t: Any) -> Any:
        if isinstance(t, torch.Tensor) and t.numel():
            if t.is_floating_point():
                t.fill_(float("nan"))
            elif t.dtype == torch.bool:
                t.fill_(True)
            else:
                t.fill_(-77 if t.dtype.is_signed else 77)
        return t

    saved = (torch.empty, torch.empty_like, torch.empty_strided, torch.Tensor.new_empty)
    torch.empty = lambda *a, **k: poison(saved[0](*a, **k))  # type: ignore[assignment]
    torch.empty_like = lambda *a, **k: poison(saved[1](*a, **k))  # type: ignore[assignment]
    torch.empty_strided = lambda *a, **k: poison(saved[2](*a, **k))  # type: ignore[assignment]
    torch.Tensor.new_empty = lambda self, *a, **k: poison(saved[3](self, *a, **k))  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.empty, torch.empty_like, torch.empty_strided = saved[0], saved[1], saved[2]  # type: ignore[misc]
        torch.Tensor.new_empty = saved[3]  # type: ignore[method-assign]


def as_tuple(out: Any) -> tuple[Any, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def relative_error(out: Any, expected: tuple[Any, ...]) -> float:
    """The largest relative L2 error over the outputs (``inf`` for a non-finite output)."""
    import torch

    outs = as_tuple(out)
    if len(outs) != len(expected):
        raise ValueError(f"{len(outs)} outputs, the reference has {len(expected)}")
    worst = 0.0
    for o, e in zip(outs, expected, strict=True):
        if tuple(o.shape) != tuple(e.shape):
            raise ValueError(f"output shape {tuple(o.shape)} != reference {tuple(e.shape)}")
        o64, e64 = o.double(), e.double()
        if not bool(torch.isfinite(o64).all()):
            return math.inf
        denom = float(e64.norm()) or 1.0
        worst = max(worst, float((o64 - e64).norm()) / denom)
    return worst


def copy_state(reference: Any, model: Any) -> list[str]:
    """Give ``model`` the reference's parameters and buffers of the same name and shape."""
    import torch

    ref = reference.state_dict()
    copied = []
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in ref and ref[name].shape == tensor.shape:
                tensor.copy_(ref[name])
                copied.append(name)
    return copied


def build(module: Any, device: str) -> tuple[list[Any], Any, list[Any]]:
    """The reference model (seed 0) and fresh inputs (seed 1), created on ``device``."""
    import torch

    init = list(module.get_init_inputs())
    torch.manual_seed(0)
    with torch.device(device):
        reference = module.Model(*init)
    reference = reference.to(device).eval()
    torch.manual_seed(1)
    with torch.device(device):
        inputs = [t.to(device) if isinstance(t, torch.Tensor) else t for t in module.get_inputs()]
    return init, reference, inputs


def reference64(reference: Any, inputs: list[Any]) -> tuple[Any, ...]:
    import torch

    ref64 = copy.deepcopy(reference).double()
    inputs64 = [t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in inputs]
    with torch.no_grad():
        out = tuple(t.detach() for t in as_tuple(ref64(*inputs64)))
    del ref64, inputs64
    return out


def instantiate(module: Any, name: str, init: list[Any], reference: Any, device: str) -> Any:
    import torch

    torch.manual_seed(2)
    with torch.device(device):
        model = getattr(module, name)(*init)
    model = model.to(device).eval()
    copy_state(reference, model)
    return model


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:400]


def launched_config(launches: list[tuple[str, dict[str, Any], Any]]) -> dict[str, dict[str, Any]]:
    """Per kernel: the int/bool/None keywords of its last launch, CUDA's defaults filled in."""
    out: dict[str, dict[str, Any]] = {}
    for name, kwargs, _ in launches:
        cfg = {k: v for k, v in kwargs.items() if v is None or isinstance(v, (bool, int))}
        cfg = {k: v for k, v in cfg.items() if not (k in ("num_ctas", "maxnreg") and v in (None, 1))}
        for option, default in CUDA_DEFAULTS.items():
            cfg.setdefault(option, default)
        out[name] = cfg
    return out


def clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------------
# Measuring one variant or config


@dataclass
class Env:
    """What a measurement needs from the mode it runs in."""

    mode: str  # "gpu", "interpret", "compile"
    device: str
    timer: Callable[[Callable[[], Any]], float] | None
    ptxas: bool = False

    def synchronize(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()


def measure(
    env: Env,
    model: Any,
    inputs: list[Any],
    expected: tuple[Any, ...] | None,
    rtol: float,
    record_launch: bool = False,
) -> dict[str, Any]:
    """Run once with poisoned outputs, check against the reference, then time (GPU) or only compile."""
    import torch

    record: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        with torch.no_grad(), launch_recorder(force_warmup=env.mode == "compile") as launches:
            if env.mode == "compile":
                model(*inputs)
            else:
                with poisoned_allocations():
                    out = model(*inputs)
        env.synchronize()
        record["first_call_s"] = round(time.perf_counter() - t0, 4)
        if record_launch:
            record["launch"] = launched_config(launches)
        if env.mode == "compile":
            record.update(compiled_facts(launches, env.ptxas))
            record["ok"] = True
            return record
        assert expected is not None
        err = relative_error(out, expected)
        del out
        record["rel_err"] = err
        record["ok"] = err <= rtol
        if not record["ok"]:
            record["error"] = f"incorrect: relative L2 error {err:.3g} > {rtol:g}"
            return record
        if env.timer is not None:
            with torch.no_grad():
                record["ms"] = float(env.timer(lambda: model(*inputs)))
    except Exception as exc:  # a failing config is a result, not the end of the sweep
        record["ok"] = False
        record["error"] = f"{type(exc).__name__}: {first_line(exc)}"
    return record


def compiled_facts(launches: list[tuple[str, dict[str, Any], Any]], ptxas: bool) -> dict[str, Any]:
    """Shared memory (and with ``ptxas``, registers and spills) of the kernels a call compiled."""
    facts: dict[str, Any] = {}
    for name, _, kernel in launches:
        kernel = kernel.result() if hasattr(kernel, "result") else kernel
        metadata = getattr(kernel, "metadata", None)
        if metadata is None:
            continue
        shared = int(getattr(metadata, "shared", 0))
        entry: dict[str, Any] = {"shared": shared, "fits_sm90": shared <= MAX_SHARED_SM90}
        if ptxas:
            entry.update(ptxas_figures(kernel.asm["ptx"]))
        facts.setdefault("kernels", {})[name] = entry
    return facts


def ptxas_figures(ptx: str) -> dict[str, int]:
    import tempfile

    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.ptx"
        src.write_text(ptx)
        proc = subprocess.run(
            [str(tool), "-v", "--gpu-name", "sm_90a", str(src), "-o", str(Path(tmp) / "k.o")],
            capture_output=True,
            text=True,
        )
    log = proc.stdout + proc.stderr
    regs = re.search(r"Used (\d+) registers", log)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    return {
        "regs": int(regs.group(1)) if regs else -1,
        "spill_bytes": int(spills.group(1)) + int(spills.group(2)) if spills else -1,
    }


# --------------------------------------------------------------------------------------------------------
# Compile-ahead pool


_POOL_MODULES: dict[str, Any] = {}


def find_jit(module: Any, name: str) -> Any:
    from triton.runtime.jit import JITFunction

    for value in vars(module).values():
        fn = value
        for _ in range(3):
            if isinstance(fn, JITFunction) or fn is None:
                break
            fn = getattr(fn, "fn", None)
        if isinstance(fn, JITFunction) and fn.fn.__name__ == name:
            return fn
    raise LookupError(f"no @triton.jit kernel {name} in {module.__name__}")


def precompile(job: dict[str, Any]) -> float:
    """Pool worker: compile one kernel config into Triton's cache (no GPU needed). Returns seconds."""
    import triton
    from triton.compiler import ASTSource

    path = job["path"]
    if path not in _POOL_MODULES:
        _POOL_MODULES[path] = load_module(Path(path))
    fn = find_jit(_POOL_MODULES[path], job["kernel"])
    t0 = time.perf_counter()
    source = ASTSource(fn=fn, signature=job["signature"], constexprs=job["constexprs"], attrs=job["attrs"])
    triton.compile(source, target=job["target"], options=job["options"])
    return time.perf_counter() - t0


def compile_jobs(
    path: Path, captured: dict[str, dict[str, Any]], config: dict[str, Any]
) -> list[dict[str, Any]]:
    """One compile per captured kernel for ``config``: constexprs and options of the same name replaced."""
    jobs = []
    for kernel, cap in captured.items():
        constexprs = {}
        for where, value in cap["constexprs"].items():
            name = cap["params"][where[0]] if len(where) == 1 else None
            constexprs[where] = config[name] if name in config else value
        options = dict(cap["options"])
        for option in LAUNCH_OPTIONS:
            if option in config:
                options[option] = config[option]
        jobs.append(
            {
                "path": str(path),
                "kernel": kernel,
                "signature": cap["signature"],
                "constexprs": constexprs,
                "attrs": cap["attrs"],
                "options": options,
                "target": cap["target"],
            }
        )
    return jobs


def _lower_priority() -> None:
    """Pool workers yield the CPU to the worker that launches and times kernels (launch overhead counts
    in a short kernel's time when the CPU falls behind the GPU)."""
    with contextlib.suppress(OSError):
        os.nice(10)


class CompilePool:
    """Processes compiling configs ahead of the worker; a failure here only costs the worker a compile."""

    def __init__(self, jobs: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.executor = ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
        )
        self.futures: dict[int, list[Any]] = {}

    def submit(
        self, path: Path, captured: dict[str, dict[str, Any]], configs: list[tuple[int, dict[str, Any]]]
    ) -> None:
        for index, config in configs:
            self.futures[index] = [
                self.executor.submit(precompile, job) for job in compile_jobs(path, captured, config)
            ]

    def wait(self, index: int, timeout: float = 45.0) -> tuple[bool | None, float | None]:
        """Whether config ``index`` was compiled ahead (None: never submitted) and the pool's compile seconds.
        A compile the pool has not started yet, or that failed or runs past ``timeout``, is left to the
        worker's own launch (never slower than without the pool)."""
        futures = self.futures.pop(index, None)
        if not futures:
            return None, None
        if not all(f.running() or f.done() for f in futures):  # the pool is behind: the worker compiles it
            for f in futures:
                f.cancel()
            return False, None
        ok, seconds = True, 0.0
        for f in futures:
            try:
                seconds += float(f.result(timeout=timeout))
            except Exception:
                ok = False
        return ok, round(seconds, 3)

    def clear(self) -> None:
        for futures in self.futures.values():
            for f in futures:
                f.cancel()
        self.futures.clear()

    def close(self) -> None:
        self.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------------------------------------
# The worker: sweeps files in this process, one JSON line per result


class Writer:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(clean(record)) + "\n")


def write_progress(path: Path | None, **state: Any) -> None:
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**state, "t": time.time()}))
    tmp.replace(path)


def gpu_header() -> dict[str, Any]:
    import torch
    import triton

    header: dict[str, Any] = {
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        header.update(
            gpu=props.name,
            sms=props.multi_processor_count,
            cc=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
        )
        import triton.testing

        src = torch.empty(2**28, device="cuda", dtype=torch.float32)  # 1 GiB
        dst = torch.empty_like(src)
        ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=10, rep=50, return_mode="median")
        header["copy_tbps"] = round(2 * src.numel() * 4 / ms / 1e9, 3)  # bytes read + written
        del src, dst
    return header


def make_env(args: argparse.Namespace) -> Env:
    if args.mode == "interpret":
        return Env("interpret", "cpu", timer=lambda fn: wall_bench(fn))
    if args.mode == "compile":
        return Env("compile", "cpu", timer=None, ptxas=args.ptxas)
    import triton.testing

    def timer(fn: Callable[[], Any]) -> float:
        return float(
            triton.testing.do_bench(fn, warmup=args.warmup_ms, rep=args.rep_ms, return_mode="median")
        )

    return Env("gpu", "cuda", timer=timer)


def sticky_cuda_error(error: str | None) -> bool:
    if not error:
        return False
    if any(s in error for s in STICKY_CUDA):
        return True
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except Exception:
        return True
    return False


def crash_requested(path: Path, index: int) -> bool:
    spec = os.environ.get(CRASH_ENV, "")
    return bool(spec) and spec == f"{path.stem}:{index}"


def sweep_file(
    path: Path,
    args: argparse.Namespace,
    env: Env,
    writer: Writer,
    pool: CompilePool | None,
    resume: dict[str, Any] | None,
) -> None:
    """Sweep one kernel file: start variant, then every config of the sweep variant."""
    import torch

    t_file = time.perf_counter()
    key = rel(path)
    write_progress(args.progress, file=key, stage="setup", index=-1)
    module = load_module(path)
    case = case_for(path, module)
    if args.mode == "interpret" or (args.mode == "compile" and not args.full_shapes):
        apply_shapes(module, case.interpret_shapes)
    sweep_cls = getattr(module, case.sweep)
    current = dict(getattr(sweep_cls, "config", {}) or {})
    configs = ordered_configs(case.space, current)
    if args.mode == "interpret" or args.configs_per_file:
        configs = probe_configs(case.space)[: args.configs_per_file or 2]
    if time.time() > args.deadline_at:  # nothing more may start: say so without building anything
        writer.write({"type": "file", "file": key, "space": case.space, "configs": len(configs)})
        writer.write({"type": "file_end", "file": key, "measured": 0, "skipped": len(configs), "wall_s": 0.0})
        return
    init, reference, inputs = build(module, env.device)
    expected = None if env.mode == "compile" else reference64(reference, inputs)
    roofline = module.roofline() if hasattr(module, "roofline") else None
    first = int(resume["index"]) if resume else 0
    writer.write(
        {
            "type": "file",
            "file": key,
            "start_variant": case.start,
            "sweep_variant": case.sweep,
            "space": case.space,
            "configs": len(configs),
            "rtol": case.rtol,
            "roofline": roofline,
            "resumed_at": first if resume else None,
            "setup_s": round(time.perf_counter() - t_file, 2),
        }
    )
    captured: dict[str, dict[str, Any]] = {}
    submitted = False

    def maybe_submit(after: int) -> None:
        nonlocal submitted
        if pool is not None and captured and not submitted:
            pool.submit(path, captured, [(i, c) for i, c in enumerate(configs) if i > after])
            submitted = True

    with compile_capture(captured):
        if not (resume and resume.get("skip_start")):
            write_progress(args.progress, file=key, stage="start", index=-1)
            model = instantiate(module, case.start, init, reference, env.device)
            rec = measure(env, model, inputs, expected, case.rtol, record_launch=True)
            tuner = next(
                (v for v in vars(module).values() if hasattr(v, "best_config") and hasattr(v, "configs")),
                None,
            )
            if tuner is not None and getattr(tuner, "best_config", None) is not None:
                rec["autotune_choice"] = str(tuner.best_config)
            writer.write({"type": "start", "file": key, "variant": case.start, **rec})
            del model
            if sticky_cuda_error(rec.get("error")):
                raise SystemExit(3)
            maybe_submit(first - 1)
        model = instantiate(module, case.sweep, init, reference, env.device)
        measured = skipped = 0
        for index, config in enumerate(configs):
            if index < first:
                continue
            over_budget = time.perf_counter() - t_file > args.budget_s
            if over_budget or time.time() > args.deadline_at:
                skipped += 1
                continue
            write_progress(args.progress, file=key, stage="config", index=index)
            if crash_requested(path, index):
                os._exit(9)
            precompiled, compile_ahead_s = pool.wait(index) if pool is not None else (None, None)
            model.config = dict(config)
            rec = measure(env, model, inputs, expected, case.rtol)
            measured += 1
            writer.write(
                {
                    "type": "config",
                    "file": key,
                    "variant": case.sweep,
                    "index": index,
                    "config": config,
                    "precompiled": precompiled,
                    "compile_ahead_s": compile_ahead_s,
                    **rec,
                }
            )
            if sticky_cuda_error(rec.get("error")):
                raise SystemExit(3)
            maybe_submit(index)
    if pool is not None:
        pool.clear()
    writer.write(
        {
            "type": "file_end",
            "file": key,
            "measured": measured,
            "skipped": skipped,
            "wall_s": round(time.perf_counter() - t_file, 2),
        }
    )
    del model, reference, inputs, expected
    if env.device == "cuda":
        torch.cuda.empty_cache()


def worker_main(args: argparse.Namespace) -> int:
    if args.mode == "interpret":
        os.environ["TRITON_INTERPRET"] = "1"
    import torch  # noqa: F401  (after TRITON_INTERPRET is set)

    install_stand_in_driver(compile_target=args.mode == "compile")
    env = make_env(args)
    writer = Writer(args.out)
    header = {
        "type": "header",
        "mode": args.mode,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv[1:],
        **(gpu_header() if args.mode == "gpu" else {}),
    }
    writer.write(header)
    pool = CompilePool(args.jobs) if args.jobs > 0 and args.mode in ("gpu", "compile") else None
    resume = json.loads(args.resume) if args.resume else None
    files = [Path(f) for f in args.files]
    if resume:
        keys = [rel(f) for f in files]
        files = files[keys.index(resume["file"]) :] if resume["file"] in keys else []
    try:
        for i, path in enumerate(files):
            try:
                sweep_file(path, args, env, writer, pool, resume if i == 0 else None)
            except SystemExit:
                raise
            except Exception as exc:  # the file itself is broken (import, build, reference): next file
                writer.write(
                    {
                        "type": "file_error",
                        "file": rel(path),
                        "error": f"{type(exc).__name__}: {first_line(exc)}",
                        "traceback": traceback.format_exc()[-2000:],
                    }
                )
    finally:
        if pool is not None:
            pool.close()
    return 0


# --------------------------------------------------------------------------------------------------------
# The parent: runs workers, restarts them after a crash or a stall, then summarises


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def next_position(files: list[str], progress: dict[str, Any]) -> dict[str, Any] | None:
    """Where a new worker resumes after the one that died at ``progress``."""
    key, stage, index = progress.get("file"), progress.get("stage"), int(progress.get("index", -1))
    if key not in files:
        return None
    if stage == "setup":
        i = files.index(key) + 1
        return {"file": files[i], "index": 0} if i < len(files) else None
    if stage == "start":
        return {"file": key, "index": 0, "skip_start": True}
    return {"file": key, "index": index + 1, "skip_start": True}


def read_progress(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_parent(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _exit_on_signal)  # `timeout` stops this process: its worker goes too
    files = [rel(f) for f in selected_files(args)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    progress = out.with_name(out.name + ".progress")
    deadline_at = time.time() + args.deadline_s
    writer = Writer(out)
    resume: dict[str, Any] | None = None
    restarts = 0
    t0 = time.time()
    while True:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--mode",
            args.mode,
            "--out",
            str(out),
            "--progress",
            str(progress),
            "--deadline-at",
            str(deadline_at),
            "--budget-s",
            str(args.budget_s),
            "--jobs",
            str(args.jobs),
            "--warmup-ms",
            str(args.warmup_ms),
            "--rep-ms",
            str(args.rep_ms),
            "--configs-per-file",
            str(args.configs_per_file),
            "--files",
            *[str(ROOT / f) for f in files],
        ]
        if args.ptxas:
            cmd.append("--ptxas")
        if args.full_shapes:
            cmd.append("--full-shapes")
        if resume:
            cmd += ["--resume", json.dumps(resume)]
        progress.unlink(missing_ok=True)
        proc = subprocess.Popen(cmd, start_new_session=True)  # its own group: killed with its compile pool
        reason = None
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                state = read_progress(progress)
                stalled = state and time.time() - state.get("t", time.time()) > args.config_timeout_s
                late = time.time() > deadline_at + args.grace_s
                if stalled or late:
                    reason = "stalled" if stalled else "deadline"
                    kill_group(proc)
        finally:  # this process stopped (a signal, an error): the worker must not outlive it
            if proc.poll() is None:
                kill_group(proc)
        if proc.returncode == 0:
            break
        state = read_progress(progress)
        reason = reason or (
            "broken CUDA context" if proc.returncode == 3 else f"worker died (rc {proc.returncode})"
        )
        print(f"sweep: worker stopped at {state or 'start-up'}: {reason}", file=sys.stderr, flush=True)
        if state.get("file"):
            failed: dict[str, Any] = {
                "type": "config" if state.get("stage") == "config" else state.get("stage"),
                "file": state["file"],
                "ok": False,
                "error": f"worker: {reason}",
            }
            if state.get("stage") == "config":
                failed["index"] = state.get("index")
            elif state.get("stage") == "setup":
                failed["type"] = "file_error"
            writer.write(failed)
        if reason == "deadline" or not state.get("file"):
            break
        resume = next_position(files, state)
        restarts += 1
        writer.write({"type": "restart", "after": state, "reason": reason, "resume": resume})
        if resume is None or restarts > args.max_restarts:
            break
    progress.unlink(missing_ok=True)
    records = read_jsonl(out)
    for summary in summarise(records):
        writer.write(summary)
    print(render_table(read_jsonl(out)))
    print(
        f"sweep: {len(files)} files, {time.time() - t0:.0f} s, {restarts} worker restarts, results in {out}",
        flush=True,
    )
    return 0


# --------------------------------------------------------------------------------------------------------
# Summaries, table, fill


def config_records(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The config results of one file, the last record of each index winning (a crash record may follow)."""
    by_index: dict[Any, dict[str, Any]] = {}
    for r in records:
        if r.get("type") == "config" and r.get("file") == key:
            by_index[r.get("index")] = r
    return list(by_index.values())


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    files = list(
        dict.fromkeys(
            r["file"] for r in records if r.get("type") in ("file", "config", "start", "file_error")
        )
    )
    summaries = []
    for key in files:
        configs = config_records(records, key)
        good = [r for r in configs if r.get("ok") and isinstance(r.get("ms"), (int, float))]
        start = next((r for r in reversed(records) if r.get("type") == "start" and r.get("file") == key), {})
        info = next((r for r in reversed(records) if r.get("type") == "file" and r.get("file") == key), {})
        best = min(good, key=lambda r: r["ms"]) if good else None
        start_ms = start.get("ms") if isinstance(start.get("ms"), (int, float)) else None
        s: dict[str, Any] = {
            "type": "summary",
            "file": key,
            "start_variant": start.get("variant"),
            "start_ms": start_ms,
            "start_launch": start.get("launch"),
            "start_error": start.get("error"),
            "best_ms": best["ms"] if best else None,
            "best_config": best["config"] if best else None,
            "speedup": round(start_ms / best["ms"], 3) if best and start_ms else None,
            "configs_planned": info.get("configs"),
            "measured": len(configs),
            "ok": len(good),
            "failed": sum(1 for r in configs if not r.get("ok")),
        }
        roof = info.get("roofline") or {}
        if best and roof.get("bytes"):
            s["best_tbps"] = round(roof["bytes"] / best["ms"] / 1e9, 3)
        if best and roof.get("flops"):
            s["best_tflops"] = round(roof["flops"] / best["ms"] / 1e9, 2)
        summaries.append(s)
    return summaries


def render_table(records: list[dict[str, Any]]) -> str:
    summaries = [r for r in records if r.get("type") == "summary"] or summarise(records)
    last = {s["file"]: s for s in summaries}
    header = next((r for r in reversed(records) if r.get("type") == "header"), {})
    copy_tbps = header.get("copy_tbps")
    lines = [
        f"{'kernel':<42} {'start ms':>9} {'best ms':>9} {'speedup':>8} {'ok/meas/plan':>13} {'TB/s':>6}"
        f" {'%copy':>6}  best config"
    ]
    for key, s in last.items():

        def num(v: Any, fmt: str) -> str:
            width = int(fmt.split(".")[0] or 0)
            return format(v, fmt) if isinstance(v, (int, float)) else "-".rjust(width)

        tbps = s.get("best_tbps")
        pct = f"{100 * tbps / copy_tbps:.0f}" if tbps and copy_tbps else "-"
        counts = f"{s.get('ok')}/{s.get('measured')}/{s.get('configs_planned')}"
        best = ",".join(f"{k}={v}" for k, v in (s.get("best_config") or {}).items()) or (
            s.get("start_error") or "-"
        )
        lines.append(
            f"{key:<42} {num(s.get('start_ms'), '9.4f')} {num(s.get('best_ms'), '9.4f')} "
            f"{num(s.get('speedup'), '7.2f') + 'x' if s.get('speedup') else '-':>8} {counts:>13} "
            f"{num(tbps, '6.2f')} {pct:>6}  {best}"
        )
    return "\n".join(lines)


def best_by_file(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["file"]: s for s in summarise(records) if s.get("best_config")}


def rewrite_best_config(
    source: str, config: dict[str, Any], note: str, class_name: str = "ModelNew_best"
) -> str:
    """``source`` with ``class_name``'s ``config = ...`` statement replaced by ``config`` (one line)."""
    tree = ast.parse(source)
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    if cls is None:
        raise ValueError(f"no class {class_name}")
    stmt = next(
        (
            n
            for n in cls.body
            if isinstance(n, ast.Assign)
            and len(n.targets) == 1
            and isinstance(n.targets[0], ast.Name)
            and n.targets[0].id == "config"
        ),
        None,
    )
    if stmt is None or stmt.end_lineno is None:
        raise ValueError(f"{class_name} has no `config = ...` class attribute")
    lines = source.splitlines(keepends=True)
    first = lines[stmt.lineno - 1]
    indent = first[: len(first) - len(first.lstrip())]
    body = ", ".join(f"{k}={v!r}" for k, v in config.items())
    new = f"{indent}config = dict({body})  {MARKER}: {note}\n"
    return "".join(lines[: stmt.lineno - 1]) + new + "".join(lines[stmt.end_lineno :])


def fill_main(args: argparse.Namespace) -> int:
    records = read_jsonl(Path(args.fill))
    header = next((r for r in records if r.get("type") == "header"), {})
    if header.get("mode") != "gpu" and not args.force:
        raise SystemExit(
            f"{args.fill} was not measured on a GPU (mode {header.get('mode')!r}); --force to fill anyway"
        )
    gpu = str(header.get("gpu", "GPU")).removeprefix("NVIDIA ")
    where = f"{gpu} {str(header.get('date', ''))[:10]}".strip()
    best = best_by_file(records)
    wanted = {rel(Path(f)) for f in args.files} if args.files else None
    changed = 0
    for key, s in sorted(best.items()):
        if wanted is not None and key not in wanted:
            continue
        path = ROOT / key if not Path(key).is_absolute() else Path(key)
        if args.root:
            path = Path(args.root) / key
        if not path.exists() or MARKER not in path.read_text():
            continue  # the zoo files keep their own tuned variants
        note = f"{s['best_ms']:.4f} ms ({where})"
        text = path.read_text()
        new = rewrite_best_config(text, s["best_config"], note)
        if new != text:
            path.write_text(new)
            changed += 1
            print(f"{key}: ModelNew_best.config = {s['best_config']} ({note})")
    readme = Path(args.root) / rel(README) if args.root else README
    if readme.exists():
        text = readme.read_text()
        table = readme_table(records, where)
        start, end = "<!-- sweep-table:start -->", "<!-- sweep-table:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            readme.write_text(f"{head}{start}\n{table}\n{end}{tail}")
    print(f"fill: {changed} files rewritten")
    return 0


def readme_table(records: list[dict[str, Any]], where: str) -> str:
    rows = [
        "| file | start ms | best ms | speedup | best config | ok / configs |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for s in summarise(records):
        best = ", ".join(f"{k}={v}" for k, v in (s.get("best_config") or {}).items()) or "-"

        def ms(v: Any) -> str:
            return f"{v:.4f}" if isinstance(v, (int, float)) else "-"

        speed = f"{s['speedup']:.2f}x" if s.get("speedup") else "-"
        rows.append(
            f"| {Path(s['file']).name} | {ms(s.get('start_ms'))} | {ms(s.get('best_ms'))} | {speed} | "
            f"{best} | {s.get('ok')} / {s.get('configs_planned')} |"
        )
    return f"Measured on {where} by `bench/sweep_corpus.py`.\n\n" + "\n".join(rows)


# --------------------------------------------------------------------------------------------------------
# --check: every variant and the space's extremes under the interpreter, as JSON (the tests read it)


def check_main(path: Path) -> int:
    os.environ["TRITON_INTERPRET"] = "1"
    import torch  # noqa: F401

    install_stand_in_driver(compile_target=False)
    env = Env("interpret", "cpu", timer=None)
    module = load_module(path)
    case = case_for(path, module)
    apply_shapes(module, case.interpret_shapes)
    init, reference, inputs = build(module, "cpu")
    expected = reference64(reference, inputs)
    result: dict[str, Any] = {
        "file": rel(path),
        "rtol": case.rtol,
        "space": case.space,
        "variants": [],
        "configs": [],
    }
    names = sorted(n for n, v in vars(module).items() if n.startswith("ModelNew") and isinstance(v, type))
    for name in names:
        model = instantiate(module, name, init, reference, "cpu")
        rec = measure(env, model, inputs, expected, case.rtol, record_launch=True)
        result["variants"].append({"variant": name, **rec})
    model = instantiate(module, case.sweep, init, reference, "cpu")
    for config in probe_configs(case.space):
        model.config = dict(config)
        result["configs"].append({"config": config, **measure(env, model, inputs, expected, case.rtol)})
    print(json.dumps(clean(result)))
    return 0


# --------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, help="JSONL results (appended to)")
    p.add_argument("--files", nargs="*", help="kernel files (default: kernels/corpus/*.py)")
    p.add_argument(
        "--zoo",
        action="store_true",
        help="also the zoo: kernels/{elementwise,softmax,spill,matmul_epilogue}.py",
    )
    p.add_argument(
        "--interpret-smoke", action="store_true", help="CPU: the whole pipeline under TRITON_INTERPRET=1"
    )
    p.add_argument(
        "--compile-only", action="store_true", help="CPU: compile every config for sm_90a, launch none"
    )
    p.add_argument(
        "--ptxas", action="store_true", help="with --compile-only: registers and spills from ptxas -v"
    )
    p.add_argument(
        "--full-shapes", action="store_true", help="with --compile-only: the GPU shapes, not the small ones"
    )
    p.add_argument(
        "--check", type=Path, help="CPU: every variant and the space's extremes of FILE, JSON to stdout"
    )
    p.add_argument(
        "--fill", type=Path, help="rewrite each corpus file's ModelNew_best.config from a sweep JSONL"
    )
    p.add_argument("--root", help="with --fill: the tree to rewrite (default: this repository)")
    p.add_argument("--force", action="store_true", help="with --fill: accept a sweep not measured on a GPU")
    p.add_argument("--table", type=Path, help="print the start/best table of a sweep JSONL")
    p.add_argument("--deadline-s", type=float, default=400.0, help="whole run (new configs stop after it)")
    p.add_argument("--budget-s", type=float, default=25.0, help="per kernel file")
    p.add_argument(
        "--config-timeout-s", type=float, default=60.0, help="a worker silent this long is restarted"
    )
    p.add_argument(
        "--grace-s", type=float, default=60.0, help="after the deadline, before the worker is killed"
    )
    p.add_argument("--max-restarts", type=int, default=8)
    p.add_argument(
        "--jobs",
        type=int,
        default=min(8, (os.cpu_count() or 2) // 2) if (os.cpu_count() or 2) >= 8 else 0,
        help="compile-ahead processes (0: the worker compiles alone; default half the CPUs, at most 8, "
        "none below 8 CPUs, where they slow the worker down)",
    )
    p.add_argument("--warmup-ms", type=float, default=10.0)
    p.add_argument("--rep-ms", type=float, default=40.0)
    p.add_argument("--configs-per-file", type=int, default=0, help="only the first N probe configs (0: all)")
    # internal: the worker process
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="gpu", help=argparse.SUPPRESS)
    p.add_argument("--progress", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--deadline-at", type=float, default=math.inf, help=argparse.SUPPRESS)
    p.add_argument("--resume", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.interpret_smoke:
        args.mode = "interpret"
        args.configs_per_file = args.configs_per_file or 2
    elif args.compile_only:
        args.mode = "compile"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.check:
        return check_main(args.check.resolve())
    if args.fill:
        return fill_main(args)
    if args.table:
        print(render_table(read_jsonl(args.table)))
        return 0
    if args.worker:
        return worker_main(args)
    if not args.out:
        raise SystemExit("--out is required")
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
