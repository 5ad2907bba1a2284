"""Plain-language sentences shared by the Markdown and HTML reports."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from safemlrm.analysis.reasoning_tax import LESS_SAFE, NOTHING, SAFER, PairedComparison, tax_verdict
from safemlrm.analysis.run_analysis import HEADLINE_PART, RunAnalysis
from safemlrm.analysis.tables import fmt_p, fmt_pct, fmt_ratio
from safemlrm.core.trust import (
    AGREEMENT_COLUMNS,
    JudgeValidation,
    agreement_cells,
    headline_trust_lines,
    known_validation,
)


def timestamp(value: Any) -> str:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def identity_items(a: RunAnalysis, at_least: str) -> list[tuple[str, Any]]:
    """The run's identity as (name, value) pairs, shared by the HTML and Markdown reports."""
    run, cfg = a.run, a.run.config
    return [
        ("config", cfg.get("name", "")),
        ("description", cfg.get("description", "")),
        ("run directory", run.run_dir),
        ("seed", run.meta.get("seed", cfg.get("seed"))),
        ("ASR threshold", f"score {at_least} {a.threshold:g}"),
        ("headline judge", headline_judge_text(a)),
        ("judges", judges_text(a)),
        ("bootstrap", f"{a.n_resamples} resamples, seed {a.seed}"),
    ]


def headline_judge_text(a: RunAnalysis) -> str:
    """ "offline (the first harm judge of the config; ...)": which judge the headline uses and why."""
    if a.primary_judge is None:
        return f"none ({a.primary_reason})" if a.primary_reason else "none"
    return f"{a.primary_judge} ({a.primary_reason})" if a.primary_reason else a.primary_judge


def judges_text(a: RunAnalysis) -> str:
    """Every judge of the run with its kind, in config order."""
    return ", ".join(f"{j.label} ({j.kind})" if j.kind != j.label else j.label for j in a.run.judges) or "none"


def headline_tax(a: RunAnalysis) -> list[PairedComparison]:
    """The overall whole-vs-whole tax row of each pair, for the primary judge."""
    return [
        r
        for r in a.tax
        if r.group["scope"] == "overall"
        and r.group["judge"] == a.primary_judge
        and r.group["reasoning_part"] == HEADLINE_PART
    ]


def blind_spots(a: RunAnalysis, reasoning: str) -> list[PairedComparison]:
    return [
        r
        for r in a.tax
        if r.blind_spot
        and r.group["scope"] == "category"
        and r.group["judge"] == a.primary_judge
        and r.group["reasoning_part"] == HEADLINE_PART
        and r.group["reasoning"] == reasoning
    ]


def p_text(p: float) -> str:
    text = fmt_p(p)
    return text.replace("<", "< ") if text.startswith("<") else f"= {text}"


def pp(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:+.1f} pp"


def tax_sentence(row: PairedComparison) -> str:
    """The headline sentence of a comparison: its claim follows `reasoning_tax.tax_verdict`."""
    g = row.group
    d = row.asr_diff
    verdict = tax_verdict(row)
    if verdict == NOTHING:
        return (
            f"{g['reasoning']} and its base {g['base']}: nothing to compare: no probe was scored for both "
            f"({row.n_unpaired} judgements without a partner)."
        )
    figures = (
        f"ASR {fmt_pct(row.asr_first.value)}% vs {fmt_pct(row.asr_second.value)}%, a difference of "
        f"{pp(d.value)} (95% CI {pp(d.low)} to {pp(d.high)}), ratio {fmt_ratio(row.asr_ratio)}, "
        f"exact McNemar p {p_text(row.mcnemar_p)}"
    )
    pairs = f"{row.n_pairs} paired probe{'s' if row.n_pairs != 1 else ''}"
    if verdict in (LESS_SAFE, SAFER):
        return (
            f"{g['reasoning']} is {verdict} than its base {g['base']} on {pairs}: {figures}; the paired test "
            "and the interval agree."
        )
    return (
        f"{g['reasoning']} and its base {g['base']} are not distinguishable on {pairs}: {figures}. A claim "
        "needs both a significant paired test and an interval that excludes 0."
    )


def blind_spot_sentence(a: RunAnalysis, reasoning: str) -> str:
    spots = blind_spots(a, reasoning)
    if not spots:
        return f"No blind spot for {reasoning}: no scenario's increase is both significant and twice the average."
    parts = [
        f"{s.group['category']} ({pp(s.asr_diff.value)}, {fmt_ratio(s.asr_ratio)}; "
        f"base {fmt_pct(s.asr_second.value)}% -> {fmt_pct(s.asr_first.value)}%)"
        for s in sorted(spots, key=lambda s: -s.asr_diff.value)
    ]
    return f"Blind spots of {reasoning}: " + "; ".join(parts) + "."


def sampling_sentences(a: RunAnalysis) -> list[str]:
    """ASR@1 and ASR@k per target (headline judge and part), and the sampled tax; empty for k = 1 runs."""
    lines: list[str] = []
    for s in a.sampled:
        g = s.group
        if g["judge"] != a.primary_judge or g["part"] != HEADLINE_PART:
            continue
        lines.append(
            f"{g['target']}: ASR@1 {fmt_pct(s.asr_at_1.value)}% [{fmt_pct(s.asr_at_1.low)}, "
            f"{fmt_pct(s.asr_at_1.high)}], ASR@{s.k} {fmt_pct(s.asr_at_k.value)}% [{fmt_pct(s.asr_at_k.low)}, "
            f"{fmt_pct(s.asr_at_k.high)}] over {s.n_probes} probes ({s.n_samples} samples); samples agree "
            f"{fmt_pct(s.agreement.value)}% of the time, all {s.k} agree on {fmt_pct(s.unanimous)}% of probes"
            + (f"; {s.n_truncated} truncated samples counted apart" if s.n_truncated else "")
            + (f"; {s.n_failed} failed judgements left out" if s.n_failed else "")
        )
    for t in a.sampled_tax:
        g = t.group
        if g["judge"] != a.primary_judge or (g["reasoning_part"], g["base_part"]) != (HEADLINE_PART, HEADLINE_PART):
            continue
        d1, dk = t.asr_at_1_diff, t.asr_at_k_diff
        lines.append(
            f"{g['reasoning']} minus its base {g['base']} over {t.n_probes} paired probes: ASR@1 {pp(d1.value)} "
            f"(95% CI {pp(d1.low)} to {pp(d1.high)}), ASR@k {pp(dk.value)} (95% CI {pp(dk.low)} to {pp(dk.high)})"
        )
    return lines


def refusal_text(a: RunAnalysis, target: str) -> str:
    """Over-refusal of one target in words; says why when there is no figure."""
    n_benign = a.benign_per_target.get(target, 0)
    ref = next((r for r in a.over_refusal if r.group["target"] == target), None)
    if n_benign == 0:
        return "no benign prompts, so no over-refusal figure"
    if ref is None or ref.n == 0:
        if not a.over_refusal:
            return (
                f"no over-refusal figure: {n_benign} benign prompts, but no judge tells refusals "
                "(add the keyword or refusal judge)"
            )
        return f"no over-refusal figure: none of its {n_benign} benign outputs got a refusal judgement"
    return (
        f"refuses {fmt_pct(ref.refusal.value)}% of {ref.n} benign prompts "
        f"[{fmt_pct(ref.refusal.low)}, {fmt_pct(ref.refusal.high)}] (judge {ref.group['judge']})"
    )


def refusal_cell(a: RunAnalysis, target: str) -> str:
    """The short form of `refusal_text` for a table cell: "25.0% [8.9, 53.2] of 12", or why there is none."""
    n_benign = a.benign_per_target.get(target, 0)
    ref = next((r for r in a.over_refusal if r.group["target"] == target), None)
    if n_benign == 0:
        return "no benign prompts"
    if ref is None or ref.n == 0:
        return "no refusal judge" if not a.over_refusal else "not judged"
    return f"{fmt_pct(ref.refusal.value)}% [{fmt_pct(ref.refusal.low)}, {fmt_pct(ref.refusal.high)}] of {ref.n}"


def parse_status_names(a: RunAnalysis) -> list[str]:
    """Every parse status seen, `ok` first."""
    seen = {status for counts in a.parse_status.values() for status in counts}
    return sorted(seen, key=lambda s: (s != "ok", s))


def coverage(a: RunAnalysis) -> dict[str, int]:
    """What the headline figures cover: harmful outputs the headline judge scored on the whole output,
    its failed judgements, benign outputs (over-refusal), generation errors, and all outputs."""
    stats = [s for s in a.harm_overall if s.group["judge"] == a.primary_judge and s.group["part"] == HEADLINE_PART]
    return {
        "harmful_judged": sum(s.n for s in stats),
        "failed": sum(s.n_failed for s in stats),
        "benign": sum(a.benign_per_target.values()),
        "errors": sum(a.generation_errors.values()),
        "outputs": sum(a.records_per_target.values()),
    }


def coverage_sentence(a: RunAnalysis) -> str:
    c = coverage(a)
    return (
        f"{c['outputs']} outputs: {c['harmful_judged']} answers to harmful prompts scored by the headline judge "
        f"(the HR and ASR figures; {c['failed']} failed judgements excluded), {c['benign']} answers to benign "
        f"prompts (over-refusal), {c['errors']} generation errors."
    )


# ---------------------------------------------------------------- how far to trust the judges

TRUST_INTRO = (
    "Every rate in this report is a judge's verdict, not a person's. Each judge's agreement with human "
    "labels on named sets (accuracy with its 95% interval, and how often it misses a harmful answer: its "
    "false negatives) says how far its numbers can be trusted; a judge not validated here may be right or "
    "wrong, nothing measures which."
)
TRUST_COLUMNS = ("judge", "status", *AGREEMENT_COLUMNS)


def judge_validations(a: RunAnalysis) -> list[tuple[str, str, JudgeValidation]]:
    """(label, kind, validation record) of every judge of the run, in config order."""
    return [(j.label, j.kind, known_validation(j.validation)) for j in a.run.judges]


def judge_name(label: str, kind: str) -> str:
    return label if label == kind else f"{label} ({kind})"


def trust_rows(a: RunAnalysis) -> list[list[str]]:
    """One row per figure of each judge (set, agreement with its interval, ...); one row "not validated
    here" for a judge without figures. Published figures that do not hold for the configured judge model
    are listed too, under the status "not validated here", with the model they were measured with."""
    rows: list[list[str]] = []
    for label, kind, v in judge_validations(a):
        name = judge_name(label, kind)
        if not v.agreement:
            rows.append([name, v.status_text, "", "", "", "", "", "", v.note])
            continue
        rows += [[name, v.status_text, *agreement_cells(r)] for r in v.agreement]
    return rows


def judge_rates_text(a: RunAnalysis, label: str) -> str:
    """The ASR a judge gave each target on the whole output: "qwen 12.5% [3.5, 36.0] of 16; ..."."""
    parts = [
        f"{s.group['target']} {fmt_pct(s.asr.value)}% [{fmt_pct(s.asr.low)}, {fmt_pct(s.asr.high)}] of {s.n}"
        for s in a.harm_overall
        if s.group["judge"] == label and s.group["part"] == HEADLINE_PART
    ]
    return "; ".join(parts) or "no harmful output scored"


def headline_trust(a: RunAnalysis) -> list[str]:
    """How far the headline judge can be trusted, and what to do about it (empty without a headline judge)."""
    for label, _kind, v in judge_validations(a):
        if label == a.primary_judge:
            return headline_trust_lines(label, v)
    return []
