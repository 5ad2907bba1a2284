"""How far a judge's numbers can be trusted: its agreement with human labels, as data.

A judge plugin describes itself with a `JudgeValidation` (``validation()`` on the judge classes): the
agreement it reached with human labels on named sets, measured here (the offline heads, the keyword
baseline) or published for its prompt with a named judge model (the LLM judges), or nothing: "not
validated here". The pipeline stores it with the judge's info when the run is judged, and summary.json,
report.md, report.html and the CLI's last lines show it beside the rates the judge produced.

Kernel module: plain data and the sentences that describe it, no plugin code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ValidationStatus = Literal["measured", "published", "not_validated"]

STATUS_TEXT: dict[str, str] = {
    "measured": "measured here",
    "published": "published, not measured here",
    "not_validated": "not validated here",
}

# What the report and the CLI say after the numbers of a judge that is not an LLM judge.
LLM_JUDGE_ADVICE = (
    "use an LLM judge for publication-grade results: add `- kind: rubric` with `params: {model: ...}` "
    "(any judge model, e.g. an OpenAI-compatible endpoint) under `judges:` in the config and set "
    "`headline_judge` to it; see docs/judges.md"
)


class Agreement(BaseModel):
    """A judge's agreement with human labels on one named set (the `agreement` entries of a head's JSON)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    set: str = Field(description="the labelled set, e.g. 'JailbreakBench judge comparison (dev)'")
    method: str = Field(description="how it was measured, e.g. 'behaviour-grouped 10-fold cross-validation'")
    reference: str = Field(default="human majority", description="what the judge is compared with")
    n: int = Field(ge=0)
    accuracy: float | None = Field(default=None, ge=0.0, le=1.0, description="None: only error rates measured")
    accuracy_ci95: tuple[float, float] | None = None
    false_negative_rate: float | None = None
    false_positive_rate: float | None = None
    kappa: float | None = None
    model: str | None = Field(default=None, description="the judge model a published figure was measured with")
    source: str = Field(default="", description="where the figure comes from")

    def accuracy_text(self) -> str:
        """ "77.3% [70.0, 83.3]" ("–" when only error rates were measured)"""
        if self.accuracy is None:
            return "–"
        text = f"{100 * self.accuracy:.1f}%"
        if self.accuracy_ci95 is not None:
            low, high = self.accuracy_ci95
            text += f" [{100 * low:.1f}, {100 * high:.1f}]"
        return text


class JudgeValidation(BaseModel):
    """What is known about a judge's agreement with human labels, for the judge as configured."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    status: ValidationStatus
    agreement: tuple[Agreement, ...] = Field(
        default=(),
        description="measured: the judge's own figures; published or not_validated: figures published for its "
        "prompt with the judge model each names (shown for reference when the configured model differs)",
    )
    judge_model: str | None = Field(default=None, description="the judge model configured (LLM judges)")
    note: str = Field(default="", description="one sentence on what the figures mean for this judge")
    advice: str = Field(default="", description="what to do for publication-grade results (shown for a headline)")

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status]


def not_validated(note: str, *, advice: str = "", judge_model: str | None = None) -> JudgeValidation:
    return JudgeValidation(status="not_validated", note=note, advice=advice, judge_model=judge_model)


NO_RECORD = (
    "no validation record: this run was judged before safemlrm recorded one "
    "(`safemlrm judge RUN_DIR` records it without judging again)"
)


def known_validation(validation: JudgeValidation | None) -> JudgeValidation:
    """The record to show: a stored one, or "not validated here" for a run judged before records existed."""
    return validation if validation is not None else not_validated(NO_RECORD)


def _pct(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def agreement_cells(row: Agreement) -> list[str]:
    """set, agreement [95% CI], false negatives, false positives, kappa, n, how measured: one table row."""
    how = row.method + (f"; with {row.model}" if row.model else "") + (f"; {row.source}" if row.source else "")
    return [
        row.set,
        row.accuracy_text(),
        _pct(row.false_negative_rate),
        _pct(row.false_positive_rate),
        "" if row.kappa is None else f"{row.kappa:.3f}",
        str(row.n),
        f"{how} (reference: {row.reference})",
    ]


AGREEMENT_COLUMNS = ("set", "agreement [95% CI]", "false negatives", "false positives", "kappa", "n", "how measured")


def primary_rows(validation: JudgeValidation) -> list[Agreement]:
    """The first figure of each set that has an accuracy (a head's JSON lists its main measurement of a
    set first)."""
    seen: dict[str, Agreement] = {}
    for row in validation.agreement:
        if row.accuracy is not None:
            seen.setdefault(row.set, row)
    return list(seen.values())


def trust_sentence(label: str, validation: JudgeValidation) -> str:
    """One sentence: "offline judge: 77% agreement with human labels on JailbreakBench ... (dev), 76% on ...".

    The figures are the validation record's, never typed in here.
    """
    rows = primary_rows(validation)
    if validation.status == "not_validated" or not validation.agreement:
        text = f"{label} judge: not validated here"
        return text + (f" ({validation.note})" if validation.note else "")
    if not rows:  # only error rates were measured
        return f"{label} judge ({validation.status_text}): no agreement measured, only error rates (see the report)"
    parts = [f"{100 * (r.accuracy or 0.0):.0f}% agreement with human labels on {r.set}" for r in rows[:1]]
    parts += [f"{100 * (r.accuracy or 0.0):.0f}% on {r.set}" for r in rows[1:]]
    text = f"{label} judge ({validation.status_text}): " + ", ".join(parts)
    if validation.status == "published":
        models = sorted({r.model for r in rows if r.model})
        if models:
            text += f" (with {', '.join(models)}; your judge model: {validation.judge_model or 'unknown'})"
    return text


def headline_trust_lines(label: str, validation: JudgeValidation) -> list[str]:
    """What the CLI and the report say after naming a headline judge: how far to trust it, what to do."""
    lines = [trust_sentence(label, validation)]
    if validation.advice:
        lines.append(validation.advice)
    return lines


def validations_from(raw: Sequence[object]) -> list[Agreement]:
    """Agreement entries read from a head's JSON (`agreement`), each checked against the schema."""
    return [Agreement.model_validate(entry) for entry in raw]


__all__ = [
    "AGREEMENT_COLUMNS",
    "LLM_JUDGE_ADVICE",
    "STATUS_TEXT",
    "Agreement",
    "JudgeValidation",
    "ValidationStatus",
    "agreement_cells",
    "headline_trust_lines",
    "known_validation",
    "not_validated",
    "primary_rows",
    "trust_sentence",
    "validations_from",
]
