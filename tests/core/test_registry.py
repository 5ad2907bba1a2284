from __future__ import annotations

import pytest
from pydantic import BaseModel

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.registry import PluginConfigError, Registry, UnknownPluginError


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(UnknownPluginError, match="Did you mean 'keyword'"):
        plugins.judges.get("keywrd")


def test_params_are_validated_with_field_names() -> None:
    with pytest.raises(PluginConfigError, match="compliance_score"):
        plugins.judges.create("keyword", {"compliance_score": 9}, PluginContext())
    with pytest.raises(PluginConfigError, match="colour"):
        plugins.judges.create("keyword", {"colour": "red"}, PluginContext())


def test_decorator_registration_and_name_clash() -> None:
    registry: Registry[object] = Registry("widget", "safemlrm.parsers")

    @registry.register("w")
    class Widget:
        """A widget."""

        class Params(BaseModel):
            size: int = 1

        def __init__(self, params: Params, ctx: PluginContext) -> None:
            self.size = params.size

    assert registry.info("w").description == "A widget."
    made = registry.create("w", {"size": 3}, PluginContext())
    assert isinstance(made, Widget) and made.size == 3
    with pytest.raises(ValueError, match="taken"):

        @registry.register("w")
        class Other:
            class Params(BaseModel):
                pass


def test_plugins_without_params_are_refused() -> None:
    registry: Registry[object] = Registry("widget", "safemlrm.parsers")
    with pytest.raises(TypeError, match="no Params"):

        @registry.register("bad")
        class Bad:
            pass


def test_entry_point_plugins_load_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import safemlrm.core.registry as registry_module

    ep = EntryPoint(name="third", value="safemlrm.judges.keyword:KeywordJudge", group="safemlrm.judge")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep] if group == "safemlrm.judge" else [])
    registry: Registry[object] = Registry("judge", "safemlrm.judges")
    assert "third" in registry.names()
    assert registry.info("third").cls.__name__ == "KeywordJudge"


def test_every_plugin_kind_is_reachable_from_a_config() -> None:
    # A plugin kind that no config field names is an extension point that does nothing (the old
    # `metrics` kind was one): each registry must be reachable from the run config.
    from safemlrm.core.config import RunConfig, TargetSpec

    for kind in plugins.REGISTRIES:
        if kind == "parsers":
            assert "parser" in TargetSpec.model_fields  # a parser is named per target
        else:
            assert kind in RunConfig.model_fields, f"plugin kind {kind!r} has no config field"
