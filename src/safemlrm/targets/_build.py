"""Build a target (and its reasoning parser) from a TargetSpec, filling defaults from its profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safemlrm.profiles import Profile, get_profile

if TYPE_CHECKING:
    from safemlrm.config import TargetSpec
    from safemlrm.context import PluginContext
    from safemlrm.protocols import ReasoningParser, Target


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
    return ResolvedTarget(spec.name, kind, params, parser, parser_params, reasoning, spec.base, profile)


def build_target(spec: TargetSpec, ctx: PluginContext, profiles_dir: str | None = None) -> Target:
    from safemlrm import plugins

    resolved = resolve_target(spec, profiles_dir)
    return plugins.targets.create(resolved.kind, resolved.params, ctx.with_label(spec.name))


def build_parser(resolved: ResolvedTarget, ctx: PluginContext) -> ReasoningParser:
    from safemlrm import plugins

    return plugins.parsers.create(resolved.parser, resolved.parser_params, ctx.with_label(resolved.parser))
