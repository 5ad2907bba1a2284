"""What a finished (or partial) run looks like to analyses and reports: read from the store alone."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from safemlrm.core.trust import JudgeValidation
from safemlrm.core.types import Generation, Judgement, ParsedOutput, Part, Probe, Sample, ScoreRow


@dataclass(frozen=True)
class TargetInfo:
    label: str
    kind: str
    model: str
    reasoning: bool
    base: str | None  # label of the base-model target it is paired with
    profile: str | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    samples: int = 1  # generations per probe (k of ASR@k)


@dataclass(frozen=True)
class JudgeInfo:
    label: str
    kind: str
    identity: dict[str, Any] = field(default_factory=dict)
    # Its agreement with human labels, as the judge described itself when it judged (None: a run
    # judged before safemlrm recorded one).
    validation: JudgeValidation | None = None

    def to_json(self) -> dict[str, Any]:
        """The store's and summary.json's form of this info (plain JSON types)."""
        return {
            "label": self.label,
            "kind": self.kind,
            "identity": self.identity,
            "validation": None if self.validation is None else self.validation.model_dump(mode="json"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JudgeInfo:
        raw = data.get("validation")
        return cls(
            label=data["label"],
            kind=data["kind"],
            identity=dict(data.get("identity") or {}),
            validation=None if raw is None else JudgeValidation.model_validate(raw),
        )


@dataclass(frozen=True)
class Record:
    """One (probe, target) with everything known about it."""

    sample: Sample
    probe: Probe
    generation: Generation
    parsed: ParsedOutput
    judgements: dict[tuple[Part, str], Judgement]  # (part, judge label) -> judgement
    sample_index: int = 0  # which of the target's samples of this probe (0 when it draws one)

    def score_row(self, part: Part, judge: str) -> ScoreRow:
        """The flat row of one of this record's judgements, as the analyses take it.

        Built without re-validation (every field comes from validated models) and with the repeated
        names interned: a large run's report holds one row per judgement, so each row stays small.
        """
        j = self.judgements[(part, judge)]
        return ScoreRow.model_construct(
            target=sys.intern(self.generation.target),
            attack=sys.intern(self.probe.attack),
            dataset=sys.intern(self.sample.dataset),
            category=sys.intern(self.sample.category),
            sample_id=self.sample.id,
            probe_key=self.probe.key,
            benign=self.sample.benign,
            part=part,
            judge=sys.intern(judge),
            score=float(j.score),
            label=sys.intern(j.label),
            parse_status=self.parsed.status,
            sample_index=self.sample_index,
        )


@dataclass
class RunData:
    run_dir: str
    config: dict[str, Any]
    meta: dict[str, Any]  # versions, seeds, timestamps, invocations
    targets: list[TargetInfo]
    judges: list[JudgeInfo]
    parts: list[Part]
    asr_threshold: float
    records: Sequence[Record]  # a list, or for a large run a sequence streamed from the store

    def score_rows(self) -> list[ScoreRow]:
        return [rec.score_row(part, judge) for rec in self.records for part, judge in rec.judgements]
