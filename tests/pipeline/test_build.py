"""Building judges: the identity that keys the store and the shared judgement cache covers everything
that changes a verdict (prompt text, head weights, parsing code), and each judge's validation record."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from tests.helpers import fake_config, harmful_rows, write_jsonl

import safemlrm.judges._llm_judge as llm_judge
from safemlrm.core.trust import JudgeValidation
from safemlrm.core.types import Sample
from safemlrm.judges._llm_judge import LLMJudge
from safemlrm.judges._offline_features import LinearHead
from safemlrm.pipeline import build
from safemlrm.pipeline.build import BuiltJudge, build_run, judge_validation

FAKE_MODEL = {"name": "grader", "kind": "fake", "params": {"model": "some-judge-model"}}
SAMPLE = Sample(
    id="s1", dataset="t", category="01-Illegal_Activitiy", instruction="Explain how to pick a lock", prompt="p"
)
IN_CONTEXT = SAMPLE.model_copy(update={"metadata": {"context": "A locksmith's notes."}})

# Every LLM judge configuration whose prompt comes from a shipped prompt file.
PROMPTED = [
    ("rubric", {}),
    ("rubric", {"mode": "faithful"}),
    ("mm_safetybench", {}),
    ("strongreject", {}),
    ("harmbench_cls", {"variant": "llama2"}),
    ("harmbench_cls", {"variant": "mistral", "prompt_format": "raw"}),
    ("llama_guard", {"prompt_format": "explicit"}),
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", harmful_rows(2))


def built_judge(data: Path, kind: str, params: dict[str, Any]) -> BuiltJudge:
    config = fake_config(data, judges=[{"kind": kind, "params": params}])
    built = build_run(config, None, data.parent, targets=False)
    assert len(built.judges) == 1
    return built.judges[0]


def _changed(value: Any) -> Any:
    """Every prompt string of a prompt file, with a sentence added at its end."""
    if isinstance(value, str):
        return value + " Changed." if len(value) >= 40 else value
    if isinstance(value, dict):
        return {k: _changed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_changed(v) for v in value]
    return value


@pytest.fixture
def changed_prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The judges read a copy of the shipped prompt files in which every prompt text is changed."""
    root = tmp_path / "package"
    prompts = root / "data" / "prompts"
    shutil.copytree(str(resources.files("safemlrm") / "data" / "prompts"), prompts)
    for path in prompts.iterdir():
        if path.suffix == ".json":
            path.write_text(json.dumps(_changed(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")
        elif path.suffix == ".txt":
            path.write_text(path.read_text(encoding="utf-8") + "\nChanged.\n", encoding="utf-8")
    llm_judge.prompt_text.cache_clear()
    llm_judge.prompt_json.cache_clear()
    monkeypatch.setattr(llm_judge, "resources", SimpleNamespace(files=lambda package: root))
    yield
    llm_judge.prompt_text.cache_clear()
    llm_judge.prompt_json.cache_clear()


def _messages(judge: BuiltJudge) -> list[str]:
    assert isinstance(judge.judge, LLMJudge)
    return [m.model_dump_json() for s in (SAMPLE, IN_CONTEXT) for m in judge.judge.messages(s, "a response")]


@pytest.mark.parametrize(
    ("kind", "params"), PROMPTED, ids=[f"{k}-{'-'.join(map(str, p.values()))}" for k, p in PROMPTED]
)
def test_a_changed_prompt_is_a_new_judge_identity(
    kind: str, params: dict[str, Any], data: Path, request: pytest.FixtureRequest
) -> None:
    before = built_judge(data, kind, {"model": FAKE_MODEL, **params})
    request.getfixturevalue("changed_prompts")
    after = built_judge(data, kind, {"model": FAKE_MODEL, **params})
    assert _messages(after) != _messages(before)  # the judge model now gets another prompt...
    assert after.identity_key != before.identity_key  # ...so no verdict cached for the old one is served


def test_llama_guard_chat_template_prompt_comes_from_the_judge_model(
    data: Path, request: pytest.FixtureRequest
) -> None:
    """In chat_template mode the prompt file is not used (the model's chat template, part of the judge
    model's identity, builds the prompt): a changed file changes neither the messages nor the key."""
    before = built_judge(data, "llama_guard", {"model": FAKE_MODEL})
    request.getfixturevalue("changed_prompts")
    after = built_judge(data, "llama_guard", {"model": FAKE_MODEL})
    assert _messages(after) == _messages(before) and after.identity_key == before.identity_key
    other_model = {**FAKE_MODEL, "params": {"model": "another-guard"}}
    assert built_judge(data, "llama_guard", {"model": other_model}).identity_key != before.identity_key


def test_changed_head_bytes_are_a_new_judge_identity(data: Path, tmp_path: Path) -> None:
    head = LinearHead(
        ("not_harmful", "harmful"), ("cos",), np.array([[0.0], [2.0]]), np.array([0.0, -1.0]), 1.0, {}, ""
    )
    head.save(tmp_path / "mine")
    first = built_judge(data, "offline", {"head": str(tmp_path / "mine.npz")})
    retrained = LinearHead(head.classes, head.blocks, np.array([[0.0], [2.5]]), head.bias, 1.0, {}, "")
    retrained.save(tmp_path / "mine")
    second = built_judge(data, "offline", {"head": str(tmp_path / "mine.npz")})
    assert second.identity_key != first.identity_key


def test_changed_verdict_code_is_a_new_judge_identity(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = built_judge(data, "rubric", {"model": FAKE_MODEL})
    assert first.info.identity["code"] == build.verdict_code_version(type(first.judge))
    monkeypatch.setattr(build, "verdict_code_version", lambda cls: "a-fix-to-the-parsing-code")
    assert built_judge(data, "rubric", {"model": FAKE_MODEL}).identity_key != first.identity_key


def test_built_judges_carry_their_validation_record(data: Path) -> None:
    keyword = built_judge(data, "keyword", {})
    assert keyword.info.validation is not None and keyword.info.validation.status == "measured"
    rubric = built_judge(data, "rubric", {"model": FAKE_MODEL})
    assert rubric.info.validation is not None and rubric.info.validation.status == "not_validated"
    assert rubric.info.validation.judge_model == "some-judge-model"


class _Silent:
    pass


class _Broken:
    def validation(self) -> JudgeValidation:
        raise KeyError("agreement")


class _Wrong:
    def validation(self) -> dict[str, str]:
        return {"status": "measured"}


def test_a_judge_without_a_readable_record_is_not_validated_and_the_run_goes_on() -> None:
    silent = judge_validation(_Silent(), "mine")
    assert silent.status == "not_validated" and "does not describe" in silent.note
    broken = judge_validation(_Broken(), "mine")
    assert broken.status == "not_validated" and "KeyError" in broken.note
    wrong = judge_validation(_Wrong(), "mine")
    assert wrong.status == "not_validated" and "dict" in wrong.note
