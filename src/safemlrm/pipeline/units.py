"""The units of work of a run: one enumeration shared by the run, `--dry-run` and `--shard`.

A unit is one (probe, target) pair. Samples stream from the datasets (each up to its ``limit``),
each gets the attacks its dataset names, and every probe goes to every target that takes its dataset. A shard keeps the
probes whose key it owns, with all their targets; sequence numbers are those of the unsharded run,
so merged shards keep its order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from safemlrm.core.shard import Shard
from safemlrm.core.types import Probe, Sample
from safemlrm.pipeline.build import BuiltRun, BuiltTarget


@dataclass(frozen=True)
class Unit:
    seq: int  # position in the unsharded run's planning order
    sample: Sample
    probe: Probe
    target: BuiltTarget
    sample_index: int = 0  # which of the target's samples of this probe


@dataclass(frozen=True)
class ProbeWork:
    probe: Probe
    units: list[Unit]  # one per sample of each target that takes the probe's dataset


@dataclass(frozen=True)
class SampleWork:
    sample: Sample
    probes: list[ProbeWork]  # the sample's probes this shard keeps (all of them without a shard)


async def enumerate_work(built: BuiltRun, shard: Shard | None = None) -> AsyncIterator[SampleWork]:
    """Every sample the run loads, in order, with the probes and units the shard keeps."""
    seq = 0
    for spec, dataset in built.datasets:
        targets = built.targets_for(spec)  # a target may take only some datasets
        for n, sample in enumerate(dataset.load()):
            if spec.limit is not None and n >= spec.limit:
                break
            probes: list[ProbeWork] = []
            for _attack_label, attack in built.attacks_for(spec):
                for probe in await attack.apply(sample):
                    if shard is not None and not shard.keeps(probe.key):
                        seq += sum(t.samples for t in targets)
                        continue
                    units = []
                    for target in targets:
                        for sample_index in range(target.samples):
                            seq += 1
                            units.append(Unit(seq, sample, probe, target, sample_index))
                    probes.append(ProbeWork(probe, units))
            yield SampleWork(sample, probes)
