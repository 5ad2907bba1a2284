"""Test helpers that ship with safemlrm: a mock OpenAI-compatible server and synthetic runs."""

from __future__ import annotations

from typing import Any

from safemlrm.core.context import PluginContext


def plugin_context(**fields: Any) -> PluginContext:
    """A PluginContext that can build targets (``ctx.make_target``), as the pipeline's can.

    For tests and notebooks that build a plugin by hand: a judge or attack that calls a model needs it.
    """
    from safemlrm.core.target_build import build_target

    return PluginContext(**{"target_builder": build_target, **fields})
