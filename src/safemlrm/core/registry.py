"""A typed plugin registry: decorator registration, lazy built-ins, entry points, "did you mean".

Each plugin is a class with a nested pydantic `Params` model and an ``__init__(params, ctx)``.
Built-in plugins live one per file in a sub-package (``safemlrm.datasets`` ...) and are imported on
first use; third-party packages add plugins through the entry-point group ``safemlrm.<kind>``
(``name = "module:Class"``).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from safemlrm.core.context import PluginContext

T = TypeVar("T")
C = TypeVar("C", bound=type)


class UnknownPluginError(LookupError):
    pass


class PluginConfigError(ValueError):
    """Invalid plugin params; ``errors`` holds pydantic's error dicts (``loc`` inside the params)."""

    def __init__(self, message: str, errors: list[Any] | None = None) -> None:
        super().__init__(message)
        self.errors: list[Any] = errors or []


# A params field naming a local file or folder that must exist when the run starts: `Field(...,
# json_schema_extra=MUST_EXIST)`. `safemlrm validate` checks them (relative to the config's folder).
MUST_EXIST: dict[str, Any] = {"must_exist": True}


def must_exist_fields(params_model: type[BaseModel]) -> list[str]:
    """The params fields marked ``MUST_EXIST``."""
    return [
        name
        for name, field in params_model.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("must_exist")
    ]


class NoParams(BaseModel):
    model_config = {"extra": "forbid"}


@dataclass(frozen=True)
class PluginInfo:
    kind: str
    name: str
    description: str
    cls: type
    source: str  # "builtin" or the distribution / module that provided it


def _first_line(text: str | None) -> str:
    for line in (text or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


class Registry(Generic[T]):
    def __init__(self, kind: str, builtin_package: str) -> None:
        self.kind = kind
        self._package = builtin_package
        self._plugins: dict[str, PluginInfo] = {}
        self._lazy: dict[str, str] = {}  # name -> "module:attr" from entry points
        self._loaded = False

    def register(self, name: str, *, description: str | None = None) -> Callable[[C], C]:
        def decorator(cls: C) -> C:
            if not hasattr(cls, "Params"):
                raise TypeError(f"{self.kind} plugin {name!r} ({cls.__qualname__}) has no Params model")
            existing = self._plugins.get(name)
            if existing is not None and existing.cls is not cls:
                raise ValueError(
                    f"{self.kind} plugin name {name!r} is taken by {existing.cls.__module__}."
                    f"{existing.cls.__qualname__}"
                )
            self._plugins[name] = PluginInfo(
                kind=self.kind,
                name=name,
                description=description or _first_line(cls.__doc__),
                cls=cls,
                source="builtin" if cls.__module__.startswith("safemlrm.") else cls.__module__,
            )
            return cls

        return decorator

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self._package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self._package}.{module.name}")
        for ep in entry_points(group=f"safemlrm.{self.kind}"):
            if ep.name not in self._plugins:
                self._lazy[ep.name] = ep.value

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted({*self._plugins, *self._lazy})

    def info(self, name: str) -> PluginInfo:
        self._ensure_loaded()
        if name not in self._plugins and name in self._lazy:
            module_name, _, attr = self._lazy.pop(name).partition(":")
            cls = getattr(importlib.import_module(module_name), attr)
            if name not in self._plugins:  # the module may register itself on import
                self.register(name)(cls)
        if name not in self._plugins:
            known = self.names()
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownPluginError(
                f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(known) or 'none'}"
            )
        return self._plugins[name]

    def get(self, name: str) -> type:
        return self.info(name).cls

    def all(self) -> list[PluginInfo]:
        return [self.info(name) for name in self.names()]

    def validate_params(self, name: str, params: Mapping[str, Any]) -> BaseModel:
        cls = self.get(name)
        params_model: type[BaseModel] = cls.Params  # type: ignore[attr-defined]
        try:
            return params_model.model_validate(dict(params))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(params)'}: {err['msg']}" for err in exc.errors()
            )
            raise PluginConfigError(f"{self.kind} {name!r}: invalid params: {problems}", list(exc.errors())) from exc

    def create(self, name: str, params: Mapping[str, Any], ctx: PluginContext) -> T:
        cls = self.get(name)
        validated = self.validate_params(name, params)
        return cast(T, cls(validated, ctx))
