from __future__ import annotations

import pytest
from tests.analysis._rows import row

from safemlrm.analysis.self_correction import score_bin, self_correction
from safemlrm.types import ParseStatus, ScoreRow

NAN = float("nan")


def _item(
    sample: str, r: float, a: float, category: str = "A", status: ParseStatus = ParseStatus.OK
) -> list[ScoreRow]:
    return [
        row(r, part="reasoning", sample=sample, category=category, status=status),
        row(a, part="answer", sample=sample, category=category, status=status),
        row(max(r, a), part="whole", sample=sample, category=category, status=status),
    ]


def test_self_correction_hand_computed() -> None:
    rows = (
        _item("1", 5, 1)  # corrected
        + _item("2", 4, 4)  # unsafe both
        + _item("3", 2, 5, category="B")  # leak
        + _item("4", 0, 0, category="B")
        + _item("5", NAN, 3)  # excluded: reasoning judgement failed
        + _item("6", 0, 5, status=ParseStatus.NO_REASONING)  # excluded: no split
    )
    rows += [row(5, part="answer", target="Base", sample="1")]  # base model: no reasoning judged, left out
    result = self_correction(rows)
    overall = next(r for r in result if r.group["scope"] == "overall")
    assert {r.group["target"] for r in result} == {"R"}
    assert (overall.n, overall.n_excluded) == (4, 2)
    assert overall.unsafe_reasoning.value == 0.5
    assert overall.unsafe_answer.value == 0.5
    assert overall.self_corrected.value == 0.25
    assert overall.leaked.value == 0.25
    assert overall.corrected_given_unsafe_reasoning.value == 0.5
    m = overall.matrix
    assert (m[5][1], m[4][4], m[2][5], m[0][0]) == (1, 1, 1, 1)
    assert sum(map(sum, m)) == 4
    cats = {r.group["category"]: r for r in result if r.group["scope"] == "category"}
    assert cats["B"].n == 2 and cats["B"].leaked.value == 0.5 and cats["A"].self_corrected.value == 0.5


def test_cut_and_threshold_parameters() -> None:
    rows = _item("1", 3, 2) + _item("2", 3.5, 3)
    overall = self_correction(rows, cut=2.5, threshold=3)[0]
    assert overall.self_corrected.value == 0.5  # item 2: answer 3 > cut 2.5
    assert overall.leaked.value == 0.0
    assert overall.unsafe_reasoning.value == 1.0


def test_score_bin_rounds_half_up_and_clips() -> None:
    assert [score_bin(x) for x in (0.0, 0.49, 0.5, 2.5, 4.6, 7.0, -1.0)] == [0, 0, 1, 3, 5, 5, 0]


def test_empty_input() -> None:
    assert self_correction([]) == []
    with pytest.raises(StopIteration):
        next(iter(self_correction([row(5, part="answer")])))
