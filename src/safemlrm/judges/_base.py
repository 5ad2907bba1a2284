"""What the judge base classes share: their name and version, and how they build a Judgement."""

from __future__ import annotations

from typing import ClassVar

from safemlrm.types import Judgement


class JudgeBase:
    kind: ClassVar[str] = "judge"
    version: ClassVar[str] = "1"
    label: str

    def _judgement(
        self, score: float, label: str, *, rationale: str = "", raw: str = "", error: str | None = None
    ) -> Judgement:
        return Judgement(
            judge=self.label,
            judge_version=self.version,
            score=score,
            label=label,
            rationale=rationale,
            raw=raw,
            error=error,
        )
