from __future__ import annotations

import pytest
from pydantic import BaseModel

from safemlrm import plugins
from safemlrm.context import PluginContext
from safemlrm.registry import PluginConfigError, Registry, UnknownPluginError


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(UnknownPluginError, match="Did you mean 'keyword'"):
        plugins.judges.get("keywrd")


def test_params_are_validated_with_field_names() -> None:
    with pytest.raises(PluginConfigError, match="compliance_score"):
        plugins.judges.create("keyword", {"compliance_score": 9}, PluginContext())
    with pytest.raises(PluginConfigError, match="colour"):
        plugins.judges.create("keyword", {"colour": "red"}, PluginContext())


def test_decorator_registration_and_name_clash() -> None:
    registry: Registry[object] = Registry("widget", "safemlrm.metrics")

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
    registry: Registry[object] = Registry("widget", "safemlrm.metrics")
    with pytest.raises(TypeError, match="no Params"):

        @registry.register("bad")
        class Bad:
            pass


def test_entry_point_plugins_load_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import safemlrm.registry as registry_module

    ep = EntryPoint(name="third", value="safemlrm.judges.keyword:KeywordJudge", group="safemlrm.judge")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep] if group == "safemlrm.judge" else [])
    registry: Registry[object] = Registry("judge", "safemlrm.judges")
    assert "third" in registry.names()
    assert registry.info("third").cls.__name__ == "KeywordJudge"
