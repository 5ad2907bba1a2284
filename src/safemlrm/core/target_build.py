"""Build a target (and its reasoning parser) from a TargetSpec, filling defaults from its profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safemlrm.core.profiles import Profile, get_profile

if TYPE_CHECKING:
    from safemlrm.core.config import TargetSpec
    from safemlrm.core.context import PluginContext
    from safemlrm.core.protocols import ReasoningParser, Target


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
    params = {**(profile.params if profile else {}), **_thinking_params(spec, profile), **spec.params}
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


def _thinking_params(spec: TargetSpec, profile: Profile | None) -> dict[str, Any]:
    """The params a profile's ``thinking_params`` set for the target's thinking setting (none unset)."""
    if spec.thinking is None or profile is None or not profile.thinking_params:
        return {}
    return dict(profile.thinking_params.get(spec.thinking, {}))


def _with_thinking(spec: TargetSpec, kind: str, params: dict[str, Any], profile: Profile | None) -> dict[str, Any]:
    """The target params with the thinking switch merged into ``chat_template_kwargs``.

    A profile's ``thinking_params`` (merged in ``resolve_target``) carry a switch that is no template
    variable, e.g. the system prompt that turns InternVL3.5's thinking on; such a profile names an
    empty ``thinking_kwargs`` so that nothing is sent to the template.

    One hybrid model with thinking on is the reasoning model, with thinking off its base: the same
    weights, so the comparison has no fine-tuning in between. The kwargs reach the chat template of
    an OpenAI-compatible server (the request's ``chat_template_kwargs``) or of an in-process engine.
    """
    from safemlrm.core import plugins

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
    merged = {**given, **switch[spec.thinking]}
    if not merged and "chat_template_kwargs" not in params:
        return params  # a switch made of params alone (profile.thinking_params): nothing for the template
    return {**params, "chat_template_kwargs": merged}


def build_target(spec: TargetSpec, ctx: PluginContext, profiles_dir: str | None = None) -> Target:
    from safemlrm.core import plugins

    resolved = resolve_target(spec, profiles_dir)
    return plugins.targets.create(resolved.kind, resolved.params, ctx.with_label(spec.name))


def build_parser(resolved: ResolvedTarget, ctx: PluginContext) -> ReasoningParser:
    from safemlrm.core import plugins

    return plugins.parsers.create(resolved.parser, resolved.parser_params, ctx.with_label(resolved.parser))
