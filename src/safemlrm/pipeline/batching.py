"""Per-target dispatch: concurrent single-probe requests become batches for engines that batch.

API targets (``max_batch_size == 1``) take a fast path with only a concurrency limit. In-process
engines get up to ``max_batch_size`` probes per ``generate`` call, collected for at most
``max_wait_s`` after the first one arrives.
"""

from __future__ import annotations

import asyncio
import logging

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
        self._slots = asyncio.Semaphore(max(1, int(target.max_concurrency) // self.batch_size))
        self._pending: list[tuple[Probe, asyncio.Future[Generation]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, probe: Probe) -> Generation:
        if self.batch_size == 1:
            async with self._slots:
                return (await self._call([probe]))[0]
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        self._pending.append((probe, future))
        if len(self._pending) >= self.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_wait_s, self._flush)
        return await future

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

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
            task = asyncio.get_running_loop().create_task(self._run_batch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, batch: list[tuple[Probe, asyncio.Future[Generation]]]) -> None:
        async with self._slots:
            live = [(p, f) for p, f in batch if not f.cancelled()]
            if not live:
                return
            generations = await self._call([p for p, _ in live])
        for (_, future), generation in zip(live, generations, strict=True):
            if not future.done():
                future.set_result(generation)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
