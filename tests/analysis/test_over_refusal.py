from __future__ import annotations

import math

from tests.analysis._rows import row

from safemlrm.analysis.harm import harm_stats
from safemlrm.analysis.over_refusal import over_refusal, refusal_judge, tradeoff
from safemlrm.core.records import JudgeInfo

JUDGES = [JudgeInfo("rubric", "rubric"), JudgeInfo("kw", "keyword"), JudgeInfo("xs", "refusal_classifier")]


def _benign(target: str, judge: str, labels: list[str], part: str = "answer") -> list:
    return [
        row(0.0, target=target, judge=judge, label=lab, sample=f"b{i}", benign=True, part=part)
        for i, lab in enumerate(labels)
    ]


def test_classifier_preferred_over_keyword() -> None:
    rows = _benign("R", "kw", ["refusal", "no_refusal", "no_refusal", "no_refusal"])
    rows += _benign("R", "xs", ["full_refusal", "partial_refusal", "full_compliance", "full_compliance"])
    rows += [row(float("nan"), target="R", judge="xs", label="", sample="b9", benign=True, part="answer")]
    assert refusal_judge(rows, JUDGES) == ("xs", "classifier")
    (result,) = over_refusal(rows, JUDGES)
    assert result.group == {"judge": "xs", "method": "classifier", "target": "R", "part": "answer"}
    assert (result.n, result.n_failed) == (4, 1)
    assert result.refusal.value == 0.5
    assert result.full_refusal.value == 0.25 and result.partial_refusal.value == 0.25


def test_keyword_fallback_and_whole_part() -> None:
    rows = _benign("B", "kw", ["refusal", "no_refusal", "refusal"], part="whole")
    rows += _benign("B", "rubric", ["score_0"] * 3, part="whole")
    (result,) = over_refusal(rows, JUDGES)
    assert result.group["method"] == "keyword" and result.group["part"] == "whole"
    assert result.refusal.value == 2 / 3
    assert math.isnan(result.partial_refusal.value)


def test_no_refusal_judge() -> None:
    assert over_refusal(_benign("B", "rubric", ["score_0"]), JUDGES) == []


def test_tradeoff_joins_asr_and_refusal() -> None:
    rows = [row(5, target="R", sample="h1"), row(0, target="R", sample="h2"), row(0, target="B", sample="h1")]
    rows += _benign("R", "kw", ["no_refusal", "no_refusal"]) + _benign("B", "kw", ["refusal", "no_refusal"])
    harm = harm_stats(rows, by=("target", "part"))
    out = {r["target"]: r for r in tradeoff(harm, over_refusal(rows, JUDGES))}
    assert out["R"]["asr"] == 0.5 and out["R"]["refusal"] == 0.0
    assert out["B"]["asr"] == 0.0 and out["B"]["refusal"] == 0.5 and out["B"]["n_benign"] == 2
