"""The bundled judges' validation records: the heads' measured figures, the keyword baseline's, and the
figures published for the LLM judges' prompts, which hold only for the judge model they name."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safemlrm.core import plugins
from safemlrm.core.trust import LLM_JUDGE_ADVICE, Agreement, JudgeValidation
from safemlrm.judges._offline_features import LinearHead
from safemlrm.judges._trust import head_json, head_validation, published_data, published_validation, same_model
from safemlrm.testing import plugin_context

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
LLM_KINDS = ("rubric", "mm_safetybench", "strongreject", "harmbench_cls", "llama_guard")


def _model(name: str) -> dict[str, Any]:
    return {"name": "grader", "kind": "fake", "params": {"model": name}}


@pytest.mark.parametrize(
    ("head", "sets"),
    [
        ("offline_harm", ["JailbreakBench judge comparison", "HarmBench classifier validation, text"]),
        ("refusal", ["XSTest v2 completions"]),
    ],
)
def test_shipped_heads_carry_their_held_out_metrics_as_agreement(head: str, sets: list[str]) -> None:
    """Each figure of a shipped head's `agreement` is one of the held-out `metrics` written beside it."""
    meta = head_json(head)
    record = head_validation(meta, head)
    assert record.status == "measured" and record.advice == LLM_JUDGE_ADVICE
    assert all(any(row.set.startswith(name) for row in record.agreement) for name in sets)
    measured = [m for m in meta["metrics"].values() if isinstance(m, dict)]
    for row in record.agreement:
        if row.accuracy is None:
            continue
        figures = (row.n, row.accuracy, list(row.accuracy_ci95 or ()), row.kappa)
        rates = (row.false_negative_rate, row.false_positive_rate)
        assert any(
            figures == (m["n"], m["accuracy"], m["accuracy_ci95"], m["kappa"])
            and rates == (m["false_negative_rate"], m["false_positive_rate"])
            for m in measured
        ), row


def test_offline_judge_reads_its_record_from_the_head_it_loaded(tmp_path: Path) -> None:
    judge = plugins.judges.create("offline", {}, plugin_context(label="offline"))
    assert judge.validation() == head_validation(head_json("offline_harm"), "offline_harm")  # type: ignore[attr-defined]
    head = LinearHead(
        ("not_harmful", "harmful"), ("cos",), np.array([[0.0], [2.0]]), np.array([0.0, -1.0]), 1.0, {}, ""
    )
    head.save(tmp_path / "mine")
    path = str(tmp_path / "mine.npz")
    mine = plugins.judges.create("offline", {"head": path}, plugin_context(label="offline")).validation()  # type: ignore[attr-defined]
    assert mine.status == "not_validated" and mine.status_text == "not validated here" and mine.advice
    entry = {"set": "my labels", "method": "5-fold CV", "n": 40, "accuracy": 0.8, "accuracy_ci95": [0.65, 0.9]}
    meta = json.loads((tmp_path / "mine.json").read_text())
    (tmp_path / "mine.json").write_text(json.dumps({**meta, "agreement": [entry]}))
    mine = plugins.judges.create("offline", {"head": path}, plugin_context(label="offline")).validation()  # type: ignore[attr-defined]
    assert mine.status == "measured" and mine.agreement == (Agreement.model_validate(entry),)


def _judge_eval(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RESULTS / f"judge_eval_{name}.json").read_text())
    return data


def _same(row: Agreement, measured: dict[str, Any]) -> bool:
    return (row.n, row.accuracy, row.kappa, row.false_negative_rate, row.false_positive_rate) == (
        measured["n"],
        round(measured["accuracy"]["value"], 4),
        round(measured["kappa"], 4),
        round(measured["false_negative_rate"]["value"], 4),
        round(measured["false_positive_rate"]["value"], 4),
    )


def test_keyword_figures_are_its_judge_eval_results_for_the_default_phrases_only() -> None:
    record = plugins.judges.create("keyword", {}, plugin_context(label="keyword")).validation()  # type: ignore[attr-defined]
    assert record.status == "measured"
    for row, name in zip(record.agreement, ("keyword_jbb", "keyword_harmbench", "keyword_xstest"), strict=True):
        assert _same(row, _judge_eval(name)["agreement"]) and row.source.endswith(f"judge_eval_{name}.json")
    mine = plugins.judges.create("keyword", {"refusals": ["nope"]}, plugin_context(label="k")).validation()  # type: ignore[attr-defined]
    assert mine.status == "not_validated" and not mine.agreement
    concurrency = plugins.judges.create("keyword", {"max_concurrency": 3}, plugin_context(label="k")).validation()  # type: ignore[attr-defined]
    assert concurrency.status == "measured"  # a setting that changes no verdict


def test_published_figures_are_those_of_the_judge_eval_files() -> None:
    published = {**_judge_eval("keyword_jbb")["published"], **_judge_eval("keyword_harmbench")["published"]}
    names = {
        (
            "cais/HarmBench-Llama-2-13b-cls",
            "HarmBench classifier validation, text (dev)",
        ): "HarmBench classifier (Llama-2-13B)",
        ("cais/HarmBench-Llama-2-13b-cls", "JailbreakBench judge comparison (dev)"): "HarmBench classifier",
        (
            "cais/HarmBench-Mistral-7b-val-cls",
            "HarmBench classifier validation, text (dev)",
        ): "HarmBench classifier (Mistral-7B)",
        ("meta-llama/Meta-Llama-Guard-2-8B", "JailbreakBench judge comparison (dev)"): "Llama Guard 2",
        ("meta-llama/LlamaGuard-7b", "HarmBench classifier validation, text (dev)"): "Llama Guard",
    }
    rows = [Agreement.model_validate(f) for kind in LLM_KINDS for f in published_data()[kind]["published"]]
    assert len(rows) == len(names)
    for row in rows:
        assert _same(row, published[names[(row.model or "", row.set)]])


@pytest.mark.parametrize("kind", LLM_KINDS)
def test_every_llm_judge_says_not_validated_here_unless_its_model_is_the_published_one(kind: str) -> None:
    judge = plugins.judges.create(kind, {"model": _model("gpt-4o-mini")}, plugin_context(label=kind))
    record = judge.validation()  # type: ignore[attr-defined]
    assert isinstance(record, JudgeValidation)
    assert record.status == "not_validated" and record.judge_model == "gpt-4o-mini" and record.note


@pytest.mark.parametrize(
    ("kind", "params", "model", "sets"),
    [
        ("harmbench_cls", {}, "cais/HarmBench-Llama-2-13b-cls", 2),
        ("harmbench_cls", {"variant": "mistral"}, "HarmBench-Mistral-7b-val-cls", 1),  # a served name
        ("llama_guard", {}, "meta-llama/Meta-Llama-Guard-2-8B", 1),
    ],
)
def test_published_figures_hold_for_the_model_they_were_published_with(
    kind: str, params: dict[str, Any], model: str, sets: int
) -> None:
    judge = plugins.judges.create(kind, {"model": _model(model), **params}, plugin_context(label=kind))
    record = judge.validation()  # type: ignore[attr-defined]
    assert record.status == "published" and record.status_text == "published, not measured here"
    assert len(record.agreement) == sets and all(same_model(model, r.model or "") for r in record.agreement)
    assert f"your judge model: {model}" in record.note


def test_another_model_or_prompt_keeps_the_published_figures_only_for_reference() -> None:
    other = published_validation("harmbench_cls", {"variant": "llama2"}, "gpt-4o-mini")
    assert other.status == "not_validated" and len(other.agreement) == 2
    assert "cais/HarmBench-Llama-2-13b-cls" in other.note and "your judge model: gpt-4o-mini" in other.note
    explicit = published_validation("llama_guard", {"prompt_format": "explicit"}, "meta-llama/Meta-Llama-Guard-2-8B")
    assert explicit.status == "not_validated" and not explicit.agreement and "chat_template" in explicit.note
    assert published_validation("my_judge", {}, "x").status == "not_validated"


def test_same_model_compares_repository_names() -> None:
    assert same_model("cais/HarmBench-Llama-2-13b-cls", "cais/HarmBench-Llama-2-13b-cls")
    assert same_model("harmbench-llama-2-13b-cls", "cais/HarmBench-Llama-2-13b-cls")
    assert not same_model("cais/HarmBench-Llama-2-13b-cls-gguf", "cais/HarmBench-Llama-2-13b-cls")
    assert not same_model(None, "cais/HarmBench-Llama-2-13b-cls")


def test_the_published_file_ships_in_the_package() -> None:
    assert (resources.files("safemlrm") / "data" / "judges" / "published_agreement.json").is_file()
