"""Our numbers in the SafeMLRM study's table layout: model x condition x part, ASR and HR, with intervals.

Conditions are the run's attacks (the study's "vanilla" text-only and "jailbreak" SD+typography images,
or FigStep on SafeBench). Base models were scored on their whole output only in the study, so their
reasoning and answer cells stay empty here too. Numbers come from one judge (the run's primary judge).
"""

from __future__ import annotations

from typing import Any

from safemlrm.analysis.run_analysis import RunAnalysis
from safemlrm.analysis.tables import Column, Table

PARTS = ("reasoning", "answer", "whole")


def study_rows(a: RunAnalysis, judge: str | None = None) -> list[dict[str, Any]]:
    """Tidy rows: model, role, condition, part, n, ASR and HR with intervals."""
    judge = judge or a.primary_judge or ""
    reasoning = {t.label: t.reasoning for t in a.run.targets}
    out = []
    for target in a.target_labels:
        for attack in a.attacks:
            for part in PARTS:
                if not reasoning.get(target, False) and part != "whole":
                    continue
                stat = a.harm(a.harm_by_attack, judge=judge, target=target, attack=attack, part=part)
                if stat is None:
                    continue
                out.append(
                    {
                        "model": target,
                        "role": "reasoning" if reasoning.get(target) else "base",
                        "condition": attack,
                        **{k: v for k, v in stat.as_row().items() if k not in ("target", "attack")},
                    }
                )
    return out


def study_table(a: RunAnalysis, judge: str | None = None) -> Table:
    """One row per model; for each condition and part an ASR column and an HR column (with CIs)."""
    tidy = study_rows(a, judge)
    columns = [Column("model", "model"), Column("role", "role")]
    groups: list[tuple[str, int]] = [("", 2)]
    present = {(r["condition"], r["part"]) for r in tidy}
    for attack in a.attacks:
        parts = [p for p in PARTS if (attack, p) in present]
        for part in parts:
            columns.append(Column(f"{attack}|{part}|asr", f"{part} ASR %", "pct_ci"))
            columns.append(Column(f"{attack}|{part}|hr", f"{part} HR", "num_ci"))
        if parts:
            groups.append((attack, 2 * len(parts)))
    rows: dict[str, dict[str, Any]] = {}
    for r in tidy:
        row = rows.setdefault(r["model"], {"model": r["model"], "role": r["role"]})
        for metric in ("asr", "hr"):
            key = f"{r['condition']}|{r['part']}|{metric}"
            row[key] = r[metric]
            row[f"{key}_low"] = r[f"{metric}_low"]
            row[f"{key}_high"] = r[f"{metric}_high"]
    return Table(
        "study_layout",
        f"The SafeMLRM study's layout: ASR (%) and HR per model, condition and part (judge {a.primary_judge})",
        columns,
        list(rows.values()),
        note="Conditions are this run's attacks; 95% CIs (Wilson for ASR, bootstrap for HR); base models "
        "are scored on the whole output only, as in the study.",
        header_groups=groups,
    )
