"""The registries, one per plugin kind. Plugins register with e.g. ``@datasets.register("jsonl")``."""

from __future__ import annotations

from typing import Any

from safemlrm.core.protocols import Attack, Dataset, Judge, ReasoningParser, Target
from safemlrm.core.registry import Registry

datasets: Registry[Dataset] = Registry("dataset", "safemlrm.datasets")
attacks: Registry[Attack] = Registry("attack", "safemlrm.attacks")
targets: Registry[Target] = Registry("target", "safemlrm.targets")
parsers: Registry[ReasoningParser] = Registry("parser", "safemlrm.parsers")
judges: Registry[Judge] = Registry("judge", "safemlrm.judges")

REGISTRIES: dict[str, Registry[Any]] = {
    "datasets": datasets,
    "attacks": attacks,
    "targets": targets,
    "parsers": parsers,
    "judges": judges,
}
