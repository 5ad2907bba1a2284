"""Run configuration: one YAML file per run, validated by pydantic.

Errors name the offending field and the line in the YAML file. ``--set a.b.0.c=value`` overrides any
field (list items can also be addressed by their ``name``).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from safemlrm.core.types import Part
from safemlrm.executors.config import Executor, RaySpec


class ConfigError(ValueError):
    """A config problem, with the file, the field and (when known) the line."""


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PluginSpec(Spec):
    kind: str
    name: str | None = None  # a label; defaults to the kind
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.kind


class DatasetSpec(PluginSpec):
    limit: int | None = Field(default=None, ge=1, description="load at most this many samples")
    attacks: list[str] | None = Field(
        default=None, description="labels of the attacks to apply to this dataset (default: all of them)"
    )


class AttackSpec(PluginSpec):
    pass


class JudgeSpec(PluginSpec):
    pass


class TargetSpec(Spec):
    """A model under test. `profile` supplies defaults for everything else."""

    name: str
    kind: str | None = None
    profile: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    parser: str | None = None
    parser_params: dict[str, Any] = Field(default_factory=dict)
    base: str | None = Field(default=None, description="label of this model's base model in the run")
    reasoning: bool | None = None
    datasets: list[str] | None = Field(
        default=None, description="labels of the datasets this target gets (default: all of them)"
    )
    thinking: Literal["on", "off"] | None = Field(
        default=None,
        description=(
            "a hybrid model's thinking switch, sent as chat_template_kwargs (the profile's thinking_kwargs, "
            "else {enable_thinking: true|false}) and, where the profile has thinking_params, as target params "
            "(e.g. a system prompt); on = the reasoning model, off = its base"
        ),
    )
    samples: int | None = Field(
        default=None, ge=1, description="generations per probe (default: the run's `samples`); needs sampling"
    )
    input_modalities: list[Literal["text", "image"]] | None = Field(
        default=None,
        description=(
            "what the model reads, e.g. [text] for a text-only model (default: what its kind declares; "
            "text and image when it declares nothing); `validate` refuses image attacks for a text-only target"
        ),
    )

    @field_validator("thinking", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        """YAML 1.1 reads a bare `on` / `off` as true / false: take those as the switch's two settings."""
        if isinstance(value, bool):
            return "on" if value else "off"
        return value

    @model_validator(mode="after")
    def _kind_or_profile(self) -> TargetSpec:
        if self.kind is None and self.profile is None:
            raise ValueError("a target needs a `kind` or a `profile`")
        return self


class RunConfig(Spec):
    name: str = "run"
    description: str = ""
    seed: int = 0
    datasets: list[DatasetSpec] = Field(min_length=1)
    attacks: list[AttackSpec] = Field(default_factory=lambda: [AttackSpec(kind="vanilla")])
    targets: list[TargetSpec] = Field(min_length=1)
    judges: list[JudgeSpec] = Field(
        default_factory=lambda: [JudgeSpec(kind="offline")],
        description="judges; default: the offline CPU judge (no network, no LLM)",
    )
    parts: list[Part] = Field(default_factory=lambda: [Part.REASONING, Part.ANSWER, Part.WHOLE])
    asr_threshold: float = Field(default=4.0, ge=0, le=5)
    headline_judge: str | None = Field(
        default=None,
        description="label of the judge the headline numbers use; default: the first harm judge (docs/reports.md)",
    )
    samples: int = Field(
        default=1,
        ge=1,
        description="generations per probe for every target that does not set its own (k of ASR@k)",
    )
    concurrency: int = Field(default=64, ge=1, description="probes in flight at once")
    judge_cache: str | None = Field(
        default="default",
        description="shared judgement cache file; 'default' = $SAFEMLRM_CACHE_DIR or ~/.cache/safemlrm; null = off",
    )
    html_report: bool = True
    profiles_dir: str | None = Field(default=None, description="folder of user model profiles (YAML)")
    executor: Executor = Field(default="local", description="local = in this process; ray = as Ray actors")
    ray: RaySpec = Field(default_factory=RaySpec, description="Ray executor settings (for executor: ray)")

    # Where the config came from, so later checks (plugin params) can point at a line or a --set flag.
    _source: str = PrivateAttr(default="<config>")
    _root: Any = PrivateAttr(default=None)  # the YAML node tree
    _overrides: list[tuple[Loc, str]] = PrivateAttr(default_factory=list)

    def locate(self, loc: Sequence[str | int]) -> Location:
        """Where a field was set: ``--set KEY=VALUE``, or ``file (line N)``, or the source's name."""
        return locate(tuple(loc), self._source, self._root, self._overrides)

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, targets: list[TargetSpec]) -> list[TargetSpec]:
        names = [t.name for t in targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"target names must be unique; repeated: {', '.join(dupes)}")
        for t in targets:
            if t.base == t.name:
                raise ValueError(f"target {t.name!r} names itself as its own base; set `base` to another target")
            if t.base is not None and t.base not in names:
                raise ValueError(f"target {t.name!r}: base {t.base!r} is not a target of this run")
        return targets

    @model_validator(mode="after")
    def _dataset_attacks_exist(self) -> RunConfig:
        labels = [a.label for a in self.attacks]
        dupes = sorted({n for n in labels if labels.count(n) > 1})
        if dupes:
            raise ValueError(f"attack labels must be unique (set `name`); repeated: {', '.join(dupes)}")
        for d in self.datasets:
            unknown = sorted(set(d.attacks or []) - set(labels))
            if unknown:
                raise ValueError(f"dataset {d.label!r}: unknown attacks {unknown}; the run's attacks: {labels}")
        dataset_labels = [d.label for d in self.datasets]
        for t in self.targets:
            unknown = sorted(set(t.datasets or []) - set(dataset_labels))
            if unknown:
                raise ValueError(
                    f"target {t.name!r}: unknown datasets {unknown}; the run's datasets: {dataset_labels} "
                    "(a dataset's label is its `name`, else its `kind`)"
                )
        return self

    @model_validator(mode="after")
    def _headline_judge_exists(self) -> RunConfig:
        labels = [j.label for j in self.judges]
        if self.headline_judge is not None and self.headline_judge not in labels:
            raise ValueError(f"headline_judge {self.headline_judge!r} is not a judge of this run; judges: {labels}")
        return self

    @field_validator("judges")
    @classmethod
    def _unique_judges(cls, judges: list[JudgeSpec]) -> list[JudgeSpec]:
        labels = [j.label for j in judges]
        dupes = sorted({n for n in labels if labels.count(n) > 1})
        if dupes:
            raise ValueError(f"judge labels must be unique (set `name`); repeated: {', '.join(dupes)}")
        return judges


# ---------------------------------------------------------------- YAML with line numbers

Loc = tuple[str | int, ...]


def _node_for(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    node = root
    best = root
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                    found = v
                    break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
        if node is None:
            break
        best = node
    return best


@dataclass(frozen=True)
class Location:
    """Where a config field was set: a ``--set`` flag, or a line of the config file."""

    source: str
    line: int | None = None
    override: str | None = None  # the KEY=VALUE text of the --set flag

    def __str__(self) -> str:
        if self.override is not None:
            return f"--set {self.override}"
        return f"{self.source} (line {self.line})" if self.line is not None else self.source


def locate(loc: Loc, source: str, root: yaml.Node | None, overrides: Sequence[tuple[Loc, str]] = ()) -> Location:
    """The ``--set`` flag that set ``loc`` (or a field above it), else its line in the file."""
    for path, text in reversed(overrides):
        if tuple(str(p) for p in loc[: len(path)]) == tuple(str(p) for p in path):
            return Location(source, override=text)
    node = _node_for(root, loc)
    return Location(source, line=node.start_mark.line + 1 if node is not None else None)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[TargetSpec] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple, dict) or typing.get_args(
        annotation
    ):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def field_names_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model`` (empty when there is none)."""
    current: type[BaseModel] | None = model
    for key in loc:
        if isinstance(key, int) or current is None:
            continue
        field = current.model_fields.get(str(key))
        current = _model_in(field.annotation) if field is not None else None
    return list(current.model_fields) if current is not None else []


def did_you_mean(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def error_message(err: Any, model: type[BaseModel], loc: Sequence[str | int]) -> str:
    """A pydantic error's message, with a suggestion for a misspelt key."""
    message = str(err["msg"])
    if err.get("type") == "extra_forbidden" and loc:
        message += did_you_mean(str(loc[-1]), field_names_at(model, loc[:-1]))
    return message


def format_problem(where: str, location: Location, message: str) -> str:
    """One line of a config error: ``--set K=V: field: msg`` or ``field (line N): msg``."""
    if location.override is not None:
        return f"  - {location}: {where}: {message}"
    line = f" (line {location.line})" if location.line is not None else ""
    return f"  - {where}{line}: {message}"


def format_validation_error(
    exc: ValidationError, source: str, root: yaml.Node | None, overrides: Sequence[tuple[Loc, str]] = ()
) -> str:
    lines = [f"{source}: invalid configuration:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        lines.append(format_problem(where, locate(loc, source, root, overrides), error_message(err, RunConfig, loc)))
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. targets.0.params.base_url=http://...")
    key, _, raw = text.partition("=")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return [p for p in key.strip().split(".") if p], value


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> Loc:
    """Set `path` in nested dicts/lists; list items can be named by index or by their `name`.

    Returns the path with list items as indices (as validation errors name them).
    """
    if not path:
        raise ConfigError("--set needs a key")
    node: Any = data
    resolved: list[str | int] = []
    for i, key in enumerate(path):
        last = i == len(path) - 1
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            index = _list_index(node, key, where)
            resolved.append(index)
            if last:
                node[index] = value
                return tuple(resolved)
            node = node[index]
        elif isinstance(node, dict):
            resolved.append(key)
            if last:
                node[key] = value
                return tuple(resolved)
            if not isinstance(node.get(key), (dict, list)):
                node[key] = {}
            node = node[key]
        else:
            raise ConfigError(f"--set {'.'.join(path)}: {where} is not a mapping or list")
    return tuple(resolved)


def _list_index(items: list[Any], key: str, where: str) -> int:
    if key.lstrip("-").isdigit():
        index = int(key)
        if -len(items) <= index < len(items):
            return index % len(items)
        raise ConfigError(f"--set: {where}: index out of range (list has {len(items)} items)")
    for index, item in enumerate(items):
        if isinstance(item, dict) and (item.get("name") == key or item.get("kind") == key):
            return index
    raise ConfigError(f"--set: {where}: no list item named {key!r}")


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a YAML run config. Raises ConfigError with file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    return parse_config(text, source=str(path), overrides=overrides)


def parse_config(text: str, *, source: str = "<config>", overrides: list[str] | None = None) -> RunConfig:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: malformed YAML{where}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping at the top level, got {type(data).__name__}")
    applied: list[tuple[Loc, str]] = []
    for item in overrides or []:
        key, value = parse_override(item)
        applied.append((apply_override(data, key, value), item))
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, root, applied)) from exc
    config._source, config._root, config._overrides = source, root, applied
    return config
