"""Build a target (and its reasoning parser) from a TargetSpec, filling defaults from its profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safemlrm.profiles import Profile, get_profile

if TYPE_CHECKING:
    from safemlrm.config import TargetSpec
    from safemlrm.context import PluginContext
    from safemlrm.protocols import ReasoningParser, Target


DEFAULT_THINKING_KWARGS: dict[str, dict[str, Any]] = {
    "on": {"enable_thinking": True},
    "off": {"enable_thinking": False},
}


@dataclass(frozen=True)
class ResolvedTarget:
    label: str
    kind: str
    params: dict[str, Any]
    parser: str
    parser_params: dict[str, Any]
    reasoning: bool
    base: str | None
    profile: Profile | None


def resolve_target(spec: TargetSpec, profiles_dir: str | None = None) -> ResolvedTarget:
    profile = get_profile(spec.profile, profiles_dir) if spec.profile else None
    kind = spec.kind or (profile.kind if profile else None)
    assert kind is not None  # guaranteed by TargetSpec validation
    params = {**(profile.params if profile else {}), **spec.params}
    if profile and profile.hf_id and "model" not in params:
        params["model"] = profile.hf_id
    parser = spec.parser or (profile.parser if profile else "think_tags")
    parser_params = {**(profile.parser_params if profile else {}), **spec.parser_params}
    reasoning = spec.reasoning if spec.reasoning is not None else (profile.reasoning if profile else False)
    if spec.thinking is not None:
        params = _with_thinking(spec, kind, params, profile)
        if spec.reasoning is None:
            reasoning = spec.thinking == "on"
    return ResolvedTarget(spec.name, kind, params, parser, parser_params, reasoning, spec.base, profile)


def _with_thinking(spec: TargetSpec, kind: str, params: dict[str, Any], profile: Profile | None) -> dict[str, Any]:
    """The target params with the thinking switch merged into ``chat_template_kwargs``.

    One hybrid model with thinking on is the reasoning model, with thinking off its base: the same
    weights, so the comparison has no fine-tuning in between. The kwargs reach the chat template of
    an OpenAI-compatible server (the request's ``chat_template_kwargs``) or of an in-process engine.
    """
    from safemlrm import plugins

    assert spec.thinking is not None
    fields = getattr(plugins.targets.get(kind), "Params").model_fields  # noqa: B009
    if "chat_template_kwargs" not in fields:
        raise ValueError(
            f"target {spec.name!r}: `thinking` needs a target kind with a chat template (openai, hf, vllm), "
            f"not {kind!r}"
        )
    switch = (profile.thinking_kwargs if profile and profile.thinking_kwargs else None) or DEFAULT_THINKING_KWARGS
    if spec.thinking not in switch:
        where = f"profile {profile.name!r}" if profile else "the default switch"
        raise ValueError(f"target {spec.name!r}: {where} has no thinking {spec.thinking!r}")
    given = params.get("chat_template_kwargs") or {}
    if not isinstance(given, dict):
        raise ValueError(f"target {spec.name!r}: params.chat_template_kwargs must be a mapping")
    return {**params, "chat_template_kwargs": {**given, **switch[spec.thinking]}}


def build_target(spec: TargetSpec, ctx: PluginContext, profiles_dir: str | None = None) -> Target:
    from safemlrm import plugins

    resolved = resolve_target(spec, profiles_dir)
    return plugins.targets.create(resolved.kind, resolved.params, ctx.with_label(spec.name))


def build_parser(resolved: ResolvedTarget, ctx: PluginContext) -> ReasoningParser:
    from safemlrm import plugins

    return plugins.parsers.create(resolved.parser, resolved.parser_params, ctx.with_label(resolved.parser))
