"""The correctness harness of ``profile``: give a variant the reference's state, then compare its outputs.

Runs inside the child process (it imports torch, lazily). Two parts:

- ``copy_state``: the variant receives the reference's whole state, parameters **and buffers** (quantised
  layers keep their int8 weights and scales as buffers), matched by name where name, shape and dtype kind
  agree, else by shape and order among what is left. Entries that found no match are listed, so a result
  can say why a variant kept its own random weights.
- ``check``: the variant's outputs against a float64 run of the reference on the same inputs, with a relative
  L2 error tolerance per output dtype (``tolerance_for``).

Tolerances (``DTYPE_RTOL``): the default relative tolerances of ``torch.testing.assert_close``
(torch/testing/_comparison.py, ``_DTYPE_PRECISIONS``: float16 1e-3, bfloat16 1.6e-2, float32 1.3e-6,
float64 1e-7), raised to a floor of ``RTOL_FLOOR`` = 2e-3, the tolerance this project used for every dtype,
which float32 kernels using TF32 tensor cores or another summation order need. A bf16 output therefore gets
1.6e-2 (a correct bf16 rotary-embedding kernel measured 1.7e-3, at the old single tolerance). Other floating
dtypes (float8) get twice their machine epsilon (``torch.finfo(dtype).eps``), as assert_close's bfloat16
entry is about twice bf16's epsilon (7.8e-3); integer and bool outputs must match exactly (assert_close's
tolerance for them is 0). ``--rtol`` replaces all of these with one value.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

RTOL_FLOOR = 2e-3
#: torch.testing.assert_close's default rtol per dtype name (torch/testing/_comparison.py).
ASSERT_CLOSE_RTOL: dict[str, float] = {
    "float16": 1e-3,
    "bfloat16": 1.6e-2,
    "float32": 1.3e-6,
    "float64": 1e-7,
    "complex32": 1e-3,
    "complex64": 1.3e-6,
    "complex128": 1e-7,
}
DTYPE_RTOL: dict[str, float] = {name: max(RTOL_FLOOR, rtol) for name, rtol in ASSERT_CLOSE_RTOL.items()}


@dataclass
class StateCopy:
    """How the reference's state reached the variant.

    Attributes:
        how: ``by-name``, ``by-shape`` (every entry matched by shape and order), ``mixed`` (some by name, some
            by shape), ``partial`` (some variant entries found no match), ``none`` (the variant has no state).
        by_name: variant entries copied from the reference entry of the same name.
        by_shape: variant entry -> the reference entry it was copied from, matched by shape and order.
        unmatched: variant entries that kept their own values (no reference entry of that shape and kind).
        unused: reference entries no variant entry took.
    """

    how: str = "none"
    by_name: list[str] = field(default_factory=list)
    by_shape: dict[str, str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The one-line form kept in ``result.json``'s ``parameters`` and the manifest."""
        if self.how == "partial":
            return f"partial: unmatched {','.join(self.unmatched)}"
        return self.how

    def as_dict(self) -> dict[str, Any]:
        return {
            "how": self.how,
            "by_name": self.by_name,
            "by_shape": self.by_shape,
            "unmatched": self.unmatched,
            "unused_reference": self.unused,
        }


def state_entries(module: Any) -> dict[str, Any]:
    """Every parameter and buffer of a torch module by qualified name, in ``state_dict`` order.

    Non-persistent buffers (absent from ``state_dict``) come last; tensors shared under two names once.
    """
    entries: dict[str, Any] = dict(module.state_dict(keep_vars=True))
    for name, buffer in module.named_buffers():
        entries.setdefault(name, buffer)
    seen: set[int] = set()
    unique: dict[str, Any] = {}
    for name, tensor in entries.items():
        if tensor is None or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        unique[name] = tensor
    return unique


def _kind(tensor: Any) -> str:
    if tensor.dtype.is_floating_point:
        return "float"
    if tensor.dtype.is_complex:
        return "complex"
    return "integer"


def _compatible(a: Any, b: Any) -> bool:
    return tuple(a.shape) == tuple(b.shape) and _kind(a) == _kind(b)


def copy_state(reference: Any, variant: Any) -> StateCopy:
    """Copy the reference's parameters and buffers into ``variant`` (in place).

    By name where a variant entry's name, shape and dtype kind (float, complex, integer) match a reference
    entry; the rest by shape and kind, in order, among the reference entries nothing took yet.

    Returns:
        What was copied and what was not (``StateCopy``).
    """
    import torch

    ref = state_entries(reference)
    var = state_entries(variant)
    result = StateCopy()
    if not var:
        return result
    taken: set[str] = set()
    pending: list[str] = []
    with torch.no_grad():
        for name, tensor in var.items():
            if name in ref and _compatible(ref[name], tensor):
                tensor.copy_(ref[name])
                taken.add(name)
                result.by_name.append(name)
            else:
                pending.append(name)
        for name in pending:
            tensor = var[name]
            source = next((r for r, t in ref.items() if r not in taken and _compatible(t, tensor)), None)
            if source is None:
                result.unmatched.append(name)
                continue
            tensor.copy_(ref[source])
            taken.add(source)
            result.by_shape[name] = source
    result.unused = [name for name in ref if name not in taken]
    if result.unmatched:
        result.how = "partial"
    elif result.by_shape and result.by_name:
        result.how = "mixed"
    else:
        result.how = "by-shape" if result.by_shape else "by-name"
    return result


def copy_parameters(reference: Any, variant: Any) -> str:
    """``copy_state`` returning only its one-line summary (kept for the benchmarks and older callers)."""
    return copy_state(reference, variant).summary()


def tolerance_for(dtype: Any) -> tuple[float, str]:
    """The default relative L2 tolerance of an output of this torch dtype, and where it comes from."""
    import torch

    name = str(dtype).replace("torch.", "")
    if name in DTYPE_RTOL:
        source = f"torch.testing.assert_close rtol for {name} ({ASSERT_CLOSE_RTOL[name]:g})"
        if DTYPE_RTOL[name] > ASSERT_CLOSE_RTOL[name]:
            source += f", raised to the {RTOL_FLOOR:g} floor"
        return DTYPE_RTOL[name], source
    if dtype.is_floating_point:
        eps = float(torch.finfo(dtype).eps)
        return max(RTOL_FLOOR, 2 * eps), f"2 x machine epsilon of {name} ({eps:g})"
    return 0.0, f"{name} outputs must match exactly (assert_close: 0)"


def _tensors(output: Any) -> list[Any]:
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors(item)]
    return [output] if hasattr(output, "dtype") else []


def _expected_outputs(reference: Any, inputs: list[Any]) -> list[Any]:
    import torch

    reference64 = copy.deepcopy(reference).double()
    inputs64 = [
        t.double() if hasattr(t, "is_floating_point") and t.is_floating_point() else t for t in inputs
    ]
    expected = _tensors(reference64(*inputs64))
    del reference64, inputs64
    for tensor in expected:  # poison: the caching allocator hands these blocks out again
        poison = torch.full(tensor.shape, float("nan"), dtype=torch.float32, device=tensor.device)
        del poison
    return expected


def check(reference: Any, model: Any, inputs: list[Any], rtol: float | None = None) -> dict[str, Any]:
    """Compare the variant's outputs with a float64 run of the reference on the same inputs.

    The memory the output will most likely land in is filled with NaN first, so an output the kernel
    never writes reads as NaN and fails.

    Args:
        rtol: one relative L2 tolerance for every output; None: ``tolerance_for`` each output's dtype.

    Returns:
        ``passed``, ``problems``, ``rel_l2_error`` (the largest), ``max_abs_error``, ``rtol`` (the
        tightest tolerance applied) and ``per_output``: dtype, tolerance, its source, error, per output.
    """
    import torch

    expected = _expected_outputs(reference, inputs)
    got = _tensors(model(*inputs))
    if hasattr(torch, "cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()
    problems: list[str] = []
    per_output: list[dict[str, Any]] = []
    if len(got) != len(expected):
        problems.append(f"{len(got)} outputs, the reference gives {len(expected)}")
    for i, (out, exp) in enumerate(zip(got, expected, strict=False)):
        tol, source = (rtol, "--rtol") if rtol is not None else tolerance_for(out.dtype)
        entry: dict[str, Any] = {"dtype": str(out.dtype).replace("torch.", ""), "rtol": tol, "source": source}
        per_output.append(entry)
        if tuple(out.shape) != tuple(exp.shape):
            problems.append(f"output {i} has shape {tuple(out.shape)}, the reference {tuple(exp.shape)}")
            continue
        out64 = out.double()
        if not bool(torch.isfinite(out64).all()):
            bad = int((~torch.isfinite(out64)).sum())
            problems.append(f"output {i} has {bad} NaN/inf values (unwritten or overflowed)")
        exp = exp.double()  # integer outputs stay integer in the float64 run of the reference
        diff = out64 - exp
        entry["rel_l2_error"] = float(diff.norm() / max(float(exp.norm()), 1e-30))
        entry["max_abs_error"] = float(diff.abs().max()) if diff.numel() else 0.0
        if entry["rel_l2_error"] > tol:
            problems.append(
                f"relative L2 error {entry['rel_l2_error']:.3g} > tolerance {tol:g} "
                f"(output {i}, {entry['dtype']}: {source})"
            )
    errors = [e["rel_l2_error"] for e in per_output if "rel_l2_error" in e]
    return {
        "rtol": min((e["rtol"] for e in per_output), default=rtol),
        "outputs": len(got),
        "per_output": per_output,
        "rel_l2_error": max(errors) if errors else None,
        "max_abs_error": max((e["max_abs_error"] for e in per_output if "max_abs_error" in e), default=None),
        "passed": not problems,
        "problems": problems,
    }
