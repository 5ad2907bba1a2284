"""Collect concurrent requests into batches for in-process engines.

The pipeline may call ``generate([probe])`` many times at once, or ``generate(probes)`` with a list;
an in-process model is fastest when it sees them together. ``MicroBatcher.submit`` queues each item
with its own future; one worker task takes up to ``max_batch_size`` queued items (waiting at most
``max_wait_s`` for a batch to fill), runs them as one batch, and resolves the futures in order.
Batches run one at a time: an in-process engine owns the whole device, and while one batch runs the
next one fills up in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass
class _Pending(Generic[ItemT, ResultT]):
    item: ItemT
    future: asyncio.Future[ResultT]


class BatcherClosedError(RuntimeError):
    pass


class MicroBatcher(Generic[ItemT, ResultT]):
    """Runs ``run_batch`` over batches of queued items; ``run_batch`` returns one result per item."""

    def __init__(
        self,
        run_batch: Callable[[list[ItemT]], Awaitable[list[ResultT]]],
        *,
        max_batch_size: int,
        max_wait_s: float = 0.01,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must not be negative, got {max_wait_s}")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Pending[ItemT, ResultT]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.batch_sizes: list[int] = []  # every batch run, in order (for tests and benchmarks)

    def _ensure_worker(self) -> asyncio.Queue[_Pending[ItemT, ResultT]]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._queue is None or self._worker is None or self._worker.done():
            # A new event loop (e.g. a second asyncio.run) gets a fresh queue and worker.
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._work(self._queue), name="safemlrm-microbatcher")
        return self._queue

    async def submit(self, items: Sequence[ItemT]) -> list[ResultT]:
        """Queue the items and wait for their results, returned in the order given."""
        if self._closed:
            raise BatcherClosedError("the batcher is closed")
        if not items:
            return []
        queue = self._ensure_worker()
        loop = asyncio.get_running_loop()
        pending = [_Pending[ItemT, ResultT](item, loop.create_future()) for item in items]
        for entry in pending:
            queue.put_nowait(entry)
        try:
            outcomes = await asyncio.gather(*(entry.future for entry in pending), return_exceptions=True)
        except BaseException:
            for entry in pending:  # a cancelled caller's items are dropped, not run
                entry.future.cancel()
            raise
        results: list[ResultT] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            results.append(outcome)
        return results

    async def _next_batch(self, queue: asyncio.Queue[_Pending[ItemT, ResultT]]) -> list[_Pending[ItemT, ResultT]]:
        batch = [await queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return [entry for entry in batch if not entry.future.done()]

    async def _work(self, queue: asyncio.Queue[_Pending[ItemT, ResultT]]) -> None:
        while True:
            batch = await self._next_batch(queue)
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                results = await self._run_batch([entry.item for entry in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
            except asyncio.CancelledError:
                for entry in batch:
                    entry.future.cancel()
                raise
            except Exception as exc:  # the callers decide what a failed batch means
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(exc)
                continue
            for entry, result in zip(batch, results, strict=True):
                if not entry.future.done():
                    entry.future.set_result(result)

    async def aclose(self) -> None:
        """Stop the worker; requests still queued fail with BatcherClosedError."""
        self._closed = True
        worker, queue = self._worker, self._queue
        self._worker = None
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await worker
        if queue is not None:
            while not queue.empty():
                entry = queue.get_nowait()
                if not entry.future.done():
                    entry.future.set_exception(BatcherClosedError("the batcher was closed"))
