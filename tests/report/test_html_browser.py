"""The HTML report in a real headless browser (Debian's chromium, driven over the DevTools protocol).

CI needs chromium: `apt-get install -y chromium`. Without it these tests skip, saying so.
Set SAFEMLRM_UPDATE_SCREENSHOT=1 to refresh docs/img/report.png from this run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tests.report._cdp import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)"),
]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "report.png"


async def _count(browser: Browser) -> int:
    return int(await browser.evaluate("document.getElementById('sample-count').dataset.count"))


async def _select(browser: Browser, element_id: str, value: str) -> None:
    await browser.evaluate(
        f"(() => {{ const s = document.getElementById({element_id!r}); s.value = {value!r};"
        " s.dispatchEvent(new Event('change')); })()"
    )


async def test_report_in_chromium(report_dir: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    async with Browser(CHROMIUM, width=1280, height=900) as browser:
        await browser.goto((report_dir / "report.html").resolve().as_uri())
        title = await browser.evaluate("document.title")

        # charts rendered: the four kinds of SVG chart, with their marks
        assert await browser.evaluate("document.querySelectorAll('svg.chart').length") >= 4
        assert await browser.evaluate("document.querySelectorAll('#scenarios svg rect').length") >= 13
        assert await browser.evaluate("document.querySelectorAll('#tax svg line').length") >= 14
        assert await browser.evaluate("document.querySelectorAll('#transitions svg rect.heat-cell').length") == 36
        assert await browser.evaluate("document.querySelectorAll('#tradeoff svg circle').length") == 2
        assert await browser.evaluate("document.querySelector('#scenarios svg').getBoundingClientRect().width") > 300

        # the sample browser: all embedded outputs, then filters narrow them
        total = await _count(browser)
        assert total == await browser.evaluate("JSON.parse(document.getElementById('samples-data').textContent).length")
        assert await browser.evaluate("document.querySelectorAll('#samples article').length") == min(total, 40)
        await _select(browser, "f-target", "base-vlm")
        base_only = await _count(browser)
        assert 0 < base_only < total
        await _select(browser, "f-score", "unsafe")
        base_unsafe = await _count(browser)
        assert 0 < base_unsafe < base_only
        await _select(browser, "f-category", "Illegal Activity")
        assert await _count(browser) <= base_unsafe
        for element_id in ("f-target", "f-score", "f-category"):
            await _select(browser, element_id, "")
        assert await _count(browser) == total
        assert await browser.evaluate("document.querySelectorAll('#samples img').length") > 0

        # hostile outputs: shown as text, nothing executed
        await browser.evaluate(
            "(() => { const i = document.getElementById('f-text'); i.value = '__pwned';"
            " i.dispatchEvent(new Event('input')); })()"
        )
        assert await _count(browser) > 0
        shown = await browser.evaluate("document.getElementById('samples').textContent")
        assert "<script>window.__pwned = 1" in shown
        assert "<img src=x onerror=" in shown
        assert "</script><script>window.__pwned = 3</script>" in shown
        assert await browser.evaluate("typeof window.__pwned") == "undefined"
        assert await browser.evaluate("document.title") == title != "pwned"
        assert await browser.evaluate("document.querySelectorAll('script').length") == 4
        assert await browser.evaluate("document.querySelectorAll('img:not([src^=\"data:image/\"])').length") == 0
        await browser.evaluate(
            "(() => { const i = document.getElementById('f-text'); i.value = '';"
            " i.dispatchEvent(new Event('input')); window.scrollTo(0, 0); })()"
        )

        assert browser.errors == []  # no console errors, exceptions or CSP violations

        shot = await browser.screenshot(tmp_path / "report.png", height=2000)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("SAFEMLRM_UPDATE_SCREENSHOT"):
            DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, DOCS_SCREENSHOT)


async def test_csp_blocks_an_injected_inline_script(report_dir: Path, tmp_path: Path) -> None:
    """Defence in depth: even markup that slipped into the page would not run under the page's CSP."""
    assert CHROMIUM is not None
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    tampered = tmp_path / "tampered.html"
    tampered.write_text(html.replace("<main", "<script>window.__pwned = 9</script><main", 1), encoding="utf-8")
    async with Browser(CHROMIUM) as browser:
        await browser.goto(tampered.resolve().as_uri())
        assert await browser.evaluate("typeof window.__pwned") == "undefined"
        assert any("Content Security Policy" in e for e in browser.errors)
        assert await browser.evaluate("document.getElementById('sample-count').dataset.count") != "0"
