"""`safemlrm judge-eval`: reading labelled files, scoring against humans, the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.types import Judgement
from safemlrm.testing import plugin_context
from safemlrm.verbs.cli import main
from safemlrm.verbs.judge_eval import LabelsError, detect_format, evaluate, load_labels, predicted_binary, score

JBB = "judge_validation/jbb_judge_comparison_dev.csv"
HARMBENCH = "judge_validation/harmbench_text_val_dev.json"
XSTEST = "judge_validation/xstest_v2_completions_dev.csv"
BEHAVIOURS = "benchmarks/harmbench_behaviors_text_all.csv"


def j(score: float, label: str = "") -> Judgement:
    return Judgement(judge="t", score=score, label=label)


def test_predicted_binary() -> None:
    assert predicted_binary(j(4.0), "harm", 4.0) == 1 and predicted_binary(j(3.9), "harm", 4.0) == 0
    assert predicted_binary(j(float("nan")), "harm", 4.0) is None
    assert predicted_binary(j(0.0, "full_refusal"), "refusal", 4.0) == 1
    assert predicted_binary(j(5.0, "no_refusal"), "refusal", 4.0) == 0
    assert predicted_binary(j(1.0, "score_1"), "refusal", 4.0) == 1  # a harm score under the threshold


def test_generic_csv_with_columns(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "q,a,y\nhow to x,I cannot help,0\nhow to y,Sure: step 1,1\nhow to z,Sure thing,0\n", encoding="utf-8"
    )
    labels = load_labels(path, columns="instruction=q,text=a,label=y")
    assert detect_format(path) == "csv" and [r.truth for r in labels.rows] == [0, 1, 0]
    judge = plugins.judges.create("keyword", {}, PluginContext(label="keyword"))
    result = asyncio.run(evaluate(judge, labels, judge_name="keyword"))
    assert result.agreement is not None and result.agreement.accuracy.value == pytest.approx(2 / 3)
    assert result.agreement.false_positive_rate.successes == 1  # "Sure thing" flagged, humans said 0
    assert "keyword (this run)" in result.render()


def test_generic_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("q,a,y\nhow to x,I cannot help,maybe\n", encoding="utf-8")
    with pytest.raises(LabelsError, match="--columns"):
        load_labels(path)
    with pytest.raises(LabelsError, match=r"row 2: column 'y' must be 0/1"):
        load_labels(path, columns="instruction=q,text=a,label=y")
    with pytest.raises(LabelsError, match="missing column"):
        load_labels(path, columns="instruction=q,text=nope,label=y")
    assert load_labels(path, columns="instruction=q,text=a,label=y", positive="maybe").rows[0].truth == 1
    with pytest.raises(LabelsError, match="no such file"):
        load_labels(tmp_path / "missing.csv")


def test_failed_judgements_are_counted_not_scored(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps([{"i": "a", "t": "b", "y": 1}, {"i": "c", "t": "d", "y": 0}]), encoding="utf-8")
    labels = load_labels(path, columns="instruction=i,text=t,label=y")
    result = score(labels, [j(5.0), j(float("nan"))], judge_name="t", identity={})
    assert result.n_failed == 1 and result.agreement is not None and result.agreement.n == 1


def test_jbb_file_and_published_judges(shared_data: Path) -> None:
    labels = load_labels(shared_data / JBB)
    assert labels.format == "jbb" and labels.task == "harm" and len(labels.rows) == 150
    judge = plugins.judges.create("keyword", {}, PluginContext(label="keyword"))
    result = asyncio.run(evaluate(judge, labels, judge_name="keyword"))
    published = {name: round(100 * a.accuracy.value, 1) for name, a in result.published.items()}
    # The README's numbers for these rows.
    assert published == {"Llama-3-70B": 90.7, "GPT-4": 88.7, "Llama Guard 2": 86.7, "HarmBench classifier": 81.3}
    assert result.human_alpha is not None and 0 < result.human_alpha <= 1


def test_harmbench_file_joins_behaviours(shared_data: Path) -> None:
    labels = load_labels(shared_data / HARMBENCH, behaviors=shared_data / BEHAVIOURS)
    assert labels.format == "harmbench" and len(labels.rows) == 298
    assert len(labels.skipped) == 2  # two behaviour ids are not in the behaviours file
    assert all(row.sample.instruction and row.published for row in labels.rows)
    judge = plugins.judges.create("keyword", {}, PluginContext(label="keyword"))
    result = asyncio.run(evaluate(judge, labels, judge_name="keyword"))
    gpt4 = result.published["GPT-4-0613"].accuracy.value
    assert 0.89 < gpt4 < 0.93  # 91.1% on all 302 rows


def test_harmbench_without_behaviours_finds_the_sibling_file_or_says_so(shared_data: Path, tmp_path: Path) -> None:
    assert load_labels(shared_data / HARMBENCH).rows  # ../benchmarks/ beside judge_validation/
    copy = tmp_path / "hb.json"
    copy.write_text((shared_data / HARMBENCH).read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(LabelsError, match="--behaviors"):
        load_labels(copy)


def test_xstest_file_is_a_refusal_task(shared_data: Path) -> None:
    labels = load_labels(shared_data / XSTEST)
    assert labels.format == "xstest" and labels.task == "refusal" and len(labels.rows) == 1350
    judge = plugins.judges.create("keyword", {}, PluginContext(label="keyword"))
    result = asyncio.run(evaluate(judge, labels, judge_name="keyword"))
    assert result.published["string matching"].accuracy.value == pytest.approx(0.8926, abs=1e-3)
    assert result.three_class_accuracy is None  # keyword labels are not XSTest's classes
    assert result.published_three_class["string matching"] == pytest.approx(0.8363, abs=1e-3)


def test_llm_judge_through_the_fake_target(shared_data: Path) -> None:
    judge = plugins.judges.create(
        "harmbench_cls",
        {"model": {"name": "cls", "kind": "fake", "params": {"default": "Yes"}}},
        plugin_context(label="harmbench_cls"),
    )
    labels = load_labels(shared_data / JBB)
    labels.rows = labels.rows[:10]
    result = asyncio.run(evaluate(judge, labels, judge_name="harmbench_cls"))
    assert result.agreement is not None and result.agreement.false_negative_rate.value == 0.0  # always "yes"


def test_cli_writes_text_and_json(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval.json"
    code = main(["judge-eval", "--judge", "keyword", "--labels", str(shared_data / JBB), "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "keyword (this run)" in text and "Llama-3-70B" in text
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["n_rows"] == 150 and data["agreement"]["n"] == 150 and "GPT-4" in data["published"]


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["judge-eval", "--judge", "keyword", "--labels", str(tmp_path / "nope.csv")])
    assert code == 2 and "no such file" in capsys.readouterr().err
    code = main(["judge-eval", "--judge", "rubrik", "--labels", str(tmp_path / "nope.csv")])
    assert code == 2


def test_cli_uses_a_config_judge_and_its_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "l.csv"
    labels.write_text("q,a,y\nhow to x,Step 1,1\nhow to y,No.,0\n", encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text(
        "datasets: [{kind: jsonl, params: {path: x.jsonl}}]\n"
        "targets:\n  - {name: grader, kind: fake, params: {default: '#thescore: 5'}}\n"
        "judges:\n  - {kind: rubric, name: strict, params: {model: grader}}\n",
        encoding="utf-8",
    )
    code = main(
        [
            "judge-eval",
            "--judge",
            "strict",
            "--config",
            str(config),
            "--labels",
            str(labels),
            "--columns",
            "instruction=q,text=a,label=y",
        ]
    )
    assert code == 0
    assert "strict (this run)" in capsys.readouterr().out


def test_in_sample_evaluation_is_flagged(shared_data: Path) -> None:
    judge = plugins.judges.create("refusal", {}, PluginContext(label="refusal"))
    judge.predict = lambda pairs: __import__("numpy").tile([0.9, 0.05, 0.05], (len(pairs), 1))  # no encoder needed
    labels = load_labels(shared_data / XSTEST)
    labels.rows = labels.rows[:5]
    result = asyncio.run(evaluate(judge, labels, judge_name="refusal"))
    assert result.in_sample and "in-sample" in result.render() and result.as_dict()["in_sample"]
