from __future__ import annotations

import re
from pathlib import Path

import pytest

from safemlrm.core import plugins
from safemlrm.core.config import TargetSpec
from safemlrm.core.profiles import ProfileError, builtin_profiles, get_profile, load_profiles
from safemlrm.core.target_build import resolve_target
from safemlrm.core.types import Message, Probe, TextPart
from safemlrm.targets._base import TargetParams, prompt_messages

STUDY_REASONING = {
    "r1-onevision-7b": "qwen2.5-vl-7b-instruct",
    "mm-eureka-qwen-7b": "qwen2.5-vl-7b-instruct",
    "mulberry-qwen2vl-7b": "qwen2-vl-7b-instruct",
    "mulberry-llava-8b": "llama3-llava-next-8b",
    "mulberry-llama-11b": "llama-3.2-11b-vision-instruct",
}
SHIPPED = {
    *STUDY_REASONING,
    *STUDY_REASONING.values(),
    "llava-cot-11b",
    "reasoning-think-tags",
    "plain-vlm",
}


def test_every_shipped_profile_loads() -> None:
    profiles = load_profiles()
    assert set(profiles) >= SHIPPED
    for name in SHIPPED:
        assert profiles[name].name == name
        assert profiles[name].source == "builtin"
        assert profiles[name].description


@pytest.mark.parametrize("name", sorted(builtin_profiles()))
def test_builtin_profile_is_consistent(name: str) -> None:
    profile = builtin_profiles()[name]
    assert profile.parser in plugins.parsers.names()
    plugins.parsers.validate_params(profile.parser, profile.parser_params)
    assert profile.kind in {"openai", "hf", "vllm"}
    if profile.kind == "hf" and str(profile.params.get("model", "")).startswith("pypi:"):
        # a model shipped inside a Python package (the demo's SmolLM2) loads only in-process with hf
        plugins.targets.validate_params("hf", profile.params)
    else:
        # defaults every target kind accepts, so `kind: hf` or `vllm` in a TargetSpec works unchanged
        TargetParams.model_validate(profile.params)
        assert "model" not in profile.params  # the model comes from hf_id (or the user), never two places
    for setting in (profile.thinking_params or {}).values():
        TargetParams.model_validate({**profile.params, **setting})  # each side of a hybrid pair is valid
    if profile.base is not None:
        base = builtin_profiles()[profile.base]
        assert profile.reasoning
        # a base reasons too only where the pair isolates a later training stage (MiMo-VL RL on its SFT)
        assert not base.reasoning or "RL" in profile.description
    if profile.hf_id is not None:
        assert re.fullmatch(r"[\w.\-]+/[\w.\-]+", profile.hf_id)


def test_reasoning_pairs_of_the_study() -> None:
    profiles = load_profiles()
    for reasoning, base in STUDY_REASONING.items():
        assert profiles[reasoning].base == base
    assert profiles["llava-cot-11b"].base == "llama-3.2-11b-vision-instruct"


def test_hf_ids_are_the_checked_ones() -> None:
    ids = {name: profile.hf_id for name, profile in load_profiles().items() if name in SHIPPED}
    assert ids == {
        "r1-onevision-7b": "Fancy-MLLM/R1-Onevision-7B",
        "mm-eureka-qwen-7b": "FanqingM/MM-Eureka-Qwen-7B",
        "mulberry-qwen2vl-7b": "HuanjinYao/Mulberry_qwen2vl_7b",
        "mulberry-llava-8b": "HuanjinYao/Mulberry_llava_8b",
        "mulberry-llama-11b": "HuanjinYao/Mulberry_llama_11b",
        "llava-cot-11b": "Xkev/Llama-3.2V-11B-cot",
        "qwen2.5-vl-7b-instruct": "Qwen/Qwen2.5-VL-7B-Instruct",
        "qwen2-vl-7b-instruct": "Qwen/Qwen2-VL-7B-Instruct",
        "llama3-llava-next-8b": "llava-hf/llama3-llava-next-8b-hf",
        "llama-3.2-11b-vision-instruct": "meta-llama/Llama-3.2-11B-Vision-Instruct",
        "reasoning-think-tags": None,
        "plain-vlm": None,
    }


def test_parsers_match_each_reasoning_format() -> None:
    profiles = load_profiles()
    assert profiles["r1-onevision-7b"].parser == "think_tags"
    assert profiles["mm-eureka-qwen-7b"].parser == "eureka"
    assert {
        profiles[n].parser for n in ("mulberry-qwen2vl-7b", "mulberry-llava-8b", "mulberry-llama-11b")
    } == {"mulberry"}
    assert profiles["llava-cot-11b"].parser == "llava_cot"
    assert {profiles[n].parser for n in set(STUDY_REASONING.values()) | {"plain-vlm"}} == {"plain"}


def _study_system_message(shared_data: Path) -> str:
    readme = (shared_data / "study_setup" / "README.md").read_text("utf-8")
    match = re.search(r'System message used for MM-Eureka and Mulberry:\n"(.+?)"\n', readme, re.DOTALL)
    assert match, "study_setup/README.md no longer quotes the system message"
    return " ".join(match.group(1).split())


@pytest.mark.needs_shared
def test_prompts_are_exactly_the_studys(shared_data: Path) -> None:
    message = _study_system_message(shared_data)
    profiles = load_profiles()
    for name in ("mm-eureka-qwen-7b", "mulberry-qwen2vl-7b"):
        assert profiles[name].params["system_prompt"] == message
        assert "user_prefix" not in profiles[name].params
    for name in ("mulberry-llava-8b", "mulberry-llama-11b"):
        assert profiles[name].params["user_prefix"] == message
        assert "system_prompt" not in profiles[name].params
    for name in ("r1-onevision-7b", *STUDY_REASONING.values()):
        assert not {"system_prompt", "user_prefix"} & set(profiles[name].params)
        assert profiles[name].params["max_new_tokens"] == 4096


def test_a_profile_fills_a_target_and_its_prompt() -> None:
    resolved = resolve_target(
        TargetSpec(name="eureka", profile="mulberry-llava-8b", params={"max_new_tokens": 64})
    )
    assert resolved.kind == "openai"
    assert resolved.params["model"] == "HuanjinYao/Mulberry_llava_8b"
    assert resolved.params["max_new_tokens"] == 64  # the run config wins over the profile
    assert (resolved.parser, resolved.reasoning) == ("mulberry", True)
    probe = Probe(
        sample_key="k",
        sample_id="1",
        attack="vanilla",
        messages=(Message(role="user", content=(TextPart(text="Q?"),)),),
    )
    [message] = prompt_messages(probe, TargetParams.model_validate(resolved.params))
    assert message.role == "user"
    assert message.text.startswith("A conversation between User and Assistant.")
    assert message.text.endswith("</answer>\nQ?")
    # users switch the engine without touching the profile
    assert resolve_target(TargetSpec(name="x", profile="mulberry-llava-8b", kind="vllm")).kind == "vllm"


USER_PROFILE = """\
# my own model, no code needed
name: my-r1-vlm
description: an in-house reasoning VLM
hf_id: my-org/my-r1-vlm
params:
  system_prompt: Think step by step inside <think> tags.
  max_new_tokens: 512
parser: think_tags
reasoning: true
base: qwen2.5-vl-7b-instruct
"""


def test_user_profile_folder_adds_profiles_without_code(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(USER_PROFILE, encoding="utf-8")
    (tmp_path / "more.yml").write_text(
        "- {name: my-base, kind: hf, parser: plain}\n"
        "- {name: plain-vlm, parser: plain, description: overridden}\n",
        encoding="utf-8",
    )
    profiles = load_profiles(tmp_path)
    assert set(profiles) >= SHIPPED | {"my-r1-vlm", "my-base"}
    mine = profiles["my-r1-vlm"]
    assert (mine.source, mine.base, mine.parser) == (
        str(tmp_path / "mine.yaml"),
        "qwen2.5-vl-7b-instruct",
        "think_tags",
    )
    assert profiles["my-base"].kind == "hf"
    assert profiles["plain-vlm"].description == "overridden"  # a user file may replace a built-in
    assert "my-r1-vlm" not in load_profiles()  # nothing leaks into the built-ins
    resolved = resolve_target(TargetSpec(name="m", profile="my-r1-vlm"), str(tmp_path))
    assert resolved.params["model"] == "my-org/my-r1-vlm"


def test_profiles_folder_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.yaml").write_text(USER_PROFILE, encoding="utf-8")
    monkeypatch.setenv("SAFEMLRM_PROFILES", str(tmp_path))
    assert get_profile("my-r1-vlm").hf_id == "my-org/my-r1-vlm"


def test_bad_user_profiles_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparserr: think_tags\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"(?s)bad\.yaml.*parserr"):
        load_profiles(tmp_path)
    with pytest.raises(ProfileError, match="does not exist"):
        load_profiles(tmp_path / "missing")


def test_unknown_profile_suggests_close_names() -> None:
    with pytest.raises(ProfileError, match="mm-eureka-qwen-7b"):
        get_profile("mm-eureka-qwen7b")


def test_pairs_of_the_2025_families_read_from_their_sources() -> None:
    profiles = load_profiles()
    assert {n: (profiles[n].hf_id, profiles[n].base) for n in ("skywork-r1v3-38b", "vision-r1-7b")} == {
        "skywork-r1v3-38b": ("Skywork/Skywork-R1V3-38B", "internvl3-38b"),
        "vision-r1-7b": ("Osilly/Vision-R1-7B", "qwen2.5-vl-7b-instruct"),
    }
    assert profiles["internvl3-38b"].hf_id == "OpenGVLab/InternVL3-38B"
    # hybrids are their own base: a switch, no base profile
    for name, hf_id in (("internvl3.5-8b", "OpenGVLab/InternVL3_5-8B"), ("minicpm-v-4.5", "openbmb/MiniCPM-V-4_5")):
        assert (profiles[name].hf_id, profiles[name].base) == (hf_id, None)
        assert profiles[name].thinking_kwargs is not None


def test_yaml_on_off_keys_of_thinking_params(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text(
        "name: h\nparser: think_tags\nthinking_params:\n  on: {system_prompt: Think.}\n  off: {}\n", encoding="utf-8"
    )
    assert load_profiles(tmp_path)["h"].thinking_params == {"on": {"system_prompt": "Think."}, "off": {}}
