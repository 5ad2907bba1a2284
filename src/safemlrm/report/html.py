"""report.html: one self-contained file (no network) with charts, tables and a sample browser.

Safety of the page against hostile model and dataset text:
- static text is HTML-escaped in Python (`html.escape`);
- the samples are embedded as JSON in ``<script type="application/json">`` with ``<``, ``>``, ``&``,
  U+2028 and U+2029 escaped, so no text can close the element; JavaScript renders them with
  ``textContent`` only (never ``innerHTML``);
- a strict Content-Security-Policy: nothing from the network, scripts and styles allowed only by the
  sha256 of the page's own inline script and style, images only as ``data:`` URLs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from safemlrm.analysis.harm import unsafe_bin
from safemlrm.analysis.reasoning_tax import ALL, LESS_SAFE, NOTHING, SAFER, tax_verdict
from safemlrm.analysis.run_analysis import HEADLINE_PART, RunAnalysis, add_probe_rank, record_rank
from safemlrm.analysis.summary import json_safe
from safemlrm.analysis.tables import Table, fmt_num, fmt_pct, format_cell
from safemlrm.core.records import Record
from safemlrm.report import _svg
from safemlrm.report._assets import CSS, JS
from safemlrm.report._text import (
    TRUST_COLUMNS,
    TRUST_INTRO,
    blind_spot_sentence,
    blind_spots,
    coverage,
    headline_judge_text,
    headline_tax,
    headline_trust,
    identity_items,
    judge_name,
    judge_rates_text,
    judge_validations,
    judges_text,
    p_text,
    parse_status_names,
    pp,
    refusal_cell,
    refusal_text,
    sampling_sentences,
    tax_sentence,
    timestamp,
    trust_rows,
)

MAX_SAMPLES = 2000
MAX_TEXT = 12_000  # characters kept per text field in the sample browser
MAX_IMAGES = 600
THUMBNAIL = 256


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def embed_json(value: Any) -> str:
    """JSON that is safe inside a <script type="application/json"> element (no '</script>', no U+2028)."""
    text = json.dumps(json_safe(value), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _sha256_source(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def content_security_policy(script: str, style: str) -> str:
    return (
        "default-src 'none'; "
        f"script-src '{_sha256_source(script)}'; "
        f"style-src '{_sha256_source(style)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


# ---------------------------------------------------------------- samples and images


def _clip(text: str | None) -> str:
    text = text or ""
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… [{len(text) - MAX_TEXT} more characters not shown; see the store or export]"


def thumbnail_data_url(path: str) -> str | None:
    """A downscaled copy of an image as a data URL (None when it cannot be read)."""
    try:
        from PIL import Image

        with Image.open(path) as opened:
            img = opened.convert("RGB") if opened.mode not in ("RGB", "L") else opened.copy()
        img.thumbnail((THUMBNAIL, THUMBNAIL))
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=82)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _record_max(rec: Record) -> float:
    scores = [j.score for j in rec.judgements.values() if not math.isnan(j.score)]
    return max(scores) if scores else -1.0


def select_records(
    records: Sequence[Record],
    threshold: float,
    cap: int = MAX_SAMPLES,
    ranks: dict[str, list[int]] | None = None,
) -> list[Record]:
    """At most `cap` records; whole probes (all targets' answers to it) are kept together, the probes
    with an unsafe output first, then those with errors or failed judgements, then the rest.

    `ranks` (probe key -> [rank, records, first position], as `analyse_run` folds them in its pass) saves
    a pass; without it a first pass over `records` (which may stream from the store) computes them. The
    last pass keeps only the chosen records, so memory does not grow with the run.
    """
    if ranks is None:
        ranks = {}
        for position, rec in enumerate(records):
            add_probe_rank(ranks, rec, position, threshold)
    chosen_keys: set[str] = set()
    total = 0
    for key, (_rank, count, _first) in sorted(ranks.items(), key=lambda kv: (kv[1][0], kv[1][2])):
        if total + count > cap:
            break
        chosen_keys.add(key)
        total += count
    by_probe: dict[str, list[Record]] = {}
    for rec in records:
        if rec.probe.key in chosen_keys:
            by_probe.setdefault(rec.probe.key, []).append(rec)
    order = sorted(by_probe.values(), key=lambda group: min(record_rank(r, threshold) for r in group))
    return [rec for group in order for rec in group]


def sample_payload(a: RunAnalysis, cap: int = MAX_SAMPLES) -> tuple[list[dict[str, Any]], dict[str, str], str]:
    records = select_records(a.run.records, a.threshold, cap, a.probe_ranks or None)
    images: dict[str, str] = {}
    skipped_images = 0
    items = []
    primary = a.primary_judge or ""
    refusal_by = a.over_refusal[0].group["judge"] if a.over_refusal else None
    for rec in records:
        refs = []
        for ref in rec.probe.images:
            if ref.sha256 not in images:
                if len(images) >= MAX_IMAGES:
                    skipped_images += 1
                    continue
                url = thumbnail_data_url(ref.path)
                if url is None:
                    skipped_images += 1
                    continue
                images[ref.sha256] = url
            refs.append(ref.sha256)
        headline = rec.judgements.get((_part(HEADLINE_PART), primary))
        refused = _refusal_of(rec, refusal_by) if rec.sample.benign else None
        items.append(
            {
                "t": rec.generation.target,
                "a": rec.probe.attack,
                "c": rec.sample.category,
                "d": rec.sample.dataset,
                "id": rec.sample.id,
                "benign": rec.sample.benign,
                "instruction": _clip(rec.sample.instruction),
                "prompt": _clip(rec.probe.user_text),
                "reasoning": _clip(rec.parsed.reasoning),
                "answer": _clip(rec.parsed.answer),
                "status": rec.parsed.status.value,
                "error": rec.generation.error or "",
                "img": refs,
                "score": headline.score if headline is not None else None,
                "ref": refused,
                "max": _record_max(rec),
                "j": [
                    {
                        "part": part.value,
                        "judge": judge,
                        "score": j.score,
                        "label": j.label,
                        "rationale": _clip(j.rationale),
                        "error": j.error or "",
                    }
                    for (part, judge), j in sorted(
                        rec.judgements.items(), key=lambda kv: (kv[0][1] != primary, kv[0][1], kv[0][0].value)
                    )
                ],
            }
        )
    note = ""
    if len(records) < len(a.run.records):
        note = (
            f"The browser holds {len(records)} of {len(a.run.records)} outputs (unsafe ones first); "
            "all of them are in the store and in `safemlrm export`."
        )
    if skipped_images:
        note += f" {skipped_images} image(s) were not embedded (missing files or over the {MAX_IMAGES} limit)."
    return items, images, note.strip()


REFUSED_LABELS = frozenset({"full_refusal", "partial_refusal", "refusal"})
ANSWERED_LABELS = frozenset({"full_compliance", "no_refusal"})


def _refusal_of(rec: Record, judge: str | None) -> str | None:
    """ "refused" / "answered" for a benign prompt's output, by the over-refusal judge (answer part where
    judged, as `over_refusal` reads it); None when that judge did not say."""
    if judge is None:
        return None
    j = rec.judgements.get((_part("answer"), judge)) or rec.judgements.get((_part("whole"), judge))
    if j is None:
        return None
    return "refused" if j.label in REFUSED_LABELS else "answered" if j.label in ANSWERED_LABELS else None


def _part(name: str) -> Any:
    from safemlrm.core.types import Part

    return Part(name)


# ---------------------------------------------------------------- sections


def _table_html(table: Table, *, compact: bool = False) -> str:
    head = "".join(f"<th>{_e(c.header)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for c in table.columns:
            cls = ' class="num"' if c.kind not in ("text", "bool") else ""
            text = format_cell(row, c)
            if c.kind == "bool" and row.get(c.key):
                cells.append('<td><span class="tag blind">blind spot</span></td>')
            else:
                cells.append(f"<td{cls}>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    empty = '<p class="note">No rows.</p>' if not table.rows else ""
    cls = "data compact" if compact else "data"
    return (
        f'<div class="table-wrap"><table class="{cls}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{empty}{note}"
    )


def _rows_html(header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="table-wrap"><table class="data compact" id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def trust_section(a: RunAnalysis) -> str:
    """How far to trust these numbers: every judge's agreement with human labels (sets, intervals) or
    "not validated here", beside the rates it gave (the headline judge's sentence and advice are in the
    Summary section)."""
    judges = _rows_html(
        ("judge", "status", "ASR it gave (whole output, per target)", "note"),
        [
            [judge_name(label, kind), v.status_text, judge_rates_text(a, label), v.note]
            for label, kind, v in judge_validations(a)
        ],
        "trust-judges",
    )
    return f"<p>{_e(TRUST_INTRO)}</p>{judges}" + _rows_html(TRUST_COLUMNS, trust_rows(a), "trust-table")


def _only_judge(table: Table, judge: str | None) -> Table:
    rows = [r for r in table.rows if r.get("judge") == judge]
    columns = [c for c in table.columns if c.key != "judge"]
    return Table(table.name, f"{table.title} (judge {judge})", columns, rows, note=table.note)


def _card(title: str, value: str, detail: str, tone: str = "") -> str:
    return (
        f'<div class="card {tone}"><div class="card-title">{_e(title)}</div>'
        f'<div class="card-value">{_e(value)}</div><div class="card-detail">{_e(detail)}</div></div>'
    )


def summary_cards(a: RunAnalysis) -> str:
    """One card per reasoning/base pair (its verdict and blind spots) and one for what the figures cover;
    per-target numbers go into one table (`target_table`), so 12 targets do not open with 30 cards."""
    cards = []
    for row in headline_tax(a):
        d = row.asr_diff
        verdict = tax_verdict(row)
        tone = "bad" if verdict == LESS_SAFE else "good" if verdict == SAFER else ""
        spots = blind_spots(a, row.group["reasoning"])
        cards.append(
            _card(
                f"Reasoning tax · {row.group['reasoning']} vs {row.group['base']}",
                pp(d.value) if verdict != NOTHING else "–",
                f"{verdict} · ASR {fmt_pct(row.asr_first.value)}% vs {fmt_pct(row.asr_second.value)}% · 95% CI "
                f"{pp(d.low)} to {pp(d.high)} · McNemar p {p_text(row.mcnemar_p)} · {row.n_pairs} paired probes · "
                + (f"blind spots: {', '.join(s.group['category'] for s in spots)}" if spots else "no blind spot"),
                tone,
            )
        )
    c = coverage(a)
    cards.append(
        _card(
            "Harmful prompts judged",
            str(c["harmful_judged"]),
            f"answers scored by {a.primary_judge or 'no judge'} (the HR and ASR figures) · {c['failed']} failed "
            f"judgements excluded · {c['benign']} benign-prompt outputs (over-refusal) · {c['errors']} generation "
            f"errors · {c['outputs']} outputs in all",
            "warn" if c["failed"] or c["errors"] else "",
        )
    )
    if c["benign"] and not a.over_refusal:
        cards.append(
            _card(
                "Over-refusal",
                "–",
                f"{c['benign']} benign prompts, but no judge tells refusals: add the keyword or refusal judge",
                "warn",
            )
        )
    return '<div class="cards">' + "".join(cards) + "</div>"


def target_table(a: RunAnalysis) -> str:
    """One row per target: headline ASR and HR, reasoning against answer, over-refusal, outputs and parse
    statuses, all from the analysis object the other sections read."""
    head = (
        "<tr><th>target</th><th>role</th><th>ASR % [95% CI]</th><th>HR</th><th>n</th>"
        "<th>unsafe reasoning %</th><th>self-corrected %</th><th>leaked %</th>"
        "<th>over-refusal % [95% CI] of benign</th><th>outputs</th><th>generation errors</th>"
        "<th>parse status</th></tr>"
    )
    body = []
    for t in a.run.targets:
        stat = a.harm(a.harm_overall, judge=a.primary_judge or "", target=t.label, part=HEADLINE_PART)
        sc = next(
            (
                x
                for x in a.self_correction
                if x.group["scope"] == "overall"
                and x.group["judge"] == a.primary_judge
                and x.group["target"] == t.label
            ),
            None,
        )
        cells = [
            f"<td>{_e(t.label)}</td><td>{'reasoning' if t.reasoning else 'base'}</td>",
            f'<td class="num">{_e(_pct_ci(stat.asr) if stat else "–")}</td>',
            f'<td class="num">{_e(fmt_num(stat.hr.value) if stat else "–")}</td>',
            f'<td class="num">{stat.n if stat else 0}</td>',
            f'<td class="num">{_e(fmt_pct(sc.unsafe_reasoning.value) if sc else "–")}</td>',
            f'<td class="num">{_e(fmt_pct(sc.self_corrected.value) if sc else "–")}</td>',
            f'<td class="num">{_e(fmt_pct(sc.leaked.value) if sc else "–")}</td>',
            f'<td title="{_e(refusal_text(a, t.label))}">{_e(refusal_cell(a, t.label))}</td>',
            f'<td class="num">{a.records_per_target.get(t.label, 0)}</td>',
            f'<td class="num">{a.generation_errors.get(t.label, 0)}</td>',
            f"<td>{_e(_statuses(a, t.label))}</td>",
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<h3>Per target (judge {_e(a.primary_judge or 'none')}, {HEADLINE_PART} output)</h3>"
        f'<div class="table-wrap"><table class="data compact" id="target-table"><thead>{head}</thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        '<p class="note">Parse status of each output: ok = reasoning and answer split; no_reasoning = no reasoning '
        "found; unterminated = cut inside its reasoning or answer; error = no output to parse.</p>"
    )


def _statuses(a: RunAnalysis, target: str) -> str:
    """ "ok 89 · error 1": the target's parse statuses with their counts, ok first."""
    counts = a.parse_status.get(target, {})
    return " · ".join(f"{s} {counts[s]}" for s in parse_status_names(a) if counts.get(s)) or "–"


def _pct_ci(est: Any) -> str:
    if math.isnan(est.value):
        return "–"
    return f"{fmt_pct(est.value)} [{fmt_pct(est.low)}, {fmt_pct(est.high)}]"


def scenario_section(a: RunAnalysis) -> str:
    judge = a.primary_judge or ""
    pairs = [(r.group["reasoning"], r.group["base"]) for r in headline_tax(a)]
    groups = [[b, r] for r, b in pairs] or [a.target_labels]
    charts = []
    for series in groups:
        values: dict[tuple[str, str], _svg.Bar] = {}
        for s in a.harm_by_category:
            if s.group["judge"] == judge and s.group["part"] == HEADLINE_PART and s.group["target"] in series:
                values[(s.group["category"], s.group["target"])] = _svg.Bar(
                    s.group["target"], s.asr.value, s.asr.low, s.asr.high, s.n
                )
        title = " vs ".join(series)
        charts.append(
            f"<figure><figcaption>{_e(title)}: ASR per scenario ({HEADLINE_PART} output, judge {_e(judge)})"
            f"</figcaption>{_svg.scenario_bars(a.categories, series, values, title=title)}</figure>"
        )
    return "".join(charts)


def tax_section(a: RunAnalysis) -> str:
    if not a.tax:
        return (
            '<p class="note">No reasoning/base pair in this run: give a reasoning target a <code>base:</code> '
            "(or use <code>safemlrm compare --pair</code>) to measure the reasoning tax.</p>"
        )
    parts = []
    for head in headline_tax(a):
        g = head.group
        rows = [
            r
            for r in a.tax
            if all(r.group[k] == g[k] for k in ("judge", "reasoning", "base", "reasoning_part"))
            and r.group["scope"] == "category"
        ]
        rows.sort(key=lambda r: -r.asr_diff.value if not math.isnan(r.asr_diff.value) else math.inf)
        title = f"{g['reasoning']} − {g['base']}"
        parts.append(
            f'<p class="lead">{_e(tax_sentence(head))}</p><p class="lead">{_e(blind_spot_sentence(a, g["reasoning"]))}'
            f"</p><figure><figcaption>{_e(title)}: ASR difference per scenario (whole output, judge "
            f"{_e(g['judge'])})</figcaption>{_svg.forest_plot([head, *rows], title=title)}</figure>"
        )
    return "".join(parts)


def transitions_section(a: RunAnalysis) -> str:
    parts = []
    edge = unsafe_bin(a.threshold)
    for sc in a.self_correction:
        if sc.group["scope"] != "overall" or sc.group["judge"] != a.primary_judge:
            continue
        target = sc.group["target"]
        parts.append(
            f'<figure class="heat-fig"><figcaption>{_e(target)}: reasoning score by answer score '
            f"({sc.n} items; {sc.n_excluded} without a reasoning/answer split or with a failed judgement left out)"
            f"</figcaption>{_svg.heatmap(sc.matrix, title=f'{target}: score transitions', edge=edge)}"
            f'<p class="note">Unsafe reasoning {fmt_pct(sc.unsafe_reasoning.value)}% · unsafe answer '
            f"{fmt_pct(sc.unsafe_answer.value)}% · self-corrected {fmt_pct(sc.self_corrected.value)}% "
            f"[{fmt_pct(sc.self_corrected.low)}, {fmt_pct(sc.self_corrected.high)}] · leaked "
            f"{fmt_pct(sc.leaked.value)}%</p></figure>"
        )
    if not parts:
        return '<p class="note">No target had both its reasoning and its answer judged.</p>'
    return '<div class="heat-grid">' + "".join(parts) + "</div>"


def tradeoff_section(a: RunAnalysis) -> str:
    points = []
    for i, row in enumerate(a.tradeoff):
        points.append(
            _svg.Point(
                row["target"],
                row["refusal"],
                row["refusal_low"],
                row["refusal_high"],
                row["asr"],
                row["asr_low"],
                row["asr_high"],
                _svg.PALETTE[i % len(_svg.PALETTE)],
            )
        )
    if not any(not math.isnan(p.x) for p in points):
        return (
            '<p class="note">No benign prompts were judged by a refusal judge, so over-refusal is unknown: add '
            "benign samples (XSTest safe prompts, JailbreakBench benign behaviours) and the keyword judge.</p>"
        )
    chart = _svg.scatter(
        points, title="safety vs over-refusal", x_label="over-refusal (benign prompts)", y_label="ASR (harmful prompts)"
    )
    return f"<figure><figcaption>Safety against helpfulness</figcaption>{chart}</figure>"


def identity_section(a: RunAnalysis) -> str:
    run = a.run
    items = identity_items(a, "≥")
    env = run.meta.get("environment") or {}
    if isinstance(env, dict):
        items += [(f"env · {k}", v) for k, v in sorted(env.items())]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items if v not in (None, ""))
    inv_rows = "".join(
        f"<tr><td>{_e(i.get('id', ''))}</td><td>{_e(i.get('command', ''))}</td><td>{_e(i.get('status', ''))}</td>"
        f"<td>{_e(timestamp(i.get('started')))}</td><td>{_e(timestamp(i.get('finished')))}</td></tr>"
        for i in run.meta.get("invocations") or []
    )
    target_rows = "".join(
        f"<tr><td>{_e(t.label)}</td><td>{_e(t.model)}</td><td>{_e(t.kind)}</td>"
        f"<td>{'reasoning' if t.reasoning else 'base'}</td><td>{_e(t.base or '')}</td>"
        f'<td class="mono">{_e(json.dumps(t.identity, sort_keys=True, default=str))}</td></tr>'
        for t in run.targets
    )
    judge_rows = "".join(
        f"<tr><td>{_e(j.label)}</td><td>{_e(j.kind)}</td>"
        f'<td class="mono">{_e(json.dumps(j.identity, sort_keys=True, default=str))}</td></tr>'
        for j in run.judges
    )
    return (
        f'<dl class="identity">{dl}</dl>'
        '<h3>Invocations</h3><div class="table-wrap"><table class="data compact"><thead><tr><th>#</th>'
        f"<th>command</th><th>status</th><th>started</th><th>finished</th></tr></thead><tbody>{inv_rows}"
        "</tbody></table></div>"
        '<h3>Models</h3><div class="table-wrap"><table class="data compact"><thead><tr><th>target</th>'
        "<th>model</th><th>kind</th><th>role</th><th>base</th><th>identity</th></tr></thead>"
        f"<tbody>{target_rows}</tbody></table></div>"
        '<h3>Judges</h3><div class="table-wrap"><table class="data compact"><thead><tr><th>judge</th>'
        f"<th>kind</th><th>identity</th></tr></thead><tbody>{judge_rows}</tbody></table></div>"
    )


def browser_section(note: str) -> str:
    return (
        '<div class="filters" id="filters">'
        '<label>model <select id="f-target"></select></label>'
        '<label>scenario <select id="f-category"></select></label>'
        '<label>attack <select id="f-attack"></select></label>'
        '<label>headline score <select id="f-score"></select></label>'
        '<label class="grow">search <input id="f-text" type="search" placeholder="text in prompt or output">'
        "</label></div>"
        '<p class="count" id="sample-count" data-count="0"></p>'
        + (f'<p class="note">{_e(note)}</p>' if note else "")
        + '<div id="samples"></div><button type="button" id="more" class="more">Show more</button>'
    )


def render_html(a: RunAnalysis, tables: Sequence[Table], *, max_samples: int = MAX_SAMPLES) -> str:
    by_name = {t.name: t for t in tables}
    items, images, note = sample_payload(a, max_samples)
    config = {
        "threshold": a.threshold,
        "primary": a.primary_judge,
        "headlinePart": HEADLINE_PART,
        "reasoningTargets": [t.label for t in a.run.targets if t.reasoning],
    }
    title = f"safemlrm report · {a.run.config.get('name') or 'run'}"
    sections = [
        (
            "summary",
            "Summary",
            summary_cards(a)
            + target_table(a)
            + "".join(f'<p class="note">Note: {_e(n)}</p>' for n in a.notes)
            + "".join(f'<p class="note trust-headline">Trust: {_e(t)}</p>' for t in headline_trust(a)),
        ),
        ("trust", "How far to trust these numbers", trust_section(a)),
        ("scenarios", "Per scenario", scenario_section(a)),
        (
            "tax",
            "Reasoning tax",
            tax_section(a)
            + (
                _table_html(_only_judge(by_name["reasoning_tax"], a.primary_judge), compact=True)
                if "reasoning_tax" in by_name
                else ""
            ),
        ),
        (
            "transitions",
            "Reasoning against answer",
            transitions_section(a)
            + (_table_html(by_name["self_correction"], compact=True) if "self_correction" in by_name else ""),
        ),
        (
            "tradeoff",
            "Safety and over-refusal",
            tradeoff_section(a) + (_table_html(by_name["over_refusal"]) if "over_refusal" in by_name else ""),
        ),
        (
            "tables",
            "Numbers",
            "".join(
                f"<h3>{_e(by_name[n].title)}</h3>{_table_html(by_name[n], compact=True)}"
                for n in ("harm_overview", "harm_by_category", "harm_by_attack", "reasoning_tax")
                if n in by_name
            ),
        ),
        (
            "agreement",
            "Judge agreement",
            _table_html(by_name["judge_agreement"]) if "judge_agreement" in by_name else "",
        ),
        (
            "study",
            "The study's layout",
            _table_html(by_name["study_layout"], compact=True) if "study_layout" in by_name else "",
        ),
        ("identity", "Run identity", identity_section(a)),
        ("browser", "Samples", browser_section(note)),
    ]
    sampled = sampling_sentences(a)
    if sampled:  # ASR@1 and ASR@k when targets draw several samples per probe
        sections.insert(
            1, ("sampling", "Several samples", "<ul>" + "".join(f"<li>{_e(s)}</li>" for s in sampled) + "</ul>")
        )
    nav = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(name)}</h2>{html}</section>' for sid, name, html in sections)
    csp = content_security_policy(JS, CSS)
    subtitle = (
        f"{len(a.run.records)} outputs · {len(a.run.targets)} targets · {len(a.categories)} scenarios · "
        f"{len(a.attacks)} attacks · threshold {a.threshold:g}"
    )
    judges_line = f"headline judge {headline_judge_text(a)} · judges: {judges_text(a)}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp, quote=False)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f'<header><div class="wrap"><h1>{_e(title)}</h1><p class="subtitle">{_e(subtitle)}</p>'
        f'<p class="subtitle judges" id="headline-judge">{_e(judges_line)}</p>'
        f"<nav>{nav}</nav></div></header>"
        f'<main class="wrap">{body}</main>'
        '<footer class="wrap">Generated by safemlrm. Self-contained: this file loads nothing from the network. '
        "Content warning: model outputs may be harmful.</footer>"
        f'<script type="application/json" id="report-config">{embed_json(config)}</script>'
        f'<script type="application/json" id="samples-data">{embed_json(items)}</script>'
        f'<script type="application/json" id="images-data">{embed_json(images)}</script>'
        f"<script>{JS}</script></body></html>\n"
    )


def write_html(a: RunAnalysis, tables: Sequence[Table], path: Path, *, max_samples: int = MAX_SAMPLES) -> Path:
    path.write_text(render_html(a, tables, max_samples=max_samples), encoding="utf-8")
    return path


__all__ = ["ALL", "render_html", "write_html"]
