"""Check a validated config against its plugins before anything is built or called.

The top-level schema is checked by pydantic when the config is read (``config.py``); this checks what
only the plugins know: each plugin's params, the judge and attack models (target specs, profiles),
and, for ``safemlrm validate``, the resources the run will need: files and folders that must exist
and the API-key environment variables that must be set. Every problem names the plugin's label, the
field, and where it was set (file and line, or the ``--set`` flag), and all are reported at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from safemlrm.core import plugins
from safemlrm.core.config import ConfigError, Loc, PluginSpec, RunConfig, TargetSpec, error_message, format_problem
from safemlrm.core.profiles import ProfileError
from safemlrm.core.protocols import ALL_MODALITIES, input_modalities
from safemlrm.core.registry import PluginConfigError, UnknownPluginError, must_exist_fields
from safemlrm.core.target_build import resolve_target

SECTION_NOUN = {"datasets": "dataset", "attacks": "attack", "targets": "target", "judges": "judge"}


@dataclass
class _Checker:
    config: RunConfig
    base_dir: Path
    resources: bool
    problems: list[str] = field(default_factory=list)

    def add(self, loc: Loc, message: str) -> None:
        where = ".".join(str(p) for p in loc)
        self.problems.append(format_problem(where, self.config.locate(loc), message))

    def params(
        self, registry: str, kind: str, params: Mapping[str, Any], loc: Loc, who: str, kind_loc: Loc
    ) -> BaseModel | None:
        """Validated params, or None after recording each problem with its field and location."""
        reg = plugins.REGISTRIES[registry]
        try:
            return reg.validate_params(kind, params)
        except UnknownPluginError as exc:
            self.add(kind_loc, f"{who}: {exc}")
            return None
        except PluginConfigError as exc:
            model: type[BaseModel] = reg.get(kind).Params  # type: ignore[attr-defined]
            for err in exc.errors or [{"loc": (), "msg": str(exc)}]:
                inner = tuple(err["loc"])
                self.add((*loc, *inner), f"{who}: {error_message(err, model, inner)}")
            return None

    def files(self, validated: BaseModel, loc: Loc, who: str) -> None:
        if not self.resources:
            return
        for name in must_exist_fields(type(validated)):
            value = getattr(validated, name)
            if value is None or value == "":
                continue
            path = Path(str(value)).expanduser()
            resolved = path if path.is_absolute() else self.base_dir / path
            if not resolved.exists():
                self.add((*loc, name), f"{who}: {str(value)!r} does not exist (looked for {resolved})")

    def api_key(self, validated: BaseModel, loc: Loc, who: str) -> None:
        variable = getattr(validated, "api_key_env", None)
        if self.resources and isinstance(variable, str) and variable and not os.environ.get(variable):
            # The name only: a value is never printed (there is none here anyway).
            self.add((*loc, "api_key_env"), f"{who}: the API-key variable {variable} is not set in this environment")

    def target(self, spec: TargetSpec, loc: Loc, who: str) -> None:
        try:
            resolved = resolve_target(spec, self.config.profiles_dir)
        except ProfileError as exc:
            self.add((*loc, "profile"), f"{who}: {exc}")
            return
        validated = self.params("targets", resolved.kind, resolved.params, (*loc, "params"), who, (*loc, "kind"))
        if validated is not None:
            self.files(validated, (*loc, "params"), who)
            self.api_key(validated, (*loc, "params"), who)
        parser_loc = (*loc, "parser_params")
        self.params("parsers", resolved.parser, resolved.parser_params, parser_loc, who, (*loc, "parser"))

    def model_param(self, validated: BaseModel, loc: Loc, who: str, label: str) -> None:
        """A judge's or an attack's `model`: a target spec (checked as a target) or a run target's label."""
        model = getattr(validated, "model", None)
        if isinstance(model, str) and "model" in type(validated).model_fields and _takes_spec(validated):
            if model not in {t.name for t in self.config.targets}:
                known = ", ".join(t.name for t in self.config.targets)
                self.add((*loc, "model"), f"{who}: no target labelled {model!r} in this run (targets: {known})")
        elif isinstance(model, dict):
            try:
                spec = TargetSpec.model_validate({"name": f"{label}-model", **model})
            except ValidationError as exc:
                for err in exc.errors():
                    inner = tuple(err["loc"])
                    self.add((*loc, "model", *inner), f"{who}: {error_message(err, TargetSpec, inner)}")
                return
            self.target(spec, (*loc, "model"), f"{who} model {spec.name!r}")

    def plugin(self, section: str, index: int, spec: PluginSpec) -> None:
        loc: Loc = (section, index, "params")
        who = f"{SECTION_NOUN[section]} {spec.label!r}"
        validated = self.params(section, spec.kind, spec.params, loc, who, (section, index, "kind"))
        if validated is None:
            return
        self.files(validated, loc, who)
        if section in ("attacks", "judges"):
            self.model_param(validated, loc, who, spec.label)


    def modalities(self) -> None:
        """A target that reads no images must not get the probes of an attack that makes images."""
        attacks = {a.label: a for a in self.config.attacks}
        for i, tspec in enumerate(self.config.targets):
            reads = self._target_reads(tspec)
            if reads is None or "image" in reads:
                continue
            for dataset in self.config.datasets:
                if tspec.datasets is not None and dataset.label not in tspec.datasets:
                    continue
                for label in dataset.attacks if dataset.attacks is not None else list(attacks):
                    attack = attacks.get(label)
                    makes = _attack_makes(attack.kind) if attack is not None else None
                    if attack is None or makes is None or "image" not in makes:
                        continue
                    where: Loc = ("targets", i, "input_modalities") if tspec.input_modalities else ("targets", i)
                    self.add(
                        where,
                        f"target {tspec.name!r} reads no images (input modalities: {', '.join(sorted(reads))}) but "
                        f"attack {attack.label!r} ({attack.kind}) makes image probes for dataset {dataset.label!r}; "
                        f"leave that dataset out of the target's `datasets`, that attack out of the dataset's "
                        f"`attacks`, or use a target that reads images",
                    )

    def _target_reads(self, spec: TargetSpec) -> frozenset[str] | None:
        if spec.input_modalities is not None:
            return frozenset(spec.input_modalities)
        try:
            kind = resolve_target(spec, self.config.profiles_dir).kind
            return input_modalities(plugins.targets.get(kind))
        except (ProfileError, UnknownPluginError):  # reported by the target's own check
            return None


def _attack_makes(kind: str) -> frozenset[str] | None:
    try:
        return frozenset(getattr(plugins.attacks.get(kind), "output_modalities", ALL_MODALITIES))
    except UnknownPluginError:  # reported by the attack's own check
        return None


def _takes_spec(validated: BaseModel) -> bool:
    """Whether the `model` field also takes a target spec (so a string in it is a run target's label)."""
    annotation = type(validated).model_fields["model"].annotation
    return "dict" in str(annotation)


def check_config(config: RunConfig, base_dir: Path, *, resources: bool = True) -> None:
    """Raise ConfigError listing every problem the plugins find in ``config``.

    ``resources``: also check that files and folders named by plugin params exist (relative paths
    against ``base_dir``, the config's folder) and that API-key variables (``api_key_env``) are set.
    """
    checker = _Checker(config, base_dir, resources)
    for i, dataset in enumerate(config.datasets):
        checker.plugin("datasets", i, dataset)
    for i, attack in enumerate(config.attacks):
        checker.plugin("attacks", i, attack)
    for i, target in enumerate(config.targets):
        checker.target(target, ("targets", i), f"target {target.name!r}")
    for i, judge in enumerate(config.judges):
        checker.plugin("judges", i, judge)
    checker.modalities()
    if checker.problems:
        raise ConfigError("\n".join([f"{config.locate(()).source}: invalid configuration:", *checker.problems]))
