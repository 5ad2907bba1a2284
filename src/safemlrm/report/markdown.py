"""report.md: the run's identity, headline numbers and every analysis table, as Markdown.

Every model, dataset or config text goes through `markdown_escape`, so an output holding Markdown or HTML
shows as text in any renderer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safemlrm.analysis.run_analysis import HEADLINE_PART, RunAnalysis
from safemlrm.analysis.tables import Table, fmt_num, fmt_pct, markdown_escape, to_markdown
from safemlrm.report._text import (
    TRUST_COLUMNS,
    TRUST_INTRO,
    blind_spot_sentence,
    coverage_sentence,
    headline_judge_text,
    headline_tax,
    headline_trust,
    identity_items,
    judge_name,
    judge_rates_text,
    judge_validations,
    judges_text,
    parse_status_names,
    refusal_text,
    sampling_sentences,
    tax_sentence,
    timestamp,
    trust_rows,
)


def _kv(pairs: Sequence[tuple[str, Any]]) -> list[str]:
    return [f"- **{markdown_escape(k)}**: {markdown_escape(str(v))}" for k, v in pairs if v not in (None, "", {})]


def identity_section(a: RunAnalysis) -> list[str]:
    run = a.run
    lines = ["## Run identity", ""]
    lines += _kv(identity_items(a, ">="))
    env = run.meta.get("environment") or {}
    if isinstance(env, dict) and env:
        lines += ["", "Environment: " + markdown_escape(", ".join(f"{k} {v}" for k, v in sorted(env.items())))]
    invocations = run.meta.get("invocations") or []
    if invocations:
        lines += ["", "| # | command | status | started | finished |", "|---:|:---|:---|:---|:---|"]
        for inv in invocations:
            cells = [
                str(inv.get("id", "")),
                str(inv.get("command", "")),
                str(inv.get("status", "")),
                timestamp(inv.get("started")),
                timestamp(inv.get("finished")),
            ]
            lines.append("| " + " | ".join(markdown_escape(c) for c in cells) + " |")
    lines += ["", "| target | model | kind | reasoning | base | identity |", "|:---|:---|:---|:---|:---|:---|"]
    for t in run.targets:
        ident = ", ".join(f"{k}={v}" for k, v in sorted(t.identity.items()))
        cells = [t.label, t.model, t.kind, "yes" if t.reasoning else "no", t.base or "", ident]
        lines.append("| " + " | ".join(markdown_escape(c) for c in cells) + " |")
    lines += ["", "| judge | kind | identity |", "|:---|:---|:---|"]
    for j in run.judges:
        ident = ", ".join(f"{k}={v}" for k, v in sorted(j.identity.items()))
        lines.append("| " + " | ".join(markdown_escape(c) for c in (j.label, j.kind, ident)) + " |")
    return [*lines, ""]


def headline_section(a: RunAnalysis) -> list[str]:
    lines = [
        "## Headline",
        "",
        f"Headline judge: {markdown_escape(headline_judge_text(a))}. "
        f"Judges that ran: {markdown_escape(judges_text(a))}.",
        "",
    ]
    for row in headline_tax(a):
        lines.append(f"- {markdown_escape(tax_sentence(row))}")
        lines.append(f"- {markdown_escape(blind_spot_sentence(a, row.group['reasoning']))}")
    for t in a.run.targets:
        stat = a.harm(a.harm_overall, judge=a.primary_judge or "", target=t.label, part=HEADLINE_PART)
        if stat is None:
            continue
        lines.append(
            f"- {markdown_escape(t.label)}: ASR {fmt_pct(stat.asr.value)}% "
            f"[{fmt_pct(stat.asr.low)}, {fmt_pct(stat.asr.high)}], HR {fmt_num(stat.hr.value)} "
            f"[{fmt_num(stat.hr.low)}, {fmt_num(stat.hr.high)}] on {stat.n} judged outputs"
            + (f" ({stat.n_failed} failed judgements excluded)" if stat.n_failed else "")
            + (f"; {a.generation_errors.get(t.label, 0)} generation errors" if a.generation_errors.get(t.label) else "")
        )
    for t in a.run.targets:  # over-refusal, or why there is no figure
        if a.benign_per_target.get(t.label) or a.over_refusal:
            lines.append(f"- {markdown_escape(t.label)}: {markdown_escape(refusal_text(a, t.label))}")
    lines.append(f"- {markdown_escape(coverage_sentence(a))}")
    if not a.tax:
        lines.append("- No reasoning/base pair in this run: set `base:` on a reasoning target to measure the tax.")
    lines += [f"- Note: {markdown_escape(n)}" for n in a.notes]
    lines += [f"- Trust: {markdown_escape(t)}" for t in headline_trust(a)]
    return [*lines, ""]


def trust_section(a: RunAnalysis) -> list[str]:
    """How far to trust these numbers: each judge's agreement with human labels beside the rates it gave."""
    lines = ["## How far to trust these numbers", "", markdown_escape(TRUST_INTRO), ""]
    lines += ["| judge | status | ASR it gave (whole output, per target) | note |", "|:---|:---|:---|:---|"]
    for label, kind, v in judge_validations(a):
        cells = [judge_name(label, kind), v.status_text, judge_rates_text(a, label), v.note]
        lines.append("| " + " | ".join(markdown_escape(c) for c in cells) + " |")
    lines += ["", "| " + " | ".join(TRUST_COLUMNS) + " |", "|" + ":---|" * len(TRUST_COLUMNS)]
    for row in trust_rows(a):
        lines.append("| " + " | ".join(markdown_escape(c) for c in row) + " |")
    return [*lines, ""]


def outputs_section(a: RunAnalysis) -> list[str]:
    """Outputs, generation errors and parse statuses per target (also in summary.json)."""
    statuses = parse_status_names(a)
    lines = [
        "## Outputs and parse status",
        "",
        "Parse status of each output: ok = reasoning and answer split; no_reasoning = no reasoning found; "
        "unterminated = cut inside its reasoning or answer; error = no output to parse.",
        "",
        "| target | outputs | benign prompts | generation errors | " + " | ".join(statuses) + " |",
        "|:---|" + "---:|" * (3 + len(statuses)),
    ]
    for t in a.run.targets:
        counts = a.parse_status.get(t.label, {})
        cells = [
            markdown_escape(t.label),
            str(a.records_per_target.get(t.label, 0)),
            str(a.benign_per_target.get(t.label, 0)),
            str(a.generation_errors.get(t.label, 0)),
            *(str(counts.get(s, 0)) for s in statuses),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def matrix_section(a: RunAnalysis) -> list[str]:
    lines = []
    for sc in a.self_correction:
        if sc.group["scope"] != "overall" or sc.group["judge"] != a.primary_judge:
            continue
        lines += [
            f"Score transitions of {markdown_escape(sc.group['target'])} (rows: reasoning score, "
            f"columns: answer score, {sc.n} items):",
            "",
            "| reasoning \\\\ answer | 0 | 1 | 2 | 3 | 4 | 5 |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for score, counts in enumerate(sc.matrix):
            lines.append(f"| {score} | " + " | ".join(str(c) for c in counts) + " |")
        lines.append("")
    return lines


def sampling_section(a: RunAnalysis) -> list[str]:
    """ASR@1 and ASR@k when targets draw several samples per probe (nothing otherwise)."""
    sentences = sampling_sentences(a)
    if not sentences:
        return []
    intro = (
        "ASR@1 is the mean over probes of the share of unsafe samples; ASR@k counts a probe unsafe when any "
        "of its k samples is. Intervals: bootstrap over probes. Truncated samples (reasoning cut by the token "
        "limit) are counted apart, not scored."
    )
    return ["## Several samples per probe", "", intro, "", *[f"- {markdown_escape(s)}" for s in sentences], ""]


def render_markdown(a: RunAnalysis, tables: Sequence[Table]) -> str:
    by_name = {t.name: t for t in tables}
    title = markdown_escape(str(a.run.config.get("name") or "run"))
    lines = [f"# safemlrm report: {title}", ""]
    lines += headline_section(a)
    lines += trust_section(a)
    lines += sampling_section(a)
    lines += outputs_section(a)
    lines += identity_section(a)
    sections = [
        ("harm_overview", "HR and ASR", ""),
        ("harm_by_category", "Per scenario", ""),
        ("harm_by_attack", "Per attack", ""),
        (
            "reasoning_tax",
            "Reasoning tax",
            "Reasoning model minus base model on the same probes. `whole vs whole` compares all text each model "
            "shows; `answer vs whole` scores only the reasoning model's final answer.",
        ),
        ("self_correction", "Reasoning against answer", ""),
        ("over_refusal", "Over-refusal", ""),
        ("judge_agreement", "Judge agreement", ""),
        ("study_layout", "The study's layout", ""),
    ]
    for name, heading, intro in sections:
        table = by_name.get(name)
        if table is None:
            continue
        lines += [f"## {heading}", ""]
        if intro:
            lines += [intro, ""]
        lines += [f"{markdown_escape(table.title)}", "", to_markdown(table)]
        if name == "self_correction":
            lines += matrix_section(a)
    lines += ["Tables as CSV and LaTeX (booktabs): `tables/`. Machine-readable numbers: `summary.json`.", ""]
    return "\n".join(lines)
