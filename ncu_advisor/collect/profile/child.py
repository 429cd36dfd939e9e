"""Runs one variant of a kernel file in its own process: the only part of ``profile`` that executes user code.

Invoked as ``python -m ncu_advisor.collect.profile.child FILE CLASS --mode {bench,ncu} --out RESULT.json``:

- ``--mode bench`` (bare, one process per variant): build the reference and the variant with the same init
  inputs, copy the reference's whole state (parameters and buffers) into the variant, check the variant
  against a float64 run of the reference on fresh random inputs (relative L2 error within a tolerance per
  output dtype, or ``--rtol``; finite; same shape; the output memory is poisoned with NaN first so an
  unwritten output fails; see ``profile.correctness``), then time it with
  ``triton.testing.do_bench(return_mode="median")`` ``--reps`` times, and record ``n_regs``/``n_spills`` of
  every Triton kernel it launched. ``--reference-only`` times ``Model`` itself (no check).
- ``--mode ncu`` (under ncu): build, warm up (compilation and autotuning happen here, unprofiled), then one
  call inside the NVTX range ``ncu_advisor`` so that ncu profiles only that call.

``--autotune-kernel NAME --autotune-config I`` pins an ``@triton.autotune`` kernel to its I-th config by
replacing the Autotuner's ``configs`` with that one config before the first call. In ncu mode,
``--autotune-from RESULT.json`` pins every other autotuned kernel to the config the bare run chose
(``autotune_choices``), so that ncu profiles the config that was timed.

The result JSON is rewritten after every step, so a crash or a hang keeps what was measured before it.
Lines starting with ``STEP_MARK`` on stdout tell the parent which step is running.
Exit codes: 0 result written (ok or incorrect), 1 the variant raised, 3 no CUDA device, 4 the CUDA context
crashed (illegal address, launch failure). torch and triton are imported here only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import traceback
from pathlib import Path
from typing import Any

from ncu_advisor.collect.profile.correctness import RTOL_FLOOR, check, copy_parameters, copy_state

__all__ = ["check", "copy_parameters", "copy_state"]

NVTX_RANGE = "ncu_advisor"
STEP_MARK = "@@ncu-advisor step "
DEFAULT_RTOL = RTOL_FLOOR  # the floor of the per-dtype tolerances (see profile.correctness)
DEFAULT_REPS = 5
EXIT_RAISED = 1
EXIT_NO_GPU = 3
EXIT_CUDA_CRASH = 4

_CUDA_CRASH_MARKERS = (
    "illegal memory access",
    "illegal address",
    "unspecified launch failure",
    "misaligned address",
    "device-side assert",
    "an illegal instruction",
    "CUDA_ERROR_",
)


def load_module(path: Path) -> Any:
    """Import a kernel file under a private module name."""
    spec = importlib.util.spec_from_file_location(f"ncu_advisor_kernel_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pin_autotune_config(module: Any, kernel_name: str, index: int) -> str:
    """Replace the ``configs`` of the Autotuner ``kernel_name`` by its ``index``-th config; return it."""
    tuner: Any = getattr(module, kernel_name, None)
    configs = getattr(tuner, "configs", None)
    if not isinstance(configs, list) or not configs:
        raise ValueError(f"{kernel_name} is not an @triton.autotune kernel of the file")
    if not 0 <= index < len(configs):
        raise ValueError(f"{kernel_name} has {len(configs)} configs; config {index} does not exist")
    chosen = configs[index]
    tuner.configs = [chosen]
    return str(chosen)


def autotune_choices(module: Any) -> dict[str, int]:
    """For each ``@triton.autotune`` kernel of the file that chose among several configs: the chosen index."""
    choices: dict[str, int] = {}
    for name, value in list(vars(module).items()):
        configs = getattr(value, "configs", None)
        best = getattr(value, "best_config", None)
        if not isinstance(configs, list) or len(configs) < 2 or best is None:
            continue
        for index, config in enumerate(configs):
            if config is best or config == best:
                choices[name] = index
                break
    return choices


def pin_choices_from(module: Any, result_path: Path, keep: str | None) -> dict[str, int]:
    """Pin every autotuned kernel to the config the bare run chose (``autotune_choices`` of its result).

    So that ncu profiles the very config that was timed, instead of a config that a second autotuning
    might pick by noise. ``keep`` names a kernel already pinned by ``--autotune-kernel``.
    """
    try:
        choices = json.loads(result_path.read_text()).get("autotune_choices") or {}
    except (OSError, ValueError):
        return {}
    pinned: dict[str, int] = {}
    for name, index in choices.items():
        if name != keep and isinstance(index, int):
            pin_autotune_config(module, name, index)
            pinned[name] = index
    return pinned


def _to_device(value: Any, device: str) -> Any:
    return value.to(device) if hasattr(value, "to") and hasattr(value, "dtype") else value


def build(
    module: Any, class_name: str, seed: int, device: str = "cuda", reference_only: bool = False
) -> tuple[Any, Any, list[Any], dict[str, Any]]:
    """Build the reference and the variant from the same init inputs; copy the reference's state into it.

    Returns:
        (reference, model, inputs, how the state was copied: ``StateCopy.as_dict()`` plus ``summary``).
    """
    import torch

    init = module.get_init_inputs()
    torch.manual_seed(seed)
    reference = module.Model(*init).to(device).eval()
    if reference_only:
        model, how = reference, {"how": "reference", "summary": "reference"}
    else:
        torch.manual_seed(seed + 1)
        model = getattr(module, class_name)(*init).to(device).eval()
        copied = copy_state(reference, model)
        how = {**copied.as_dict(), "summary": copied.summary()}
    torch.manual_seed(seed + 2)
    inputs = [_to_device(t, device) for t in module.get_inputs()]
    return reference, model, inputs, how


class _LaunchRecorder:
    """Records the CompiledKernel each Triton JIT function last launched (wraps ``JITFunction.run``)."""

    def __init__(self) -> None:
        self.launched: dict[str, Any] = {}
        self._jit: Any = None
        self._original: Any = None

    def __enter__(self) -> _LaunchRecorder:
        try:
            from triton.runtime.jit import JITFunction
        except Exception:
            return self
        original = JITFunction.run
        launched = self.launched

        def run(jit_self: Any, *args: Any, **kwargs: Any) -> Any:
            compiled = original(jit_self, *args, **kwargs)
            if compiled is not None and not kwargs.get("warmup", False):
                launched[getattr(jit_self, "__name__", None) or str(jit_self)] = compiled
            return compiled

        self._jit, self._original = JITFunction, original
        JITFunction.run = run
        return self

    def __exit__(self, *exc: object) -> None:
        if self._jit is not None:
            self._jit.run = self._original


def describe_compiled(compiled: Any) -> dict[str, Any]:
    """name, n_regs, n_spills, num_warps, num_stages, shared of a Triton CompiledKernel (None when absent)."""
    try:
        compiled._init_handles()  # loads the binary; n_regs/n_spills are set here
    except Exception:
        pass
    metadata = getattr(compiled, "metadata", None)

    def meta(key: str) -> Any:
        value = getattr(metadata, key, None)
        if value is None and isinstance(metadata, dict):
            value = metadata.get(key)
        return value

    def number(value: Any) -> int | None:
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    return {
        "name": getattr(compiled, "name", None) or meta("name"),
        "n_regs": number(getattr(compiled, "n_regs", None)),
        "n_spills": number(getattr(compiled, "n_spills", None)),
        "num_warps": number(meta("num_warps")),
        "num_stages": number(meta("num_stages")),
        "shared": number(meta("shared")),
    }


def compiled_kernels(module: Any) -> list[dict[str, Any]]:
    """Every Triton kernel compiled so far for the JIT functions at the kernel file's top level."""
    found: list[dict[str, Any]] = []
    seen: set[int] = set()
    for value in list(vars(module).values()):
        fn = value
        for _ in range(4):  # Autotuner/Heuristics wrap the JITFunction in .fn
            if hasattr(fn, "device_caches") or not hasattr(fn, "fn"):
                break
            fn = fn.fn
        caches = getattr(fn, "device_caches", None)
        if not isinstance(caches, dict) or id(fn) in seen:
            continue
        seen.add(id(fn))
        for entry in list(caches.values()):
            parts = entry if isinstance(entry, tuple) else (entry,)
            for part in parts:
                if isinstance(part, dict):
                    for compiled in list(part.values()):
                        if hasattr(compiled, "metadata"):
                            found.append(describe_compiled(compiled))
    return found


def environment() -> dict[str, Any]:
    """Versions and GPU facts, as seen by the child (torch, triton, CUDA, device properties)."""
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except Exception:
        info["triton"] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {
            "name": props.name,
            "cc": f"{props.major}.{props.minor}",
            "sm_count": props.multi_processor_count,
            "memory_bytes": int(props.total_memory),
        }
    return info


def _is_cuda_crash(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return type(exc).__name__ == "AcceleratorError" or any(
        m.lower() in text.lower() for m in _CUDA_CRASH_MARKERS
    )


def _write(path: Path | None, result: dict[str, Any]) -> None:
    if path is None:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    tmp.replace(path)


def _step(name: str) -> None:
    print(f"{STEP_MARK}{name}", flush=True)


def run_bench(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Build, check and time one variant; fill ``result`` as it goes."""
    import torch

    _step("build")
    module = load_module(args.file)
    if args.autotune_kernel is not None:
        result["pinned_config"] = pin_autotune_config(module, args.autotune_kernel, args.autotune_config)
    reference, model, inputs, how = build(module, args.variant, args.seed, reference_only=args.reference_only)
    result["parameters"] = how["summary"]
    result["state_copy"] = how
    _write(args.out, result)
    with _LaunchRecorder() as recorder:
        if args.reference_only:
            _step("check")
            model(*inputs)
            result["correctness"] = None
        else:
            _step("check")
            result["correctness"] = check(reference, model, inputs, args.rtol)
        torch.cuda.synchronize()
    result["autotune_choices"] = autotune_choices(module)
    result["status"] = "ok" if args.reference_only or result["correctness"]["passed"] else "incorrect"
    if result["status"] == "incorrect":
        result["reason"] = "; ".join(result["correctness"]["problems"])
    del reference
    _write(args.out, result)

    _step("time")
    import triton.testing

    for _ in range(args.warmup):
        model(*inputs)
    torch.cuda.synchronize()
    result["timings_ms"] = []
    for _ in range(args.reps):
        median = triton.testing.do_bench(lambda: model(*inputs), return_mode="median")
        result["timings_ms"].append(float(median))
        _write(args.out, result)
    launched = {name: describe_compiled(compiled) for name, compiled in recorder.launched.items()}
    result["triton_kernels"] = list(launched.values())
    result["triton_compiled"] = compiled_kernels(module)
    _write(args.out, result)


def run_ncu(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Build, warm up, then one call inside the NVTX range that ncu is told to profile."""
    import torch

    _step("build")
    module = load_module(args.file)
    if args.autotune_kernel is not None:
        result["pinned_config"] = pin_autotune_config(module, args.autotune_kernel, args.autotune_config)
    if args.autotune_from is not None:
        result["pinned_from_bench"] = pin_choices_from(module, args.autotune_from, args.autotune_kernel)
    _, model, inputs, how = build(module, args.variant, args.seed, reference_only=args.reference_only)
    result["parameters"] = how["summary"]
    _step("warmup")
    for _ in range(max(args.warmup, 1)):
        model(*inputs)
    torch.cuda.synchronize()
    _step("profile")
    torch.cuda.nvtx.range_push(NVTX_RANGE)
    model(*inputs)
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_pop()
    result["status"] = "ok"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child process; see the module docstring for arguments and exit codes."""
    parser = argparse.ArgumentParser(prog="python -m ncu_advisor.collect.profile.child")
    parser.add_argument("file", type=Path)
    parser.add_argument("variant", help="the class to build (Model with --reference-only)")
    parser.add_argument("--mode", choices=["bench", "ncu"], default="bench")
    parser.add_argument("--reference-only", action="store_true", help="time Model itself; no check")
    parser.add_argument("--autotune-kernel")
    parser.add_argument("--autotune-config", type=int)
    parser.add_argument(
        "--autotune-from",
        type=Path,
        help="(ncu mode) pin autotuned kernels to the configs chosen in this bench result.json",
    )
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS)
    parser.add_argument(
        "--rtol", type=float, default=None, help="one tolerance for every output (default: per dtype)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    result: dict[str, Any] = {"variant": args.variant, "mode": args.mode, "status": "running"}
    try:
        try:
            import torch
        except ImportError as exc:
            result.update(status="no-gpu", reason=f"torch is not importable in {sys.executable}: {exc}")
            _write(args.out, result)
            print(result["reason"], file=sys.stderr)
            return EXIT_NO_GPU
        torch.set_grad_enabled(False)
        if not torch.cuda.is_available():
            result.update(status="no-gpu", reason="torch.cuda.is_available() is False in the child")
            _write(args.out, result)
            print(result["reason"], file=sys.stderr)
            return EXIT_NO_GPU
        result["environment"] = environment()
        if args.mode == "bench":
            run_bench(args, result)
        else:
            run_ncu(args, result)
    except BaseException as exc:  # the child reports every failure of user code in its result
        crashed = _is_cuda_crash(exc)
        result["status"] = "crashed" if crashed else "failed"
        result["reason"] = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
        result["traceback"] = traceback.format_exc()
        _write(args.out, result)
        traceback.print_exc()
        return EXIT_CUDA_CRASH if crashed else EXIT_RAISED
    _write(args.out, result)
    print(json.dumps({k: result.get(k) for k in ("variant", "status", "parameters", "timings_ms")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
