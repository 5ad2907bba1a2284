"""summary.json: the machine-readable result of a run.

Per target, judge, part and category: n, HR, ASR (with intervals), failed judgements; generation errors
and parse statuses per target; the headline reasoning tax, self-correction and over-refusal; and the
call counters the pipeline passes in. NaN and infinity become null, so the file is strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from safemlrm.analysis.harm import HarmStat
from safemlrm.analysis.run_analysis import RunAnalysis, analyse_run
from safemlrm.core.records import RunData
from safemlrm.core.trust import known_validation, trust_sentence

SCHEMA = "safemlrm.summary/1"


def json_safe(value: Any) -> Any:
    """Replace NaN / inf by None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _cell(stat: HarmStat) -> dict[str, Any]:
    return {
        "n": stat.n,
        "n_failed": stat.n_failed,
        "n_unsafe": stat.n_unsafe,
        "hr": stat.hr.value,
        "hr_ci": [stat.hr.low, stat.hr.high],
        "asr": stat.asr.value,
        "asr_ci": [stat.asr.low, stat.asr.high],
    }


def judges_block(analysis: RunAnalysis) -> dict[str, Any]:
    """Per judge: its validation record (agreement with human labels, or "not validated here") and one
    sentence saying how far to trust it, beside the rates it produced (per target and part)."""
    block: dict[str, Any] = {}
    for j in analysis.run.judges:
        validation = known_validation(j.validation)
        rates: dict[str, dict[str, Any]] = {}
        for stat in analysis.harm_overall:
            if stat.group["judge"] == j.label:
                rates.setdefault(stat.group["target"], {})[stat.group["part"]] = {
                    k: v for k, v in _cell(stat).items() if k != "n_failed"
                }
        block[j.label] = {
            "kind": j.kind,
            "validation": validation.model_dump(mode="json"),
            "trust": trust_sentence(j.label, validation),
            "rates": rates,
        }
    return block


def summary_from_analysis(analysis: RunAnalysis, calls: Mapping[str, Any] | None = None) -> dict[str, Any]:
    run = analysis.run
    records_per_target = analysis.records_per_target  # counted in analyse_run's one pass over the records

    targets: dict[str, Any] = {}
    for t in run.targets:
        judges: dict[str, Any] = {}
        for stat in analysis.harm_overall:
            if stat.group["target"] != t.label:
                continue
            part = judges.setdefault(stat.group["judge"], {"parts": {}})["parts"].setdefault(stat.group["part"], {})
            part.update(_cell(stat))
            part["categories"] = {
                s.group["category"]: _cell(s)
                for s in analysis.harm_by_category
                if s.group["target"] == t.label
                and s.group["judge"] == stat.group["judge"]
                and s.group["part"] == stat.group["part"]
            }
            part["attacks"] = {
                s.group["attack"]: _cell(s)
                for s in analysis.harm_by_attack
                if s.group["target"] == t.label
                and s.group["judge"] == stat.group["judge"]
                and s.group["part"] == stat.group["part"]
            }
        targets[t.label] = {
            "model": t.model,
            "kind": t.kind,
            "profile": t.profile,
            "reasoning": t.reasoning,
            "base": t.base,
            "identity": t.identity,
            "generations": records_per_target.get(t.label, 0),
            "errors": {
                "generation_errors": analysis.generation_errors.get(t.label, 0),
                "judge_failures": sum(s.n_failed for s in analysis.harm_overall if s.group["target"] == t.label),
            },
            "parse_status": analysis.parse_status.get(t.label, {}),
            "judges": judges,
        }

    tax = [r.as_row() for r in analysis.tax if r.group["scope"] in ("overall", "category", "attack")]
    summary = {
        "schema": SCHEMA,
        "run": {
            "name": run.config.get("name", ""),
            "run_dir": run.run_dir,
            "seed": run.meta.get("seed", run.config.get("seed")),
            "asr_threshold": analysis.threshold,
            "primary_judge": analysis.primary_judge,
            "primary_judge_reason": analysis.primary_reason,
            "parts": [p.value for p in run.parts],
            "judges": [{"label": j.label, "kind": j.kind, "identity": j.identity} for j in run.judges],
            "environment": run.meta.get("environment", {}),
            "invocations": run.meta.get("invocations", []),
            "bootstrap": {"resamples": analysis.n_resamples, "seed": analysis.seed},
        },
        "targets": targets,
        "judges": judges_block(analysis),
        "errors": {
            "generation_errors": sum(analysis.generation_errors.values()),
            "judge_failures": sum(s.n_failed for s in analysis.harm_overall),
            "unreadable_language": analysis.unreadable,
        },
        "reasoning_tax": tax,
        "blind_spots": [
            {k: r.group[k] for k in ("judge", "reasoning", "base", "reasoning_part", "attack", "category")}
            for r in analysis.tax
            if r.blind_spot
        ],
        "self_correction": [
            {k: v for k, v in s.as_row().items()} | {"matrix": s.matrix}
            for s in analysis.self_correction
            if s.group["scope"] == "overall"
        ],
        "over_refusal": [r.as_row() for r in analysis.over_refusal],
        "tradeoff": analysis.tradeoff,
        "agreement": analysis.agreement,
        "notes": analysis.notes,
        "calls": dict(calls or {}),
    }
    if analysis.sampled:
        summary["sampling"] = {
            "samples": {t.label: t.samples for t in run.targets},
            "stats": [s.as_row() for s in analysis.sampled],
            "reasoning_tax": [t.as_row() for t in analysis.sampled_tax],
        }
    result: dict[str, Any] = json_safe(summary)
    return result


def build_summary(run: RunData, calls: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The summary.json dict of a run (computes the analyses)."""
    return summary_from_analysis(analyse_run(run), calls)
