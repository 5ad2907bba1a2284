"""Per-target dispatch: a concurrency limit, and errors as values, over the shared micro-batcher.

API targets (``max_batch_size == 1``) take the batcher's direct path with only a concurrency limit.
In-process engines get up to ``max_batch_size`` probes per ``generate`` call, collected for at most
``max_wait_s`` after the first one arrives; ``max_concurrency // max_batch_size`` batches run at once.
"""

from __future__ import annotations

import asyncio
import logging

from safemlrm.batching import MicroBatcher
from safemlrm.protocols import Target
from safemlrm.types import Generation, Probe

log = logging.getLogger(__name__)


def _error_generation(probe: Probe, label: str, exc: BaseException) -> Generation:
    return Generation(probe_key=probe.key, target=label, error=f"{type(exc).__name__}: {exc}")


class TargetDispatcher:
    def __init__(self, target: Target, label: str, max_wait_s: float = 0.05) -> None:
        self.target = target
        self.label = label
        self.batch_size = max(1, int(target.max_batch_size))
        self.max_wait_s = max_wait_s
        self._batcher: MicroBatcher[Probe, Generation] = MicroBatcher(
            self._call,
            max_batch_size=self.batch_size,
            max_wait_s=max_wait_s,
            max_inflight=max(1, int(target.max_concurrency) // self.batch_size),
        )

    async def submit(self, probe: Probe) -> Generation:
        return await self._batcher.submit_one(probe)

    async def _call(self, probes: list[Probe]) -> list[Generation]:
        try:
            generations = await self.target.generate(probes)
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
