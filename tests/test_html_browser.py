"""The HTML report in a real headless browser (Debian's chromium): the plots render, no script errors.

Skipped when chromium is not installed (``apt-get install -y chromium`` on Debian/Ubuntu CI images).
The page's inline script writes the number of SVG plots, their marks and the JavaScript errors caught by
``window.onerror`` into ``#render-status``; chromium's ``--dump-dom`` returns the DOM after load.
"""

# ruff: noqa: F811 - pytest fixtures imported from test_report_formats are redefined as parameters
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from test_report_formats import example_run_pair  # noqa: F401 - the shared run fixture

from ncu_advisor import rundir
from ncu_advisor.analysis.report_data import build_report
from ncu_advisor.render.report_html import render_html

ROOT = Path(__file__).resolve().parent.parent
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
def page(example_run_pair: tuple[Path, Path, bool], tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = build_report(rundir.load_run(example_run_pair[1]), source_root=ROOT)
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(data), encoding="utf-8")
    return path


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={cwd / 'profile'}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "@import" not in text and "url(http" not in text


def test_dom_after_load_has_plots_and_no_errors(page: Path) -> None:
    done = chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri(), cwd=page.parent)
    dom = done.stdout
    status = re.search(r'<p id="render-status"([^>]*)>([^<]*)<', dom)
    assert status, done.stderr[-2000:]
    attrs = dict(re.findall(r'(data-[a-z]+)="(-?\d+)"', status.group(1)))
    assert attrs["data-errors"] == "0", status.group(2)
    assert attrs["data-plots"] == "3"
    assert int(attrs["data-marks"]) >= 3
    for plot in ("plot-time", "plot-occupancy"):
        assert f'id="{plot}"' in dom
    assert 'id="plot-roofline"' in dom or 'id="plot-sol"' in dom
    assert "Uncaught" not in done.stderr


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


def test_tune_page_renders_its_plot(tmp_path: Path) -> None:
    from ncu_advisor.render.tune_report import render_tune
    from ncu_advisor.analysis.trajectory import read_trajectory

    run = ROOT / "examples" / "tune" / "matmul"
    page = tmp_path / "tune.html"
    page.write_text(render_tune("html", read_trajectory(run), run), encoding="utf-8")
    done = chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri(), cwd=tmp_path)
    status = re.search(r'<p id="render-status"([^>]*)>([^<]*)<', done.stdout)
    assert status, done.stderr[-2000:]
    attrs = dict(re.findall(r'(data-[a-z]+)="(-?\d+)"', status.group(1)))
    assert attrs["data-errors"] == "0", status.group(2)
    assert attrs["data-plots"] == "1"
    assert int(attrs["data-marks"]) >= 5  # one bar per trial (plus the legend swatches)
