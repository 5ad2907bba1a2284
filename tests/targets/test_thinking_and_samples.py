"""The thinking switch and several samples per probe, on the request side (openai target, mock server)."""

from __future__ import annotations

from typing import Any

import pytest

from safemlrm.core import plugins
from safemlrm.core.config import TargetSpec, parse_config
from safemlrm.core.context import PluginContext
from safemlrm.core.target_build import resolve_target
from safemlrm.core.types import Message, Probe, TextPart
from safemlrm.targets.openai import OpenAIParams, OpenAITarget, build_chat_request
from safemlrm.testing.mock_server import MockChatServer


def probe(text: str = "hello") -> Probe:
    message = Message(role="user", content=(TextPart(text=text),))
    return Probe(sample_key="k", sample_id="s", attack="vanilla", messages=(message,))


def openai_target(params: dict[str, Any], label: str = "api") -> OpenAITarget:
    target = plugins.targets.create("openai", params, PluginContext(label=label))
    assert isinstance(target, OpenAITarget)
    return target


async def requests_of_thinking_pair(profile: str) -> dict[str, dict[str, Any]]:
    """Targets of one profile with thinking on and off send a probe each; their requests by probe text."""
    async with MockChatServer(record_requests=True) as server:
        for setting in ("on", "off"):
            spec = TargetSpec(
                name=f"t-{setting}", profile=profile, thinking=setting,  # type: ignore[arg-type]
                params={"base_url": server.base_url},
            )
            resolved = resolve_target(spec)
            assert resolved.reasoning is (setting == "on")
            target = openai_target(resolved.params, spec.name)
            await target.generate([probe(setting)])
            await target.aclose()
    return {body["messages"][-1]["content"]: body for body in server.requests}


async def test_thinking_on_and_off_travel_as_chat_template_kwargs() -> None:
    """One hybrid model, two targets: each request carries its own switch to the server."""
    by_text = await requests_of_thinking_pair("glm-4.5v")
    assert by_text["on"]["chat_template_kwargs"] == {"enable_thinking": True}
    assert by_text["off"]["chat_template_kwargs"] == {"enable_thinking": False}
    assert by_text["on"]["model"] == "zai-org/GLM-4.5V"


async def test_a_switch_made_of_a_system_prompt_sends_no_template_kwargs() -> None:
    """InternVL3.5: thinking on is its Thinking System Prompt, off is none; the template gets nothing."""
    by_text = await requests_of_thinking_pair("internvl3.5-8b")
    on, off = by_text["on"], by_text["off"]
    assert on["messages"][0]["role"] == "system"
    assert "Enclose this entire thinking process within <think> and </think> tags." in on["messages"][0]["content"]
    assert [m["role"] for m in off["messages"]] == ["user"]
    assert "chat_template_kwargs" not in on and "chat_template_kwargs" not in off
    assert on["temperature"] == off["temperature"] == 0.6  # both sides of the pair sample alike


def test_thinking_params_yield_to_the_targets_own_params() -> None:
    own = "Answer briefly."
    spec = TargetSpec(name="i", profile="internvl3.5-8b", thinking="off", params={"system_prompt": own})
    assert resolve_target(spec).params["system_prompt"] == own
    unset = resolve_target(TargetSpec(name="i", profile="internvl3.5-8b")).params
    assert unset["system_prompt"].startswith("You are an AI assistant")  # the profile's default: thinking on
    assert "chat_template_kwargs" not in unset


def test_a_profile_that_defaults_to_thinking_on_is_switched_off() -> None:
    """MiniCPM-V 4.5's profile turns thinking on in its params; `thinking: off` overrides it."""
    on = resolve_target(TargetSpec(name="m", profile="minicpm-v-4.5"))
    off = resolve_target(TargetSpec(name="m", profile="minicpm-v-4.5", thinking="off"))
    assert on.params["chat_template_kwargs"] == {"enable_thinking": True} and on.reasoning
    assert off.params["chat_template_kwargs"] == {"enable_thinking": False} and not off.reasoning


def test_yaml_on_off_read_as_the_switch() -> None:
    """YAML 1.1 turns a bare `on` into true; the config reads it as the switch setting."""
    text = (
        "datasets: [{kind: demo}]\n"
        "targets:\n"
        "  - {name: a, profile: glm-4.5v, thinking: on, base: b}\n"
        "  - {name: b, profile: glm-4.5v, thinking: off}\n"
    )
    config = parse_config(text)
    assert [t.thinking for t in config.targets] == ["on", "off"]


def test_thinking_merges_with_the_targets_own_kwargs_and_the_profile_switch() -> None:
    spec = TargetSpec(
        name="q", kind="openai", thinking="off",
        params={"model": "m", "chat_template_kwargs": {"custom": 1}},
    )
    assert resolve_target(spec).params["chat_template_kwargs"] == {"custom": 1, "enable_thinking": False}


def test_thinking_needs_a_target_with_a_chat_template() -> None:
    with pytest.raises(ValueError, match="chat template"):
        resolve_target(TargetSpec(name="f", kind="fake", thinking="on"))


def test_request_fields_for_sampling_budget_and_switch() -> None:
    params = OpenAIParams(
        model="m", seed=10, temperature=0.6, top_p=0.95, top_k=20, presence_penalty=0.0, thinking_budget=512,
        chat_template_kwargs={"enable_thinking": True}, extra_body={"chat_template_kwargs": {"x": 1}, "min_p": 0.0},
    )
    first = build_chat_request(probe(), params)
    third = build_chat_request(probe(), params, sample=2)
    assert first["seed"] == 10 and third["seed"] == 12
    assert first["top_k"] == 20 and first["presence_penalty"] == 0.0 and first["min_p"] == 0.0
    assert first["thinking_token_budget"] == 512
    assert first["chat_template_kwargs"] == {"x": 1, "enable_thinking": True}
    assert {k: v for k, v in first.items() if k != "seed"} == {k: v for k, v in third.items() if k != "seed"}


def test_identity_is_unchanged_when_the_new_settings_are_unset() -> None:
    """Runs made before these settings existed keep their generation keys (and so resume)."""
    identity = openai_target({"model": "m"}).identity()
    assert set(identity) == {
        "kind", "model", "system_prompt", "user_prefix", "max_new_tokens", "temperature", "top_p", "seed",
        "max_pixels", "max_tokens_field", "extra_body",
    }
    with_switch = openai_target({"model": "m", "chat_template_kwargs": {"enable_thinking": False}}).identity()
    assert with_switch["chat_template_kwargs"] == {"enable_thinking": False}


async def test_samples_reach_the_server_with_their_own_seeds() -> None:
    async with MockChatServer(record_requests=True) as server:
        target = openai_target({"model": "m", "base_url": server.base_url, "seed": 3, "temperature": 0.7})
        for sample in range(3):
            await target.generate([probe()], sample=sample)
        await target.aclose()
    assert sorted(body["seed"] for body in server.requests) == [3, 4, 5]
