"""Tiny builders of ScoreRows for hand-computed analysis tests."""

from __future__ import annotations

from safemlrm.core.types import ParseStatus, Part, ScoreRow


def row(
    score: float,
    *,
    target: str = "R",
    part: str = "whole",
    judge: str = "J",
    sample: str = "s0",
    attack: str = "vanilla",
    category: str = "A",
    dataset: str = "d",
    benign: bool = False,
    label: str = "",
    probe: str | None = None,
    status: ParseStatus = ParseStatus.OK,
) -> ScoreRow:
    return ScoreRow(
        target=target,
        attack=attack,
        dataset=dataset,
        category=category,
        sample_id=sample,
        probe_key=probe or f"{sample}:{attack}",
        benign=benign,
        part=Part(part),
        judge=judge,
        score=score,
        label=label,
        parse_status=status,
    )
