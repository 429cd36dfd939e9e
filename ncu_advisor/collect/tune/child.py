"""The profile child with a pinned configuration: ``python -m ncu_advisor.collect.tune.child FILE CLASS
--override JSON --override-record RECORD.json [child options...]``.

It runs ``ncu_advisor.collect.profile.child`` unchanged (same modes, result JSON, exit codes), with one
difference: right after the kernel file is imported, ``ncu_advisor.collect.tune.pin.apply_override`` pins
the kernel named in the override (see that module for how). What the pin recorded (the method, the variant's
own launch parameters, the launch's integer arguments) is written to ``--override-record`` when the
child ends.
Done as a wrapper so the profile child's own code stays as its owner wrote it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ncu_advisor.collect.profile import child as profile_child
from ncu_advisor.collect.tune.pin import PinError, apply_override, parse_override


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the profile child's exit code (2 for a malformed override)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--override", required=True)
    parser.add_argument("--override-record", type=Path)
    ours, rest = parser.parse_known_args(argv)
    holder: dict[str, dict[str, Any]] = {}
    try:
        override = parse_override(ours.override)
    except PinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    positional = [a for a in rest if not a.startswith("-")]
    variant_class = positional[1] if len(positional) > 1 else None
    original_load = profile_child.load_module

    def load_and_pin(path: Path) -> Any:
        module = original_load(path)
        holder["record"] = apply_override(module, variant_class, override)  # filled at the first launch
        return module

    profile_child.load_module = load_and_pin
    try:
        return profile_child.main(rest)
    finally:
        profile_child.load_module = original_load
        if ours.override_record is not None:
            ours.override_record.write_text(json.dumps(holder.get("record", {}), indent=2, default=str))


if __name__ == "__main__":
    raise SystemExit(main())
