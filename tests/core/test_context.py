"""PluginContext: what a plugin may use from its run (here: building the judge model's target)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from safemlrm.core.context import PluginContext
from safemlrm.pipeline.runner import Pipeline
from safemlrm.targets.fake import FakeTarget
from safemlrm.testing import plugin_context
from tests.helpers import fake_config, harmful_rows, write_jsonl

PROFILE = """\
name: my-grader
description: a user profile for a judge model
kind: fake
params: {default: "#thescore: 2"}
parser: plain
"""


def user_profiles(tmp_path: Path) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "my-grader.yaml").write_text(PROFILE, encoding="utf-8")
    return folder


def test_make_target_finds_user_profiles(tmp_path: Path) -> None:
    ctx = plugin_context(profiles_dir=str(user_profiles(tmp_path)))
    target = ctx.make_target({"name": "grader", "profile": "my-grader"})
    assert isinstance(target, FakeTarget) and target.params.default == "#thescore: 2"


def test_a_judge_model_from_a_user_profile_runs(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", harmful_rows(2))
    judge = {"kind": "rubric", "params": {"model": {"name": "grader", "profile": "my-grader"}}}
    config = fake_config(data, judges=[judge], profiles_dir=str(user_profiles(tmp_path)))
    pipeline = Pipeline(config, tmp_path / "run", base_dir=tmp_path, progress=False, reports=False)
    counters = asyncio.run(pipeline.run()).counters
    assert counters.judge_calls > 0 and counters.judge_failed == 0


def test_a_context_without_a_target_builder_says_how_to_get_one() -> None:
    # The kernel context imports no plugin package; who makes it hands in the builder.
    import pytest

    with pytest.raises(RuntimeError, match="target_builder"):
        PluginContext().make_target({"name": "grader", "kind": "fake"})
