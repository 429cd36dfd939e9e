"""The HTML report in a real headless browser (Debian's chromium): structure, layout and no script errors.

Skipped when chromium is not installed (``apt-get install -y chromium`` on Debian/Ubuntu; .ci/run installs
it best-effort). The page's inline script writes into the hidden ``#render-status`` the number of SVG plots
and marks, the JavaScript errors caught by ``window.onerror``, the elements wider than their box (code
blocks, tables: ``scrollWidth > clientWidth`` or past the viewport) and the backticks left in the visible
text; chromium's ``--dump-dom`` returns the DOM after load at the window size given.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from test_html_report import analysis_of

from ncu_advisor.render.report_html import render_html

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "examples" / "runs"
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--disable-extensions",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (RUNS / "improved").is_dir():
        pytest.skip("examples/runs/improved is not in this checkout")
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(analysis_of(RUNS / "improved")), encoding="utf-8")
    return path


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={cwd / 'profile'}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def loaded_dom(page: Path, width: int = 1100) -> tuple[str, dict[str, str], str]:
    """(DOM after load, the status element's data-* attributes, chromium's stderr)."""
    done = chromium(
        f"--window-size={width},900",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
        cwd=page.parent,
    )
    status = re.search(r'<p id="render-status"([^>]*)>([^<]*)<', done.stdout)
    assert status, done.stderr[-2000:]
    attrs = dict(re.findall(r'(data-[a-z]+)="(-?\d+)"', status.group(1)))
    assert attrs.get("data-errors") == "0", status.group(2)
    return done.stdout, attrs, done.stderr


def test_structure_after_load(page: Path) -> None:
    dom, attrs, stderr = loaded_dom(page)
    assert len(re.findall(r"<h1>", dom)) == 1
    assert "<h1>ncu-advisor report: kernels/fused.py on NVIDIA H200</h1>" in dom
    # the verdict table first, then the plots, then the kernels
    assert dom.index('<table class="verdict">') < dom.index('id="plot-time"') < dom.index('id="kernels"')
    groups = re.findall(r'<section class="kernel-group[^"]*" id="(kernel-\d+)"', dom)
    rooflines = re.findall(r'<svg id="roofline-(\d+)" class="plot roofline"', dom)
    assert len(groups) >= 5 and len(rooflines) == len(groups)
    assert int(attrs["data-plots"]) == len(groups) + 2  # + time and occupancy
    assert int(attrs["data-marks"]) >= len(groups)
    assert '<details class="library-kernels">' in dom
    assert "Uncaught" not in stderr


@pytest.mark.parametrize("width", [1100, 700])
def test_no_overflow_no_backticks_no_test_text(page: Path, width: int) -> None:
    dom, attrs, _ = loaded_dom(page, width)
    # no code block, paragraph or plot wider than its box or the window (the title lists offenders)
    assert attrs["data-overflow"] == "0", dom[dom.index('id="render-status"') :][:400]
    if width >= 1100:  # at a desktop width even the 11-column verdict table fits without scrolling
        assert attrs["data-scrolled"] == "0"
    assert attrs["data-backticks"] == "0"  # markdown rendered, not shown
    assert re.search(r'<p id="render-status" hidden=""[^>]*></p>', dom)  # hidden and empty
    assert "rendered 1 plots" not in dom and "not rendered" not in dom


def test_overflow_check_catches_a_wide_code_block(page: Path) -> None:
    wide = page.parent / "wide.html"
    block = "<pre style='white-space: pre'><code>" + "x" * 600 + "</code></pre>"
    wide.write_text(page.read_text().replace('<section id="kernels">', block + '<section id="kernels">'))
    _, attrs, _ = loaded_dom(wide)
    assert int(attrs["data-overflow"]) >= 1


def test_backtick_check_catches_raw_markdown(page: Path) -> None:
    raw = page.parent / "raw.html"
    kernels = '<section id="kernels">'
    raw.write_text(page.read_text().replace(kernels, "<p>use `BLOCK_K`</p>" + kernels))
    _, attrs, _ = loaded_dom(raw)
    assert attrs["data-backticks"] == "2"


def test_screenshot_is_drawn(page: Path) -> None:
    shot = page.parent / "report.png"
    done = chromium("--window-size=1200,1600", f"--screenshot={shot}", page.as_uri(), cwd=page.parent)
    assert shot.is_file(), done.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (1200, 1600)
    # A page of text and coloured plots compresses far worse than a blank page (about 10 KB here).
    assert shot.stat().st_size > 60_000
    assert "Uncaught" not in done.stderr


def test_status_check_catches_a_script_error(page: Path) -> None:
    broken = page.parent / "broken.html"
    broken.write_text(page.read_text().replace("</body>", "<script>no_such_function();</script></body>"))
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", broken.as_uri(), cwd=page.parent).stdout
    status = re.search(r'<p id="render-status"[^>]*data-errors="(\d+)"[^>]*>([^<]*)<', dom)
    assert status and status.group(1) == "1" and "no_such_function" in status.group(2)


def test_tune_page_has_a_readable_axis_and_no_test_text(tmp_path: Path) -> None:
    from ncu_advisor.analysis.trajectory import read_trajectory
    from ncu_advisor.render.tune_report import render_tune

    run = ROOT / "examples" / "tune" / "matmul"
    page = tmp_path / "tune.html"
    page.write_text(render_tune("html", read_trajectory(run), run), encoding="utf-8")
    dom, attrs, _ = loaded_dom(page)
    assert attrs["data-plots"] == "1"
    assert int(attrs["data-marks"]) >= 5  # one bar per trial
    assert attrs["data-overflow"] == "0" and attrs["data-backticks"] == "0"
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', dom)
    assert len(ticks) >= 4 and all(t.endswith((" ms", " us", " s")) for t in ticks), ticks
    assert "rendered 1 plots" not in dom
