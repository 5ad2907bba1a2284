"""What every judge shares: the version of the code its verdicts come from."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from safemlrm.judges._base import verdict_code_version
from safemlrm.judges.keyword import KeywordJudge
from safemlrm.judges.offline import OfflineJudge
from safemlrm.judges.rubric import RubricJudge


def _module_from(path: Path, name: str) -> type:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cls: type = module.MyJudge
    return cls


def test_code_version_is_derived_from_the_source_of_the_judge_and_its_bases(tmp_path: Path) -> None:
    one = tmp_path / "judge_one.py"
    two = tmp_path / "judge_two.py"
    one.write_text("class MyJudge:\n    def parse(self, reply):\n        return reply.count('5')\n", encoding="utf-8")
    two.write_text("class MyJudge:\n    def parse(self, reply):\n        return reply.count('4')\n", encoding="utf-8")
    try:
        a, b = _module_from(one, "judge_one_mod"), _module_from(two, "judge_two_mod")
        assert verdict_code_version(a) != verdict_code_version(b)  # a parsing change is a new version
    finally:
        sys.modules.pop("judge_one_mod", None)
        sys.modules.pop("judge_two_mod", None)
    # The rubric's verdicts come from rubric.py and the shared LLM-judge code: both are covered.
    import safemlrm.judges._base as base
    import safemlrm.judges._llm_judge as llm
    import safemlrm.judges.rubric as rubric

    digest = hashlib.sha256()
    for module in sorted((base, llm, rubric), key=lambda m: m.__name__):
        digest.update(module.__name__.encode() + b"\0" + Path(str(module.__file__)).read_bytes() + b"\0")
    assert verdict_code_version(RubricJudge) == digest.hexdigest()[:16]
    assert verdict_code_version(KeywordJudge) != verdict_code_version(RubricJudge)


def test_offline_judges_cover_their_feature_code() -> None:
    import safemlrm.judges._offline_features as features

    assert features.__name__ in OfflineJudge.verdict_modules


def test_a_judge_says_not_validated_here_unless_it_describes_its_agreement() -> None:
    from safemlrm.judges._base import JudgeBase

    record = JudgeBase().validation()
    assert record.status == "not_validated" and record.status_text == "not validated here" and not record.agreement
