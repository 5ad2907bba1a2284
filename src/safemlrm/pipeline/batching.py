"""Per-target dispatch: a concurrency limit, and errors as values, over the shared micro-batcher.

API targets (``max_batch_size == 1``) take the batcher's direct path with only a concurrency limit.
In-process engines get up to ``max_batch_size`` probes per ``generate`` call, collected for at most
``max_wait_s`` after the first one arrives; ``max_concurrency // max_batch_size`` batches run at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from safemlrm.core.batching import MicroBatcher
from safemlrm.core.protocols import Target
from safemlrm.core.types import Generation, Probe

log = logging.getLogger(__name__)


def _error_generation(probe: Probe, label: str, exc: BaseException) -> Generation:
    return Generation(probe_key=probe.key, target=label, error=f"{type(exc).__name__}: {exc}")


class TargetDispatcher:
    def __init__(self, target: Target, label: str, max_wait_s: float = 0.05) -> None:
        self.target = target
        self.label = label
        self.batch_size = max(1, int(target.max_batch_size))
        self.max_wait_s = max_wait_s
        self._batcher: MicroBatcher[tuple[Probe, int], Generation] = MicroBatcher(
            self._call,
            max_batch_size=self.batch_size,
            max_wait_s=max_wait_s,
            max_inflight=max(1, int(target.max_concurrency) // self.batch_size),
        )

    async def submit(self, probe: Probe, sample: int = 0) -> Generation:
        """Generate sample ``sample`` of a probe (0 = the one generation of a run without samples)."""
        return await self._batcher.submit_one((probe, sample))

    async def _call(self, items: list[tuple[Probe, int]]) -> list[Generation]:
        """One ``generate`` call per sample index in the batch; sample 0 is called exactly as without samples."""
        results: list[Generation] = []
        order: list[int] = []
        for sample in sorted({s for _, s in items}):
            indexes = [i for i, (_, s) in enumerate(items) if s == sample]
            results.extend(await self._generate([items[i][0] for i in indexes], sample))
            order.extend(indexes)
        by_index = dict(zip(order, results, strict=True))
        return [by_index[i] for i in range(len(items))]

    async def _generate(self, probes: list[Probe], sample: int) -> list[Generation]:
        try:
            if sample == 0:
                generations = await self.target.generate(probes)
            else:
                draw: Any = self.target.generate  # a sampling target takes sample= (checked when the run is built)
                generations = await draw(probes, sample=sample)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a target must return errors as values; be safe if one raises
            log.warning("target %s raised %s; stored as errors", self.label, type(exc).__name__)
            return [_error_generation(p, self.label, exc) for p in probes]
        if len(generations) != len(probes):
            mismatch = RuntimeError(f"target returned {len(generations)} generations for {len(probes)} probes")
            return [_error_generation(p, self.label, mismatch) for p in probes]
        return list(generations)

    async def aclose(self) -> None:
        await self._batcher.aclose()
