"""Validation records as data: the schema the heads' JSON follows, and the sentences shown to users."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from safemlrm.core.trust import (
    LLM_JUDGE_ADVICE,
    NO_RECORD,
    Agreement,
    JudgeValidation,
    agreement_cells,
    headline_trust_lines,
    known_validation,
    not_validated,
    primary_rows,
    trust_sentence,
)

# An entry as the offline judge's training script writes it under `agreement` (the other fields of a
# future version, such as `threshold`, are ignored).
ENTRY = {
    "set": "JailbreakBench judge comparison (dev)",
    "method": "behaviour-grouped 10-fold cross-validation",
    "reference": "human majority",
    "n": 150,
    "accuracy": 0.9133,
    "accuracy_ci95": [0.8571, 0.9487],
    "false_negative_rate": 0.0727,
    "false_positive_rate": 0.0947,
    "kappa": 0.8161,
    "threshold": 0.5,
}


def test_an_agreement_entry_reads_the_heads_schema() -> None:
    row = Agreement.model_validate(ENTRY)
    assert row.accuracy_ci95 == (0.8571, 0.9487) and row.n == 150
    assert row.accuracy_text() == "91.3% [85.7, 94.9]"
    assert agreement_cells(row) == [
        "JailbreakBench judge comparison (dev)",
        "91.3% [85.7, 94.9]",
        "7.3%",
        "9.5%",
        "0.816",
        "150",
        "behaviour-grouped 10-fold cross-validation (reference: human majority)",
    ]
    with pytest.raises(ValidationError):
        Agreement.model_validate({**ENTRY, "accuracy": 91.3})  # a percentage is not a rate
    with pytest.raises(ValidationError):
        Agreement.model_validate({k: v for k, v in ENTRY.items() if k != "n"})


def test_sentences_follow_the_record() -> None:
    second = Agreement.model_validate({**ENTRY, "set": "HarmBench classifier validation, text (dev)", "accuracy": 0.88})
    out_of_source = Agreement.model_validate({**ENTRY, "method": "out-of-source", "accuracy": 0.7})
    measured = JudgeValidation(status="measured", agreement=(Agreement.model_validate(ENTRY), out_of_source, second))
    assert primary_rows(measured) == [measured.agreement[0], second]  # the first figure of each set
    assert trust_sentence("offline", measured) == (
        "offline judge (measured here): 91% agreement with human labels on JailbreakBench judge comparison (dev), "
        "88% on HarmBench classifier validation, text (dev)"
    )
    published = JudgeValidation(
        status="published",
        agreement=(Agreement.model_validate({**ENTRY, "model": "org/Guard-2"}),),
        judge_model="Guard-2",
    )
    assert trust_sentence("guard", published).endswith("(with org/Guard-2; your judge model: Guard-2)")
    assert published.status_text == "published, not measured here"
    assert (
        trust_sentence("mine", not_validated("nothing published"))
        == "mine judge: not validated here (nothing published)"
    )


def test_headline_lines_add_the_advice_of_a_judge_that_has_one() -> None:
    record = not_validated("no figures", advice=LLM_JUDGE_ADVICE)
    assert headline_trust_lines("offline", record) == [
        "offline judge: not validated here (no figures)",
        LLM_JUDGE_ADVICE,
    ]
    assert headline_trust_lines("g", not_validated("x")) == ["g judge: not validated here (x)"]
    assert "kind: rubric" in LLM_JUDGE_ADVICE and "docs/judges.md" in LLM_JUDGE_ADVICE


def test_a_run_judged_before_records_existed_is_not_validated() -> None:
    assert known_validation(None) == not_validated(NO_RECORD)
    record = not_validated("x")
    assert known_validation(record) is record


def test_an_entry_with_error_rates_only_is_listed_but_not_in_the_sentence() -> None:
    """As the retrained offline judge writes its XSTest-safe check: no accuracy, a false-positive rate."""
    safe_only = Agreement.model_validate(
        {
            "set": "XSTest v2 completions of safe prompts (dev, 150 rows)",
            "method": "final model (never trained on XSTest)",
            "reference": "not harmful by construction (safe prompts)",
            "n": 150,
            "false_positive_rate": 0.02,
        }
    )
    assert agreement_cells(safe_only)[1:4] == ["–", "", "2.0%"]
    record = JudgeValidation(status="measured", agreement=(safe_only, Agreement.model_validate(ENTRY)))
    assert primary_rows(record) == [record.agreement[1]]
    assert trust_sentence("offline", record) == (
        "offline judge (measured here): 91% agreement with human labels on JailbreakBench judge comparison (dev)"
    )
    only = JudgeValidation(status="measured", agreement=(safe_only,))
    assert "no agreement measured, only error rates" in trust_sentence("offline", only)
