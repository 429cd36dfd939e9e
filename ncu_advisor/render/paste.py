"""The tuned launch configuration as text to paste (decorator, ``config`` dict or launch keywords).

Pure text: used by the tune report (render) and by the tune command and ``--write`` (collect).
"""

from __future__ import annotations

from ncu_advisor.model import LaunchConfig

METHOD_AUTOTUNE = "autotune-configs"
METHOD_CLASS_CONFIG = "class-config"
METHOD_LAUNCH = "launch-kwargs"


def launch_values(config: LaunchConfig) -> dict[str, int]:
    """The config as launch keyword values: the constexprs, then ``num_warps`` and ``num_stages``."""
    return {**config.param_dict, "num_warps": config.num_warps, "num_stages": config.num_stages}


def paste_text(
    config: LaunchConfig,
    kernel: str,
    method: str,
    autotune_key: list[str] | None = None,
    launch_line: int | None = None,
) -> str:
    """The final configuration, ready to paste.

    ``method`` is one of the ``METHOD_*`` names (how tune pins the kernel: autotune decorator, the
    variant's ``config`` dict, or launch keyword arguments); ``launch_line`` is quoted when known.
    """
    triton_config = config.as_triton_config()
    if method == METHOD_AUTOTUNE:
        key = ", ".join(repr(k) for k in (autotune_key or []))
        return "\n".join(
            [f"@triton.autotune(  # {kernel}", f"    configs=[{triton_config}],", f"    key=[{key}],", ")"]
        )
    values = ", ".join(f"{k}={v}" for k, v in launch_values(config).items())
    where = f" (launch at line {launch_line})" if launch_line else ""
    if method == METHOD_CLASS_CONFIG:
        return f"config = dict({values})\n# or, as an autotune config: {triton_config}"
    return f"{kernel}[grid](..., {values}){where}\n# or, as an autotune config: {triton_config}"
