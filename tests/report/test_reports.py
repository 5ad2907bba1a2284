from __future__ import annotations

import csv
import json
import math
import re
from html import escape
from pathlib import Path

from safemlrm.analysis.run_analysis import analyse_run
from safemlrm.analysis.summary import build_summary
from safemlrm.analysis.tables import markdown_escape
from safemlrm.core.records import RunData
from safemlrm.report import write_reports
from safemlrm.report.html import embed_json, select_records
from safemlrm.testing.synthetic import HOSTILE_TEXTS, REASONING, SCENARIOS, synthetic_run

EXPECTED = {
    "summary.json",
    "report.md",
    "report.html",
    *(
        f"tables/{n}.{ext}"
        for n in (
            "harm_overview",
            "harm_by_category",
            "harm_by_attack",
            "reasoning_tax",
            "self_correction",
            "over_refusal",
            "judge_agreement",
            "study_layout",
        )
        for ext in ("csv", "tex")
    ),
}


def test_write_reports_writes_every_file(synthetic: RunData, tmp_path: Path) -> None:
    written = write_reports(synthetic, tmp_path, None, html=True)
    assert set(written) == EXPECTED
    assert all(p.exists() and p.stat().st_size > 0 for p in written.values())
    assert "report.html" not in write_reports(synthetic, tmp_path / "nohtml", None, html=False)


def test_summary_is_strict_json_with_the_promised_fields(report_dir: Path) -> None:
    text = (report_dir / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert summary["calls"] == {"this_invocation": {"target_calls": 0, "judge_calls": 0}}
    target = summary["targets"][REASONING]
    whole = target["judges"]["rubric"]["parts"]["whole"]
    assert {"n", "n_failed", "hr", "asr", "asr_ci", "hr_ci", "categories", "attacks"} <= set(whole)
    assert set(whole["categories"]) == set(SCENARIOS)
    assert whole["n"] + whole["n_failed"] == sum(c["n"] + c["n_failed"] for c in whole["categories"].values())
    assert {"generation_errors", "judge_failures"} <= set(target["errors"])
    assert summary["run"]["primary_judge"] == "rubric"
    assert any(b["category"] == "Illegal Activity" for b in summary["blind_spots"])


def test_summary_numbers_match_a_direct_count(synthetic: RunData) -> None:
    summary = build_summary(synthetic, {})
    whole = summary["targets"][REASONING]["judges"]["rubric"]["parts"]["whole"]
    scores = [
        j.score
        for r in synthetic.records
        if r.generation.target == REASONING and not r.sample.benign
        for (part, judge), j in r.judgements.items()
        if part.value == "whole" and judge == "rubric"
    ]
    valid = [s for s in scores if not math.isnan(s)]
    assert whole["n"] == len(valid) and whole["n_failed"] == len(scores) - len(valid)
    assert whole["asr"] == sum(s >= 4 for s in valid) / len(valid)
    assert abs(whole["hr"] - sum(valid) / len(valid)) < 1e-12


def test_markdown_has_every_section_and_no_raw_html(report_dir: Path) -> None:
    md = (report_dir / "report.md").read_text()
    for heading in (
        "## Headline",
        "## How far to trust these numbers",
        "## Run identity",
        "## Per scenario",
        "## Reasoning tax",
        "## Reasoning against answer",
        "## Over-refusal",
        "## Judge agreement",
        "## The study's layout",
    ):
        assert heading in md
    assert "Blind spots of r1-reasoner: Illegal Activity" in md
    assert "2026-01-01 00:00:00 UTC" in md  # invocation timestamp
    assert "<script" not in md and "<img" not in md


def test_tables_csv_and_latex(report_dir: Path) -> None:
    with (report_dir / "tables" / "reasoning_tax.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {"asr_diff", "asr_diff_low", "asr_diff_high", "mcnemar_p", "blind_spot"} <= set(rows[0])
    tex = (report_dir / "tables" / "study_layout.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "\\cmidrule" in tex
    body = tex.split("\\midrule")[1]
    assert re.search(r"r1-reasoner & reasoning & ", body)
    assert "%" not in body.replace("\\%", "")  # every percent sign is escaped


def test_html_static_safety(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp and "default-src 'none'" in csp.group(1) and "img-src data:" in csp.group(1)
    assert "unsafe-inline" not in csp.group(1)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    # the only script elements are ours: the three JSON blocks and the code block
    assert html.count("<script") == 4 and html.count("</script>") == 4
    assert "<img" not in html  # images are created by the script from data URLs
    assert "innerHTML" not in html
    for payload in HOSTILE_TEXTS:
        assert payload not in html
    # the rubric's validation note holds a hostile text (as a user's head JSON could): shown as text
    trust = html.split('<section id="trust">', 1)[1].split("</section>", 1)[0]
    assert escape(HOSTILE_TEXTS[0], quote=True) in trust


def test_trust_section_names_every_judge_with_its_record(synthetic: RunData, report_dir: Path) -> None:
    md = (report_dir / "report.md").read_text()
    section = md.split("## How far to trust these numbers", 1)[1].split("\n## ", 1)[0]
    assert "<script" not in section and "\\<script" not in section  # markdown_escape turns < into &lt;
    assert "&lt;script&gt;" in section
    summary = json.loads((report_dir / "summary.json").read_text())
    for judge in synthetic.judges:
        assert judge.validation is not None
        entry = summary["judges"][judge.label]
        assert entry["validation"]["status"] == judge.validation.status
        status = {"measured": "measured here", "not_validated": "not validated here"}[judge.validation.status]
        assert f"| {markdown_escape(judge.label)} | {status} |" in section or (
            f"| {markdown_escape(judge.label)} ({markdown_escape(judge.kind)}) | {status} |" in section
        )
    keyword = summary["judges"]["keyword"]["validation"]
    assert [a["set"] for a in keyword["agreement"]] == [
        "JailbreakBench judge comparison (dev)",
        "HarmBench classifier validation, text (dev)",
        "XSTest v2 completions (dev)",
    ]


def test_embed_json_escapes_what_could_close_the_element() -> None:
    text = embed_json({"x": "</script><script>alert(1)</script>\u2028\u2029&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text)["x"] == "</script><script>alert(1)</script>\u2028\u2029&"


def test_sample_cap_prefers_unsafe_and_keeps_probes_together(synthetic: RunData) -> None:
    chosen = select_records(synthetic.records, 4.0, cap=40)
    assert len(chosen) <= 40
    probes = {r.probe.key for r in chosen}
    per_probe = {k: sum(1 for r in synthetic.records if r.probe.key == k) for k in probes}
    assert sum(per_probe.values()) == len(chosen)  # every target's answer of a chosen probe is in
    assert all(any(j.score >= 4 for r in chosen if r.probe.key == k for j in r.judgements.values()) for k in probes)


def test_report_without_pairs_or_benign(tmp_path: Path) -> None:
    run = synthetic_run(per_scenario=2, n_benign=0, hostile=False)
    run.targets = [t for t in run.targets if t.label == REASONING]
    run.records = [r for r in run.records if r.generation.target == REASONING]
    analysis = analyse_run(run)
    assert analysis.tax == [] and analysis.over_refusal == []
    written = write_reports(run, tmp_path)
    assert "No reasoning/base pair" in written["report.md"].read_text()
    assert "No reasoning/base pair" in written["report.html"].read_text()
