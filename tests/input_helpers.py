"""Helpers shared by the damaged-input tests (tests/test_red_team{3,4,5}_inputs.py): copies of the recorded
format fixtures with lines cut or text replaced, and the CLI's refusal asserted."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ncu_advisor.cli import app

ROOT = Path(__file__).resolve().parent.parent
F = ROOT / "tests" / "fixtures" / "formats"
runner = CliRunner()


def _lines(name: str) -> list[str]:
    return (F / name).read_text(encoding="utf-8").splitlines(keepends=True)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _refused(path: Path, *words: str) -> str:
    """Assert exit 2 through the CLI and that the message names the file and each of ``words``."""
    result = runner.invoke(app, ["recommend", str(path)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert path.name in text
    for word in words:
        assert word in text, (word, text)
    return text


def _replaced(tmp_path: Path, source: Path | str, old: str, new: str, *, name: str | None = None) -> Path:
    """A copy of ``source`` (a path, or a fixture name under ``F``) with the first ``old`` replaced by
    ``new`` (line ends kept as they are)."""
    source = F / source if isinstance(source, str) else source
    text = source.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / (name or f"changed-{source.name}")
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text.replace(old, new, 1))
    return path
