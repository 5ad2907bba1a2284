"""The headline judge: a documented rule, named with its reason in the report header and the CLI."""

from __future__ import annotations

import dataclasses
import json
from html import escape
from pathlib import Path

import pytest

from safemlrm.analysis.run_analysis import analyse_run, headline_judge
from safemlrm.analysis.tables import markdown_escape
from safemlrm.core.config import RunConfig
from safemlrm.core.records import JudgeInfo, RunData
from safemlrm.core.trust import NO_RECORD, Agreement, JudgeValidation
from safemlrm.core.types import Judgement, Part
from safemlrm.judges._trust import head_json, head_validation
from safemlrm.report import headline_judge_line, headline_trust_from, write_reports
from safemlrm.testing.synthetic import synthetic_run
from safemlrm.verbs.cli import _print_headline_judge


def _with_judges(run: RunData, order: list[JudgeInfo], config: dict[str, object] | None = None) -> RunData:
    """The synthetic run with its rubric judgements copied to judges of the given labels/kinds."""
    records = []
    for rec in run.records:
        judgements: dict[tuple[Part, str], Judgement] = {}
        for (part, judge), j in rec.judgements.items():
            if judge != "rubric":
                continue
            for info in order:
                label = {"refusal": "full_compliance" if j.score >= 4 else "full_refusal"}.get(info.kind, j.label)
                judgements[(part, info.label)] = j.model_copy(update={"judge": info.label, "label": label})
        records.append(dataclasses.replace(rec, judgements=judgements))
    return dataclasses.replace(run, judges=order, records=records, config={**run.config, **(config or {})})


def test_refusal_classifier_listed_first_is_never_the_headline_harm_judge() -> None:
    # The case: offline, refusal and keyword judges, no benign prompts: the refusal classifier
    # was not recognised (it was only recognised by its labels on benign prompts) and took the headline.
    base = synthetic_run(per_scenario=2, n_benign=0, hostile=False)
    judges = [JudgeInfo("refusal", "refusal"), JudgeInfo("keyword", "keyword"), JudgeInfo("offline", "offline")]
    run = _with_judges(base, judges)
    chosen, why = headline_judge(run, run.score_rows())
    assert chosen == "offline"
    assert "first harm judge" in why and "refusal, keyword only tell refusals" in why
    # a plugin judge with refusal-classifier labels counts as refusal-only too
    plugin = _with_judges(base, [JudgeInfo("r2", "my_refusal"), JudgeInfo("offline", "offline")])
    rows = [r.model_copy(update={"label": "full_refusal"}) if r.judge == "r2" else r for r in plugin.score_rows()]
    assert headline_judge(plugin, rows)[0] == "offline"


def test_explicit_and_configured_headline_judge_and_refusal_only_fallback() -> None:
    base = synthetic_run(per_scenario=2, n_benign=0, hostile=False)
    judges = [JudgeInfo("offline", "offline"), JudgeInfo("keyword", "keyword")]
    run = _with_judges(base, judges, {"headline_judge": "keyword"})
    assert headline_judge(run, run.score_rows()) == ("keyword", "set by the config's headline_judge")
    assert headline_judge(run, run.score_rows(), "offline") == ("offline", "chosen with --judge")
    with pytest.raises(ValueError, match="not a judge of this run"):
        headline_judge(run, run.score_rows(), "nope")
    only = _with_judges(base, [JudgeInfo("refusal", "refusal"), JudgeInfo("keyword", "keyword")])
    analysis = analyse_run(only, n_resamples=100)
    assert analysis.primary_judge == "refusal"
    assert "no harm judge" in analysis.primary_reason
    assert any("not a harm judge" in n for n in analysis.notes)


def test_config_headline_judge_must_name_a_judge() -> None:
    spec = {"datasets": [{"kind": "jsonl", "params": {"path": "x"}}], "targets": [{"name": "t", "kind": "fake"}]}
    RunConfig.model_validate({**spec, "judges": [{"kind": "keyword"}], "headline_judge": "keyword"})
    with pytest.raises(ValueError, match="headline_judge 'offline' is not a judge of this run"):
        RunConfig.model_validate({**spec, "judges": [{"kind": "keyword"}], "headline_judge": "offline"})


def test_report_header_and_cli_name_the_headline_judge_why_and_every_judge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = synthetic_run(per_scenario=2, n_benign=0, hostile=False)
    judges = [JudgeInfo("refusal", "refusal"), JudgeInfo("offline", "offline"), JudgeInfo("keyword", "keyword")]
    written = write_reports(_with_judges(base, judges), tmp_path)
    md = written["report.md"].read_text()
    header = md.split("## Headline", 1)[1].splitlines()[2]
    assert header.startswith("Headline judge: offline (the first harm judge of the config")
    assert "Judges that ran: refusal, offline, keyword." in header
    html = written["report.html"].read_text()
    line = html.split('id="headline-judge">', 1)[1].split("</p>", 1)[0]
    assert "headline judge offline (the first harm judge" in line and "judges: refusal, offline, keyword" in line
    summary = json.loads(written["summary.json"].read_text())
    assert summary["run"]["primary_judge"] == "offline" and summary["run"]["primary_judge_reason"]
    _print_headline_judge(written)
    out = capsys.readouterr().out.strip().splitlines()
    line = out[-2]  # then: how far the headline judge can be trusted (a run judged before records existed)
    assert line == headline_judge_line(written)
    assert (
        line.startswith("headline judge: offline (the first harm judge") and "judges: refusal, offline, keyword" in line
    )
    assert out[-1] == "offline judge: not validated here (" + NO_RECORD + ")"


def test_cli_and_report_say_how_far_the_offline_headline_judge_can_be_trusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The figures come from the offline head's record, and the last lines say how to add an LLM judge."""
    offline = head_validation(head_json("offline_harm"), "offline_harm")
    assert offline.status == "measured" and offline.advice
    judges = [JudgeInfo("offline", "offline", validation=offline), JudgeInfo("keyword", "keyword")]
    written = write_reports(_with_judges(synthetic_run(per_scenario=2, n_benign=0, hostile=False), judges), tmp_path)
    _print_headline_judge(written)
    out = capsys.readouterr().out.strip().splitlines()
    first_sets = list(dict.fromkeys(r.set for r in offline.agreement))
    figures = {s: next(r for r in offline.agreement if r.set == s) for s in first_sets}
    trust, advice = out[-2], out[-1]
    assert trust.startswith("offline judge (measured here): ")
    assert f"{100 * figures[first_sets[0]].accuracy:.0f}% agreement with human labels on {first_sets[0]}" in trust
    assert all(f"{100 * figures[s].accuracy:.0f}% on {s}" in trust for s in first_sets[1:])
    assert advice == offline.advice and "kind: rubric" in advice and "docs/judges.md" in advice
    md = written["report.md"].read_text()
    headline = md.split("## Headline", 1)[1].split("\n## ", 1)[0]
    assert markdown_escape(trust) in headline and markdown_escape(advice) in headline
    html = written["report.html"].read_text()
    summary_section = html.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert f'<p class="note trust-headline">Trust: {escape(trust, quote=True)}</p>' in summary_section
    assert f'<p class="note trust-headline">Trust: {escape(advice, quote=True)}</p>' in summary_section


def test_headline_judge_that_is_validated_by_publication_has_no_advice(tmp_path: Path) -> None:
    published = JudgeValidation(
        status="published",
        agreement=(Agreement(set="S", method="m", n=10, accuracy=0.9, model="org/judge-x"),),
        judge_model="judge-x",
    )
    written = write_reports(
        _with_judges(
            synthetic_run(per_scenario=2, n_benign=0, hostile=False), [JudgeInfo("g", "rubric", {}, published)]
        ),
        tmp_path,
    )
    assert headline_trust_from(written) == [
        "g judge (published, not measured here): 90% agreement with human labels on S "
        "(with org/judge-x; your judge model: judge-x)"
    ]


def test_trust_lines_for_a_terminal_show_control_characters_as_text(tmp_path: Path) -> None:
    hostile = JudgeValidation(
        status="measured",
        agreement=(Agreement(set="my set\x1b[2J\u202e", method="m", n=10, accuracy=0.9),),
        advice="add a judge\x07",
    )
    run = synthetic_run(per_scenario=2, n_benign=0, hostile=False)
    written = write_reports(_with_judges(run, [JudgeInfo("g", "offline", {}, hostile)]), tmp_path)
    lines = headline_trust_from(written)
    assert lines == [
        "g judge (measured here): 90% agreement with human labels on my set\ufffd[2J\ufffd",
        "add a judge\ufffd",
    ]
