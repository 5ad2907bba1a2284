"""Contract tests, parametrised over every registered plugin of every kind.

A new plugin is checked the moment it is registered: it must have a typed Params model that
forbids unknown fields, a description, the right (async) methods, and — when its params all have
defaults — construct and satisfy its runtime protocol.
"""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel, ValidationError

from safemlrm import plugins
from safemlrm.context import PluginContext
from safemlrm.protocols import Attack, Dataset, Judge, Metric, ReasoningParser, Target

PROTOCOLS = {
    "datasets": (Dataset, {"load": False}),
    "attacks": (Attack, {"apply": True}),
    "targets": (Target, {"generate": True, "aclose": True, "identity": False}),
    "parsers": (ReasoningParser, {"parse": False}),
    "judges": (Judge, {"judge": True, "aclose": True, "identity": False}),
    "metrics": (Metric, {"compute": False}),
}

ALL = [(kind, name) for kind, registry in plugins.REGISTRIES.items() for name in registry.names()]


def test_every_kind_has_plugins() -> None:
    for kind, registry in plugins.REGISTRIES.items():
        assert registry.names(), f"no {kind} registered"


@pytest.mark.parametrize(("kind", "name"), ALL, ids=[f"{k}:{n}" for k, n in ALL])
def test_plugin_contract(kind: str, name: str, tmp_path: object) -> None:
    info = plugins.REGISTRIES[kind].info(name)
    cls = info.cls
    assert info.description, f"{kind} {name}: needs a docstring (shown by `safemlrm list`)"
    params_model = cls.Params
    assert issubclass(params_model, BaseModel)
    assert params_model.model_config.get("extra") == "forbid", f"{kind} {name}: Params must forbid unknown fields"
    protocol, methods = PROTOCOLS[kind]
    for method, is_async in methods.items():
        fn = getattr(cls, method, None)
        assert fn is not None, f"{kind} {name}: missing {method}()"
        assert inspect.iscoroutinefunction(fn) == is_async, f"{kind} {name}: {method}() async must be {is_async}"
    if kind == "attacks":
        assert cls.input_modalities and cls.output_modalities
        assert cls.input_modalities <= {"text", "image"} and cls.output_modalities <= {"text", "image"}
    try:
        params = params_model()
    except ValidationError:
        return  # required params (paths, models): constructed in the plugin's own tests
    instance = cls(params, PluginContext(label=name, run_dir=tmp_path))  # type: ignore[arg-type]
    assert isinstance(instance, protocol)
    if kind in ("targets", "judges"):
        identity = instance.identity()
        assert isinstance(identity, dict) and identity
        assert int(instance.max_concurrency) >= 1
