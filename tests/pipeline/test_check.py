"""Checking a config before a run: plugin params with label, field, file and line; files and API keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from safemlrm.core.config import ConfigError, load_config
from safemlrm.pipeline.check import check_config

CONFIG = """\
name: t
datasets:
  - kind: jsonl
    name: mine
    params: {path: data.jsonl}
targets:
  - name: t1
    kind: fake
judges:
  - kind: keyword
"""


def write(tmp_path: Path, text: str = CONFIG, data: bool = True) -> Path:
    if data:
        (tmp_path / "data.jsonl").write_text('{"id": "a", "instruction": "x", "prompt": "y"}\n', encoding="utf-8")
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, overrides: list[str] | None = None, *, resources: bool = True) -> str:
    config = load_config(path, overrides)
    with pytest.raises(ConfigError) as err:
        check_config(config, path.parent, resources=resources)
    return str(err.value)


def test_a_good_config_passes(tmp_path: Path) -> None:
    path = write(tmp_path)
    check_config(load_config(path), tmp_path)


def test_plugin_param_errors_name_label_field_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG.replace("    kind: fake\n", "    kind: fake\n    params: {colour: red}\n"))
    message = problems(path, resources=False)
    assert message.startswith(f"{path}: invalid configuration:")
    assert "targets.0.params.colour (line 9): target 't1': Extra inputs" in message
    assert "target 't1'" in message and "Extra inputs" in message


def test_a_misspelt_plugin_param_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG.replace("{path: data.jsonl}", "{path: data.jsonl, colums: {}}"))
    message = problems(path)
    assert "dataset 'mine'" in message and "datasets.0.params.colums" in message
    assert "did you mean 'columns'?" in message


def test_an_openai_target_without_a_model_fails_naming_its_label(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG.replace("    kind: fake\n", "    kind: openai\n"))
    message = problems(path, resources=False)
    # No `params` in the file: the line is the target's own.
    assert "targets.0.params.model (line 7): target 't1'" in message and "set the model name" in message


def test_set_errors_point_at_the_flag(tmp_path: Path) -> None:
    path = write(tmp_path)
    message = problems(path, ["targets.t1.params.foo=1"], resources=False)
    assert "--set targets.t1.params.foo=1: targets.0.params.foo:" in message and "line 1)" not in message


def test_missing_files_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, data=False)
    message = problems(path)
    assert "dataset 'mine'" in message and "data.jsonl" in message and "does not exist" in message
    replay = CONFIG.replace("    kind: fake\n", "    kind: replay\n    params: {path: outputs.jsonl}\n")
    message = problems(write(tmp_path, replay))
    assert "target 't1'" in message and "outputs.jsonl" in message and "does not exist" in message


def test_unset_api_key_variables_are_named_never_their_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = CONFIG.replace("    kind: fake\n", "    kind: openai\n    params: {model: m, api_key_env: MY_TEST_KEY}\n")
    path = write(tmp_path, text)
    monkeypatch.delenv("MY_TEST_KEY", raising=False)
    message = problems(path)
    assert "target 't1'" in message and "MY_TEST_KEY" in message and "not set" in message
    monkeypatch.setenv("MY_TEST_KEY", "sk-secret-value-1234")
    check_config(load_config(path), tmp_path)


def test_judge_models_are_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    judge = "  - kind: rubric\n    params: {model: {name: grader, profile: my-grader}}\n"
    path = write(tmp_path, CONFIG.replace("  - kind: keyword\n", judge))
    message = problems(path)
    assert "judge 'rubric'" in message and "my-grader" in message
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "g.yaml").write_text(
        "name: my-grader\nkind: openai\nparams: {model: m, api_key_env: MY_JUDGE_KEY}\n", encoding="utf-8"
    )
    path = write(tmp_path, CONFIG.replace("  - kind: keyword\n", judge) + f"profiles_dir: {tmp_path / 'profiles'}\n")
    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    message = problems(path)
    assert "judge 'rubric'" in message and "MY_JUDGE_KEY" in message
    monkeypatch.setenv("MY_JUDGE_KEY", "x" * 20)
    check_config(load_config(path), tmp_path)
    unknown = "  - kind: rubric\n    params: {model: nobody}\n"
    assert "no target labelled 'nobody'" in problems(write(tmp_path, CONFIG.replace("  - kind: keyword\n", unknown)))


IMAGE_ATTACK = """\
name: t
datasets:
  - kind: jsonl
    name: mine
    params: {path: data.jsonl}
attacks:
  - kind: vanilla
  - kind: figstep
targets:
  - name: llm
    kind: fake
    input_modalities: [text]
  - name: vlm
    kind: fake
judges:
  - kind: keyword
"""


def test_a_text_only_target_with_an_image_attack_fails_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safemlrm.verbs.cli import main

    out = problems(write(tmp_path, IMAGE_ATTACK))
    assert "target 'llm' reads no images" in out and "attack 'figstep' (figstep)" in out
    assert "dataset 'mine'" in out and "targets.0.input_modalities" in out and "line 12" in out
    assert "'vlm'" not in out and "'vanilla'" not in out  # a target that reads images; a text attack
    assert main(["validate", str(tmp_path / "run.yaml")]) == 2
    assert "target 'llm' reads no images" in capsys.readouterr().err


def test_a_text_only_target_is_fine_without_image_attacks(tmp_path: Path) -> None:
    # The target takes only a dataset whose attacks make text: nothing to refuse.
    only_text = "    params: {path: data.jsonl}\n    attacks: [vanilla]\n"
    text = IMAGE_ATTACK.replace("    params: {path: data.jsonl}\n", only_text, 1)
    check_config(load_config(write(tmp_path, text)), tmp_path)


def test_a_target_kind_can_declare_its_modalities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safemlrm.core import plugins
    from safemlrm.core.registry import PluginInfo
    from safemlrm.targets.fake import FakeTarget

    class TextOnly(FakeTarget):
        """A text-only model."""

        input_modalities = frozenset({"text"})

    info = PluginInfo("target", "text-only", "A text-only model.", TextOnly, "tests")
    plugins.targets.names()  # load the built-ins first, then add this one for the test only
    monkeypatch.setitem(plugins.targets._plugins, "text-only", info)
    config = IMAGE_ATTACK.replace("    kind: fake\n    input_modalities: [text]\n", "    kind: text-only\n")
    out = problems(write(tmp_path, config))
    assert "target 'llm' reads no images (input modalities: text)" in out and "targets.0 (line" in out
