"""report.html in a real headless browser: the verdict and a failing requirement are visible."""

from __future__ import annotations

import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from conformance._resources import scenarios_dir

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs a headless browser: install Debian's `chromium` package"
)
BROWSER_TIMEOUT = 60


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", *args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=True
    )


def render(pytester: pytest.Pytester, tmp_path: Path, *run_args: str) -> tuple[str, Path]:
    """Run a few scenarios, open their report.html: the rendered DOM and a screenshot."""
    pytester.chdir()
    pytester.runpytest(
        str(scenarios_dir()), "-p", "no:cacheprovider", "-k", "relink", "--report-dir=out",
        *run_args,
    )
    page = (pytester.path / "out" / "report.html").as_uri()
    screenshot = pytester.path / "out" / "report.png"
    chromium(tmp_path, "--window-size=1000,1600", f"--screenshot={screenshot}", page)
    dom = chromium(tmp_path, "--dump-dom", page).stdout
    return dom, screenshot


def visible_text(dom: str, element_id: str) -> str:
    """The text of the element with ``element_id`` in the rendered DOM, tags stripped."""
    start = dom.index(">", dom.index(f'id="{element_id}"')) + 1
    end = dom.index("</header>" if element_id == "verdict" else "</tr>", start)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", dom[start:end])).split())


def test_failing_report_shows_verdict_and_failed_requirement(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    dom, screenshot = render(pytester, tmp_path, "--reference-fault=relink-returns-201")
    assert "Does not conform" in visible_text(dom, "verdict")
    row = visible_text(dom, "req-LINK-RELINK-200")
    assert row.startswith("fail MUST LINK-RELINK-200")
    assert 'id="fail-LINK-RELINK-200"' in dom
    assert screenshot.stat().st_size > 10_000


def test_passing_report_shows_conformance(pytester: pytest.Pytester, tmp_path: Path) -> None:
    dom, screenshot = render(pytester, tmp_path)
    assert "Conforms" in visible_text(dom, "verdict")
    assert "fail MUST" not in dom
    assert visible_text(dom, "req-LINK-RELINK-200").startswith("pass MUST LINK-RELINK-200")
    assert screenshot.stat().st_size > 10_000
