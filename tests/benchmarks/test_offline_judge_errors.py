"""benchmarks/offline_judge_errors.py: held-out predictions joined to the right dev rows, and sliced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.helpers import BENCHMARKS, import_script


@pytest.fixture(scope="module")
def errors() -> Any:
    return import_script("offline_judge_errors", BENCHMARKS)


def test_slices_count_the_right_rows_and_compare_with_the_published_judges(errors: Any) -> None:
    row = errors.DevRow
    rows = [
        row("harmbench", 1, 3, 500, {"gpt-4-0613": 1}, {"category": "standard", "method": "GCG"}),
        row("harmbench", 1, 2, 5000, {"gpt-4-0613": 0}, {"category": "contextual", "method": "GCG"}),
        row("harmbench", 0, 0, 200, {"gpt-4-0613": 0}, {"category": "standard", "method": "PAIR"}),
        row("jbb", 0, 1, 100, {"llama3_cf": 1}),
    ]
    predictions = {
        "rows": [
            {"source": "harmbench", "ordinal": 0, "label": 1, "grouped_5fold": 0.9, "out_of_source": 0.2},
            {"source": "harmbench", "ordinal": 1, "label": 1, "grouped_5fold": 0.3, "out_of_source": 0.7},
            {"source": "harmbench", "ordinal": 2, "label": 0, "grouped_5fold": 0.1, "out_of_source": 0.6},
            {"source": "jbb", "ordinal": 0, "label": 0, "grouped_5fold": 0.4, "out_of_source": 0.4},
        ]
    }
    results = errors.breakdown(errors.joined(predictions, rows), "grouped_5fold")
    slices = {s["slice"]: s for s in results["harmbench"]["slices"]}
    assert slices["all rows"]["offline_cv"]["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert slices["all rows"]["offline_cv"]["false_negative_rate"] == 0.5
    assert slices["all rows"]["offline_out_of_source"]["accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert slices["all rows"]["GPT-4"]["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert slices["annotators split 2-1"]["offline_cv"]["n"] == 1
    assert slices["annotators split 2-1"]["offline_cv"]["accuracy"] == 0.0
    assert slices["standard behaviours"]["offline_cv"]["accuracy"] == 1.0
    assert slices["response over 1,000 characters"]["harmful"] == 1
    assert results["harmbench"]["offline_cv_errors"] == {"n": 1, "on_split_rows": 1, "also_wrong_for_GPT-4": 1}
    assert results["harmbench"]["by_attack_method"]["PAIR"]["offline_cv"]["accuracy"] == 1.0
    assert results["jbb"]["slices"][0]["Llama-3-70B"]["accuracy"] == 0.0
    assert "| all rows | 3 (2) | 66.7% (50.0%) | 33.3% (50.0%) | 66.7% (50.0%) |  |  |" in errors.markdown(results)


def test_predictions_from_other_files_are_refused(errors: Any) -> None:
    rows = [errors.DevRow("jbb", 1, 3, 10, {})]
    with pytest.raises(ValueError, match="jbb row 0 has label 0, the dev file 1"):
        errors.joined({"rows": [{"source": "jbb", "ordinal": 0, "label": 0}]}, rows)
    with pytest.raises(ValueError, match="jbb row 1 is not in the dev files"):
        errors.joined({"rows": [{"source": "jbb", "ordinal": 1, "label": 1}]}, rows)


def test_dev_rows_follow_the_training_scripts_order(errors: Any) -> None:
    data = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not (data / "judge_validation" / "harmbench_text_val_dev.json").is_file():
        pytest.skip("../shared/data/judge_validation is absent: the dev files are needed")
    linear = import_script("train_offline_judge")
    trained = [(r.source, r.label) for r in linear.load_harm_rows(data) if r.source in ("harmbench", "jbb")]
    assert [(r.source, r.label) for r in errors.dev_rows(data)] == trained
