"""The reasoning-vlms-2026 preset: lists, validates, holds its pairs, and its dry run shows its calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from safemlrm.core.config import parse_config
from safemlrm.core.target_build import resolve_target
from safemlrm.verbs.cli import main

NAME = "reasoning-vlms-2026"


def preset_text(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["preset", NAME]) == 0
    return capsys.readouterr().out


def test_preset_lists_and_validates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["preset"]) == 0
    assert NAME in capsys.readouterr().out.split()
    path = tmp_path / "vlms.yaml"
    path.write_text(preset_text(capsys))
    # As shipped it names data folders and an API key this machine does not have: validate says which.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["validate", str(path)]) == 2
    errors = capsys.readouterr().err
    missing_folders = (
        "/data/MM-SafetyBench/data", "/data/FigStep/data/question", "/data/xstest", "/data/MM-SafetyBench/imgs"
    )
    for missing in missing_folders:
        assert f"{missing!r} does not exist" in errors
    assert "OPENAI_API_KEY is not set" in errors
    for folder in ("mmsb", "question", "xstest", "imgs"):
        (tmp_path / folder).mkdir()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key-0000")
    overrides = [
        f"datasets.mmsb.params.root={tmp_path / 'mmsb'}",
        f"datasets.safebench.params.path={tmp_path / 'question'}",
        f"datasets.xstest.params.path={tmp_path / 'xstest'}",
        f"attacks.sd_typo.params.image_dir={tmp_path / 'imgs'}",
    ]
    assert main(["validate", str(path), *(a for o in overrides for a in ("--set", o))]) == 0
    assert "valid (3 datasets, 3 attacks, 10 targets, 2 judges)" in capsys.readouterr().out


def test_preset_pairs_models_with_their_bases(capsys: pytest.CaptureFixture[str]) -> None:
    config = parse_config(preset_text(capsys))
    assert config.samples == 4
    pairs = {t.name: t.base for t in config.targets if t.base}
    assert pairs == {
        "qwen3-vl-8b-thinking": "qwen3-vl-8b-instruct",
        "kimi-vl-thinking": "kimi-vl-instruct",
        "mimo-vl-rl": "mimo-vl-sft",
        "glm-4.5v-thinking": "glm-4.5v-no-thinking",
        "internvl3.5-8b-thinking": "internvl3.5-8b-no-thinking",
    }
    resolved = {t.name: resolve_target(t) for t in config.targets}
    on, off = resolved["glm-4.5v-thinking"], resolved["glm-4.5v-no-thinking"]
    assert on.params["model"] == off.params["model"] == "zai-org/GLM-4.5V"  # one model, two switches
    assert on.params["chat_template_kwargs"] == {"enable_thinking": True} and on.reasoning
    assert off.params["chat_template_kwargs"] == {"enable_thinking": False} and not off.reasoning
    ivl_on, ivl_off = resolved["internvl3.5-8b-thinking"], resolved["internvl3.5-8b-no-thinking"]
    assert ivl_on.params["model"] == ivl_off.params["model"] == "OpenGVLab/InternVL3_5-8B"
    assert "<think>" in ivl_on.params["system_prompt"] and ivl_off.params["system_prompt"] is None
    assert "chat_template_kwargs" not in ivl_on.params and ivl_on.reasoning and not ivl_off.reasoning
    # every target samples (temperature > 0) and is served over the OpenAI-compatible API
    assert all(r.kind == "openai" and r.params["temperature"] > 0 for r in resolved.values())
    assert resolved["qwen3-vl-8b-thinking"].parser == "think_prefilled"
    assert resolved["kimi-vl-thinking"].parser == "kimi"
    assert {d.kind for d in config.datasets} == {"mm_safetybench", "safebench", "xstest"}
    assert {a.kind for a in config.attacks} == {"vanilla", "sd_typography", "figstep"}


def test_dry_run_shows_the_calls(capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path) -> None:
    from safemlrm.core import plugins
    from safemlrm.core.context import PluginContext

    path = tmp_path / "vlms.yaml"
    path.write_text(preset_text(capsys))
    config = parse_config(path.read_text())
    mmsb = {**config.datasets[0].params, "root": str(shared_data / "benchmarks" / "mm_safetybench")}
    images = tmp_path / "imgs"
    for n, sample in enumerate(plugins.datasets.create("mm_safetybench", mmsb, PluginContext()).load()):
        if n == 2:
            break
        picture = images / str(sample.metadata["scenario_id"]) / "SD" / f"{sample.metadata['question_id']}.jpg"
        picture.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), (90, 120, 200)).save(picture)
    overrides = [
        f"datasets.mmsb.params.root={mmsb['root']}",
        "datasets.mmsb.limit=2",
        f"attacks.sd_typo.params.image_dir={images}",
        f"datasets.safebench.params.path={shared_data / 'benchmarks' / 'figstep' / 'safebench.csv'}",
        "datasets.safebench.limit=2",
        f"datasets.xstest.params.path={shared_data / 'benchmarks' / 'xstest'}",
        "datasets.xstest.limit=2",
        "judge_cache=null",
    ]
    args = ["run", str(path), "--out", str(tmp_path / "run"), "--dry-run"]
    assert main([*args, *(x for o in overrides for x in ("--set", o))]) == 0
    plan = capsys.readouterr().out
    # 2 MM-SafetyBench questions x (text, SD+typography) + 2 SafeBench x (text, FigStep) + 2 XSTest prompts
    assert "plan: 6 samples -> 10 probes" in plan
    assert "target glm-4.5v-no-thinking: 40 calls to make, 0 from the store (4 samples per probe)" in plan
    assert "target calls: 400" in plan  # 10 targets x 10 probes x 4 samples
    assert not (tmp_path / "run" / "run.sqlite").exists()
