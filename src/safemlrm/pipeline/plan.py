"""`--dry-run`: what a run would do, after what the store already holds, without calling anything."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from safemlrm.core.config import RunConfig
from safemlrm.core.judge_cache import JudgementCache
from safemlrm.core.shard import Shard
from safemlrm.core.store import STORE_FILE, RunStore
from safemlrm.pipeline.build import BuiltJudge, build_run
from safemlrm.pipeline.runner import _parse, generation_key, judged_text, judgement_key
from safemlrm.pipeline.units import Unit, enumerate_work


@dataclass
class TargetPlan:
    label: str
    probes: int = 0
    calls: int = 0  # generations still missing (or failed before)
    cached: int = 0
    samples: int = 1  # generations per probe


@dataclass
class Plan:
    shard: Shard | None = None  # the shard planned (None: the whole run)
    samples: int = 0
    probes: int = 0
    targets: dict[str, TargetPlan] = field(default_factory=dict)
    judge_calls: int = 0  # judge calls certainly needed for generations already in the store
    judge_calls_upper: int = 0  # plus those for generations not made yet (at most; identical texts share)
    judge_cached: int = 0

    def render(self) -> str:
        scope = f" (shard {self.shard}: only its probes)" if self.shard is not None else ""
        lines = [f"plan{scope}: {self.samples} samples -> {self.probes} probes"]
        for t in self.targets.values():
            per_probe = f" ({t.samples} samples per probe)" if t.samples > 1 else ""
            lines.append(f"  target {t.label}: {t.calls} calls to make, {t.cached} from the store{per_probe}")
        total = sum(t.calls for t in self.targets.values())
        lines.append(f"  target calls: {total}")
        lines.append(
            f"  judge calls: {self.judge_calls} for stored generations, up to {self.judge_calls_upper} in all "
            f"({self.judge_cached} from the store or cache)"
        )
        return "\n".join(lines)


async def _plan(config: RunConfig, run_dir: Path, base_dir: Path, shard: Shard | None) -> Plan:
    plan = Plan(shard=shard)
    store = RunStore(run_dir, create=False) if (run_dir / STORE_FILE).exists() else None
    cache = JudgementCache(config.judge_cache) if config.judge_cache else None
    with tempfile.TemporaryDirectory(prefix="safemlrm-plan-") as scratch:
        # Rendered images go to a scratch folder; keys hash image bytes, so they match the real run.
        built = build_run(config, Path(scratch), base_dir)
        try:
            for t in built.targets:
                plan.targets[t.label] = TargetPlan(t.label)
            async for work in enumerate_work(built, shard):  # the run's own enumeration
                plan.samples += 1
                for item in work.probes:
                    plan.probes += 1
                    for unit in item.units:
                        _plan_unit(plan, unit, config, built.judges, store, cache)
        finally:
            await built.aclose()
            if store:
                store.close()
            if cache:
                cache.close()
    return plan


def _plan_unit(
    plan: Plan,
    unit: Unit,
    config: RunConfig,
    judges: list[BuiltJudge],
    store: RunStore | None,
    cache: JudgementCache | None,
) -> None:
    tp = plan.targets[unit.target.label]
    tp.samples = unit.target.samples
    if unit.sample_index == 0:
        tp.probes += 1
    key = generation_key(unit.probe, unit.target, unit.sample_index)
    generation = store.get_generation(key) if store else None
    if generation is None or not generation.ok:
        tp.calls += 1
        plan.judge_calls_upper += len(config.parts) * len(judges)
        return
    tp.cached += 1
    parsed = _parse(unit.target, generation)
    for part in config.parts:
        text = judged_text(parsed, part)
        if not text:
            continue
        for judge in judges:
            jkey = judgement_key(judge, unit.sample.instruction, text)
            if (store and store.get_judgement(jkey)) or (cache and cache.get(jkey)):
                plan.judge_cached += 1
            else:
                plan.judge_calls += 1
                plan.judge_calls_upper += 1


def dry_run(config: RunConfig, run_dir: Path, *, base_dir: Path, shard: Shard | None = None) -> Plan:
    return asyncio.run(_plan(config, run_dir, base_dir, shard))
