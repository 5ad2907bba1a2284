"""The SafeMLRM study preset: valid, and faithful to the study's facts."""

from __future__ import annotations

from pathlib import Path

from safemlrm.core.config import parse_config
from safemlrm.verbs.cli import main


def preset_text(capsys) -> str:  # type: ignore[no-untyped-def]
    assert main(["preset", "safemlrm-study"]) == 0
    return str(capsys.readouterr().out)


def test_preset_lists_and_validates(capsys, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert main(["preset"]) == 0
    assert "safemlrm-study" in capsys.readouterr().out
    path = tmp_path / "study.yaml"
    path.write_text(preset_text(capsys))
    # As shipped, it names data folders and an API key this machine does not have: validate says which.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["validate", str(path)]) == 2
    errors = capsys.readouterr().err
    for missing in ("/data/MM-SafetyBench/data", "/data/MM-SafetyBench/imgs", "/data/FigStep/data/question"):
        assert f"{missing!r} does not exist" in errors
    assert "judge 'rubric' model 'gpt-4o-mini'" in errors and "OPENAI_API_KEY is not set" in errors
    # With the folders (as the preset's header says, through --set) and the key, it is valid.
    for folder in ("mmsb", "imgs", "question"):
        (tmp_path / folder).mkdir()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key-0000")
    overrides = [
        f"datasets.mmsb.params.root={tmp_path / 'mmsb'}",
        f"attacks.jailbreak.params.image_dir={tmp_path / 'imgs'}",
        f"datasets.safebench.params.path={tmp_path / 'question'}",
    ]
    assert main(["validate", str(path), *(a for o in overrides for a in ("--set", o))]) == 0
    assert "sk-not-a-real-key" not in capsys.readouterr().out


def test_preset_holds_the_study_matrix(capsys) -> None:  # type: ignore[no-untyped-def]
    config = parse_config(preset_text(capsys))
    pairs = {t.name: t.base for t in config.targets}
    assert pairs["r1-onevision"] == pairs["mm-eureka-qwen"] == "qwen2.5-vl"
    assert pairs["mulberry-qwen2vl"] == "qwen2-vl"
    assert pairs["mulberry-llava"] == "llama3-llava-next"
    assert pairs["mulberry-llama"] == "llama-3.2-vision"
    mmsb = config.datasets[0]
    assert mmsb.params["scenarios"] == [1, 2, 3, 4, 6, 7, 9, 10, 11, 12]
    assert mmsb.params["changed_question"] is True
    assert config.judges[0].kind == "rubric" and config.judges[0].params["mode"] == "faithful"
    assert config.asr_threshold == 4 and [p.value for p in config.parts] == ["reasoning", "answer", "whole"]


def test_preset_selects_1256_questions(capsys, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    from safemlrm.core import plugins
    from safemlrm.core.context import PluginContext

    config = parse_config(preset_text(capsys))
    params = {**config.datasets[0].params, "root": str(shared_data / "benchmarks" / "mm_safetybench")}
    dataset = plugins.datasets.create("mm_safetybench", params, PluginContext())
    assert sum(1 for _ in dataset.load()) == 1256
