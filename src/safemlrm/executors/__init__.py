"""Where targets and judges run: in this process (``executor: local``) or as Ray actors (``ray``).

``pipeline.build`` creates every target and judge through these two functions. Ray is imported only
when a config asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safemlrm.core import plugins

if TYPE_CHECKING:
    from safemlrm.core.config import RunConfig
    from safemlrm.core.context import PluginContext
    from safemlrm.core.protocols import Judge, Target


def _check_labels(config: RunConfig) -> None:
    from safemlrm.core.config import ConfigError

    targets = {t.name for t in config.targets}
    judges = {j.label for j in config.judges}
    for field, wanted, known in (
        ("ray.targets", config.ray.targets or [], targets),
        ("ray.judges", config.ray.judges, judges),
        ("ray.by_label", list(config.ray.by_label), targets | judges),
    ):
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise ConfigError(f"{field}: no target or judge labelled {', '.join(map(repr, unknown))}")


def on_ray(config: RunConfig, label: str, *, judge: bool = False) -> bool:
    if config.executor != "ray":
        return False
    _check_labels(config)
    if judge:
        return label in config.ray.judges
    return config.ray.targets is None or label in config.ray.targets


def create_target(config: RunConfig, kind: str, params: dict[str, Any], ctx: PluginContext) -> Target:
    if not on_ray(config, ctx.label):
        target: Target = plugins.targets.create(kind, params, ctx)
        return target
    from safemlrm.executors.ray import RayTarget

    plugins.targets.validate_params(kind, params)  # bad params fail here, before any actor starts
    return RayTarget(kind, params, ctx, config.ray)


def create_judge(config: RunConfig, kind: str, params: dict[str, Any], ctx: PluginContext) -> Judge:
    if not on_ray(config, ctx.label, judge=True):
        judge: Judge = plugins.judges.create(kind, params, ctx)
        return judge
    from safemlrm.executors.ray import RayJudge

    plugins.judges.validate_params(kind, params)
    return RayJudge(kind, params, ctx, config.ray)
