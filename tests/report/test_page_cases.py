"""The report page with long labels, many targets and non-ASCII text: every figure agrees with the others,
nothing is clipped (checked in headless Chromium), and benign prompts are not coloured as harm.

SAFEMLRM_UPDATE_SCREENSHOT=1 refreshes docs/img/report-{case}.png (one per case, palette-reduced PNGs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from tests.report._cdp import Browser, find_chromium

from safemlrm.analysis.harm import unsafe_bin
from safemlrm.analysis.run_analysis import HEADLINE_PART, RunAnalysis, analyse_run
from safemlrm.analysis.tables import markdown_escape
from safemlrm.core.records import Record, RunData, TargetInfo
from safemlrm.core.trust import JudgeValidation, agreement_cells, known_validation, trust_sentence
from safemlrm.report import write_reports
from safemlrm.report._text import judge_name
from safemlrm.report.html import sample_payload
from safemlrm.testing.synthetic import BASE, REASONING, synthetic_run

CHROMIUM = find_chromium()
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"

LONG = "deepseek-ai/DeepSeek-R1-Distill-Llama-8B-abliterated-uncensored-v2"
CASES = {
    # name: (pairs, reasoning label, base label, scenario prefix)
    "long-labels": (2, LONG + "-{i}", "meta-llama/Llama-3.1-8B-Instruct-base-model-{i}", "A very long scenario name: "),
    "many-targets": (6, "r1-distill-{i}", "base-{i}", ""),
    "non-ascii": (2, "深度求索-推理模型-{i}", "Базовая-модель-{i}", "场景 · "),
}


def case_run(name: str) -> RunData:
    """The synthetic run, its pair copied to `pairs` reasoning/base pairs with the case's labels."""
    pairs, r_label, b_label, prefix = CASES[name]
    base = synthetic_run(per_scenario=3, n_benign=6, hostile=False, nan_rate=0.0)
    targets: list[TargetInfo] = []
    records: list[Record] = []
    for i in range(pairs):
        labels = {REASONING: r_label.format(i=i), BASE: b_label.format(i=i)}
        for t in base.targets:
            targets.append(dataclasses.replace(t, label=labels[t.label], base=labels[t.base] if t.base else None))
        for rec in base.records:
            sample = rec.sample
            if prefix and not sample.benign:
                sample = sample.model_copy(update={"category": prefix + sample.category})
            generation = rec.generation.model_copy(update={"target": labels[rec.generation.target]})
            records.append(dataclasses.replace(rec, sample=sample, generation=generation))
    config = {**base.config, "name": f"page case: {name}"}
    return dataclasses.replace(base, targets=targets, records=records, config=config)


def _headline_cells(a: RunAnalysis) -> dict[str, tuple[int, int]]:
    return {
        s.group["target"]: (s.n, s.n_unsafe)
        for s in a.harm_overall
        if s.group["judge"] == a.primary_judge and s.group["part"] == HEADLINE_PART
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_figure_on_the_page_agrees(name: str, tmp_path: Path) -> None:
    run = case_run(name)
    written = write_reports(run, tmp_path)
    check_page_agrees(run, written)
    # one card per pair plus the coverage card: 12 targets do not open with 30 cards
    html = written["report.html"].read_text(encoding="utf-8")
    assert html.count('<div class="card ') == len(run.targets) // 2 + 1


def check_page_agrees(run: RunData, written: dict[str, Path]) -> None:
    """Every figure of report.html and report.md equals the analysis object's and summary.json's."""
    a = analyse_run(run, n_resamples=200)
    html = written["report.html"].read_text(encoding="utf-8")
    md = written["report.md"].read_text(encoding="utf-8")
    summary = json.loads(written["summary.json"].read_text(encoding="utf-8"))
    cells = _headline_cells(a)

    # the coverage card counts what the harm figures cover, not every output
    card = re.search(r'Harmful prompts judged</div><div class="card-value">(\d+)</div>', html)
    assert card is not None and int(card.group(1)) == sum(n for n, _ in cells.values())
    assert int(card.group(1)) < len(run.records)
    # the per-target table and report.md give the ASR that summary.json holds
    table = html.split('id="target-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>(?:reasoning|base)</td><td class=\"num\">([\d.]+) \[", table)
    assert len(rows) == len([t for t in run.targets if t.label in cells])
    for label, asr in rows:
        target = next(t.label for t in run.targets if _esc(t.label) == label)
        whole = summary["targets"][target]["judges"][a.primary_judge]["parts"][HEADLINE_PART]
        assert float(asr) == pytest.approx(100 * whole["asr"], abs=0.05)
        n, unsafe = cells[target]
        assert whole["n"] == n and whole["n_unsafe"] == unsafe
        assert f"ASR {100 * whole['asr']:.1f}% " in md
    # each heatmap's dashed box holds the self-corrected items the text beside it counts
    edge = unsafe_bin(a.threshold)
    boxes = [int(x) for x in re.findall(r'class="region" rx="4" data-count="(\d+)"', html)]
    overall = [s for s in a.self_correction if s.group["scope"] == "overall" and s.group["judge"] == a.primary_judge]
    assert len(boxes) == len(overall) > 0
    for box, sc in zip(boxes, overall, strict=True):
        assert box == sum(sc.matrix[i][j] for i in range(edge, 6) for j in range(edge))
        assert box == round(sc.self_corrected.value * sc.n)
        note = f"self-corrected {100 * sc.self_corrected.value:.1f}% [" if sc.n else ""
        assert note in html
    # over-refusal never reads "of 0 benign prompts"
    assert "of 0 benign" not in md and "of 0 benign" not in html
    # parse statuses are on the page and in report.md, not only in summary.json
    assert 'id="target-table"' in html and "## Outputs and parse status" in md
    for t in run.targets:
        assert summary["targets"][t.label]["parse_status"] == a.parse_status.get(t.label, {})
    check_trust_agrees(run, a, html, md, summary)


def check_trust_agrees(run: RunData, a: RunAnalysis, html: str, md: str, summary: dict[str, Any]) -> None:
    """The trust section of both pages shows every judge's record as summary.json holds it, beside the
    rates summary.json gives for that judge."""
    page = html.split('<section id="trust">', 1)[1].split("</section>", 1)[0]
    md_section = md.split("## How far to trust these numbers", 1)[1].split("\n## ", 1)[0]
    table = page.split('id="trust-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", table)
    assert len(rows) == sum(max(1, len(known_validation(j.validation).agreement)) for j in run.judges)
    for judge in run.judges:
        entry = summary["judges"][judge.label]
        record = JudgeValidation.model_validate(entry["validation"])
        assert record == known_validation(judge.validation)
        assert entry["trust"] == trust_sentence(judge.label, record)
        for row in record.agreement:  # each figure, with its interval, on both pages
            cells = "</td><td>".join(
                _esc(c) for c in [judge_name(judge.label, judge.kind), record.status_text, *agreement_cells(row)]
            )
            assert cells in rows
            assert " | ".join(markdown_escape(c) for c in agreement_cells(row)) in md_section
        if not record.agreement:
            assert f"<td>{_esc(record.status_text)}</td>" in page and _esc(record.note) in page
        # the rates beside it are summary.json's, and the page shows them
        for target, parts in entry["rates"].items():
            for part, cell in parts.items():
                same = summary["targets"][target]["judges"][judge.label]["parts"][part]
                assert (cell["asr"], cell["asr_ci"], cell["n"]) == (same["asr"], same["asr_ci"], same["n"])
            whole = parts.get(HEADLINE_PART)
            if whole is not None:
                shown = f"{target} {100 * whole['asr']:.1f}% [{100 * whole['asr_ci'][0]:.1f}, "
                assert _esc(shown) in page and markdown_escape(shown) in md_section


def _esc(text: str) -> str:
    from html import escape

    return escape(text, quote=True)


def test_over_refusal_says_why_there_is_no_figure(tmp_path: Path) -> None:
    run = case_run("many-targets")
    # no judge that tells refusals: only the rubric judge ran
    no_refusal = dataclasses.replace(
        run,
        judges=[j for j in run.judges if j.kind != "keyword"],
        records=[
            dataclasses.replace(r, judgements={k: v for k, v in r.judgements.items() if k[1] != "keyword"})
            for r in run.records
        ],
    )
    written = write_reports(no_refusal, tmp_path)
    md = written["report.md"].read_text(encoding="utf-8")
    html = written["report.html"].read_text(encoding="utf-8")
    assert "-% of 0" not in md and "–% of 0" not in md and "of 0 benign" not in html
    assert "no over-refusal figure: 12 benign prompts, but no judge tells refusals" in md
    assert "no judge tells refusals" in html
    # a target that had no benign prompts says so instead of "0 benign prompts"
    only_harmful = dataclasses.replace(run, records=[r for r in run.records if not r.sample.benign])
    md2 = write_reports(only_harmful, tmp_path / "b")["report.md"].read_text(encoding="utf-8")
    assert "of 0 benign" not in md2


def test_benign_outputs_are_badged_refused_or_answered_not_harmful() -> None:
    run = case_run("many-targets")
    a = analyse_run(run, n_resamples=50)
    items, _, _ = sample_payload(a)
    benign = [i for i in items if i["benign"]]
    assert benign and all(i["ref"] in ("refused", "answered") for i in benign)
    assert all(i["ref"] is None for i in items if not i["benign"])


async def _page_checks(browser: Browser) -> dict[str, object]:
    return dict(
        await browser.evaluate(
            """(() => {
  const clipped = [];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const vb = svg.viewBox.baseVal;
    for (const t of svg.querySelectorAll('text')) {
      if (t.hasAttribute('transform')) continue;  // rotated axis titles: their box is pre-rotation
      const b = t.getBBox();
      if (b.width > 0 && (b.x < vb.x - 0.5 || b.x + b.width > vb.x + vb.width + 0.5)) clipped.push(t.textContent);
    }
  }
  const headers = Array.from(document.querySelectorAll('th'))
    .filter((th) => th.scrollWidth > th.clientWidth + 1).map((th) => th.textContent);
  const benignUnsafe = Array.from(document.querySelectorAll('#samples article'))
    .filter((a) => Array.from(a.querySelectorAll('.tag')).some((t) => t.textContent === 'benign'))
    .filter((a) => a.querySelector('.score.unsafe')).length;
  return {clipped, headers, benignUnsafe, cards: document.querySelectorAll('.card').length};
})()"""
        )
    )


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("name", sorted(CASES))
async def test_page_case_in_chromium(name: str, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    run = case_run(name)
    written = write_reports(run, tmp_path)
    async with Browser(CHROMIUM, width=1280, height=900) as browser:
        await browser.goto(written["report.html"].resolve().as_uri())
        checks = await _page_checks(browser)
        assert checks["clipped"] == [], checks["clipped"]
        assert checks["headers"] == [], checks["headers"]
        assert checks["benignUnsafe"] == 0
        # show benign samples first in the browser and check their badges too
        await browser.evaluate(
            "(() => { const i = document.getElementById('f-text'); i.value = 'python process';"
            " i.dispatchEvent(new Event('input')); })()"
        )
        benign = await browser.evaluate(
            "Array.from(document.querySelectorAll('#samples article .sample-head .score')).map((b) => b.className)"
        )
        assert benign and all(c in ("score refused", "score answered") for c in benign)
        await browser.evaluate(
            "(() => { const i = document.getElementById('f-text'); i.value = '';"
            " i.dispatchEvent(new Event('input')); window.scrollTo(0, 0); })()"
        )
        assert browser.errors == []
        shot = await browser.screenshot(tmp_path / f"report-{name}.png", height=1500)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("SAFEMLRM_UPDATE_SCREENSHOT"):
            from PIL import Image

            with Image.open(shot) as img:  # palette PNG: a fifth of the size, text stays sharp
                img.convert("RGB").quantize(colors=64).save(DOCS_IMG / f"report-{name}.png", optimize=True)
