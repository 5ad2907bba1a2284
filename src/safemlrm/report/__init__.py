"""Reports of a run: summary.json, report.md, report.html and tables/*.csv|tex, from RunData alone."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from safemlrm.analysis.run_analysis import analyse_run
from safemlrm.analysis.run_tables import run_tables
from safemlrm.analysis.summary import summary_from_analysis
from safemlrm.analysis.tables import write_tables
from safemlrm.core.records import RunData
from safemlrm.core.trust import JudgeValidation, headline_trust_lines

REPORT_STEPS = ("analysis", "summary.json", "tables", "report.md", "report.html")


def report_steps(html: bool = True) -> tuple[str, ...]:
    """The steps `write_reports` names through `on_step`, in order."""
    return REPORT_STEPS if html else REPORT_STEPS[:-1]


def write_reports(
    run: RunData,
    out_dir: Path,
    calls: Mapping[str, Any] | None = None,
    *,
    html: bool = True,
    primary_judge: str | None = None,
    max_samples: int | None = None,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write every report of `run` into `out_dir`; returns {relative name: path}.

    `calls` (target/judge call counters of this invocation) goes into summary.json as is; `on_step` is
    called with the name of each step of `report_steps(html)` as it starts (progress).
    """
    from safemlrm.report.html import MAX_SAMPLES, write_html
    from safemlrm.report.markdown import render_markdown

    step = on_step or (lambda name: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    step("analysis")
    analysis = analyse_run(run, primary_judge=primary_judge)
    tables = run_tables(analysis)
    written: dict[str, Path] = {}

    step("summary.json")
    summary_path = out_dir / "summary.json"
    summary = summary_from_analysis(analysis, calls)
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n", "utf-8")
    written["summary.json"] = summary_path

    step("tables")
    written.update(write_tables(tables, out_dir / "tables"))

    step("report.md")
    md_path = out_dir / "report.md"
    md_path.write_text(render_markdown(analysis, tables), encoding="utf-8")
    written["report.md"] = md_path

    if html:
        step("report.html")
        written["report.html"] = write_html(
            analysis, tables, out_dir / "report.html", max_samples=max_samples or MAX_SAMPLES
        )
    return written


def headline_judge_line(reports: Mapping[str, Path]) -> str:
    """ "headline judge: offline (the first harm judge of the config); judges: ..." from a written
    summary.json (empty when there is none), for the last lines of `safemlrm run` and `safemlrm report`."""
    path = reports.get("summary.json")
    if path is None or not Path(path).exists():
        return ""
    run = json.loads(Path(path).read_text(encoding="utf-8")).get("run", {})
    judges = ", ".join(
        j["label"] if j.get("kind") == j["label"] else f"{j['label']} ({j.get('kind')})" for j in run.get("judges", [])
    )
    chosen = run.get("primary_judge") or "none"
    reason = run.get("primary_judge_reason") or ""
    return f"headline judge: {chosen}" + (f" ({reason})" if reason else "") + f"; judges: {judges or 'none'}"


def headline_trust_from(reports: Mapping[str, Path]) -> list[str]:
    """How far the headline judge's numbers can be trusted, and what to do about it, from a written
    summary.json's `judges` block (the record the judge stored when it judged): the CLI's last lines."""
    path = reports.get("summary.json")
    if path is None or not Path(path).exists():
        return []
    summary = json.loads(Path(path).read_text(encoding="utf-8"))
    chosen = summary.get("run", {}).get("primary_judge")
    entry = summary.get("judges", {}).get(chosen) if chosen else None
    if not isinstance(entry, dict) or entry.get("validation") is None:
        return []
    lines = headline_trust_lines(chosen, JudgeValidation.model_validate(entry["validation"]))
    return [terminal_safe(line) for line in lines]


def terminal_safe(text: str) -> str:
    """A line for a terminal: control and format characters (escape sequences, bidi overrides) that a
    head's JSON or a label could hold are shown as U+FFFD, never interpreted."""
    return "".join("\ufffd" if unicodedata.category(ch)[0] == "C" else ch for ch in text)


__all__ = ["REPORT_STEPS", "headline_judge_line", "headline_trust_from", "report_steps", "write_reports"]
