"""Collect concurrent calls into batches: one micro-batcher for targets, judges and the pipeline.

An in-process model (or an encoder) is much faster on a batch, but the pipeline calls it with one probe
at a time, many at once. ``MicroBatcher.submit`` queues each item with its own future; a worker task
takes up to ``max_batch_size`` queued items (waiting at most ``max_wait_s`` after the first one for a
batch to fill), runs them with ``run_batch`` and resolves the futures in order. At most
``max_inflight`` batches run at once; a worker waits for a free slot before it forms the next batch,
so while the engine is busy the queue fills and the next batch is as large as it can be.

With ``max_batch_size == 1`` there is nothing to collect: calls await ``run_batch`` directly under the
in-flight limit, with no queue and no task.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class BatcherClosedError(RuntimeError):
    pass


@dataclass
class _Pending(Generic[ItemT, ResultT]):
    item: ItemT
    future: asyncio.Future[ResultT]


@dataclass
class _LoopState(Generic[ItemT, ResultT]):
    """What belongs to one event loop; a batcher may serve several in turn (one asyncio.run per CLI stage)."""

    loop: asyncio.AbstractEventLoop
    slots: asyncio.Semaphore
    queue: asyncio.Queue[_Pending[ItemT, ResultT]] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None
    running: set[asyncio.Task[None]] = field(default_factory=set)


def _results_or_first_error(outcomes: Sequence[ResultT | BaseException]) -> list[ResultT]:
    results: list[ResultT] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results


class MicroBatcher(Generic[ItemT, ResultT]):
    """Runs ``run_batch`` over batches of submitted items; ``run_batch`` returns one result per item."""

    def __init__(
        self,
        run_batch: Callable[[list[ItemT]], Awaitable[list[ResultT]]],
        *,
        max_batch_size: int,
        max_wait_s: float = 0.01,
        max_inflight: int = 1,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be at least 1, got {max_inflight}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must not be negative, got {max_wait_s}")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_inflight = max_inflight
        # How many batches of each size ran (for tests and benchmarks); at most max_batch_size keys.
        self.batch_size_counts: Counter[int] = Counter()
        self._state: _LoopState[ItemT, ResultT] | None = None
        self._closed = False

    def _bind(self) -> _LoopState[ItemT, ResultT]:
        if self._closed:
            raise BatcherClosedError("the batcher is closed")
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            self._state = _LoopState(loop, asyncio.Semaphore(self.max_inflight))
        return self._state

    async def submit_one(self, item: ItemT) -> ResultT:
        """Run one item in the next batch and return its result."""
        state = self._bind()
        if self.max_batch_size == 1:
            async with state.slots:
                return (await self._run_counted([item]))[0]
        return (await self._enqueue(state, [item]))[0]

    async def submit(self, items: Sequence[ItemT]) -> list[ResultT]:
        """Queue the items and wait for their results, returned in the order given."""
        state = self._bind()
        if not items:
            return []
        if len(items) == 1:
            return [await self.submit_one(items[0])]
        if self.max_batch_size == 1:
            outcomes = await asyncio.gather(*(self.submit_one(item) for item in items), return_exceptions=True)
            return _results_or_first_error(outcomes)
        return await self._enqueue(state, items)

    async def _run_counted(self, items: list[ItemT]) -> list[ResultT]:
        self.batch_size_counts[len(items)] += 1
        results = await self._run_batch(items)
        if len(results) != len(items):
            raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
        return results

    async def _enqueue(self, state: _LoopState[ItemT, ResultT], items: Sequence[ItemT]) -> list[ResultT]:
        if state.worker is None or state.worker.done():
            state.worker = state.loop.create_task(self._work(state), name="safemlrm-microbatcher")
        pending = [_Pending[ItemT, ResultT](item, state.loop.create_future()) for item in items]
        for entry in pending:
            state.queue.put_nowait(entry)
        try:
            outcomes = await asyncio.gather(*(entry.future for entry in pending), return_exceptions=True)
        except BaseException:
            for entry in pending:  # a cancelled caller's items are dropped, not run
                entry.future.cancel()
            raise
        return _results_or_first_error(outcomes)

    async def _collect(
        self, queue: asyncio.Queue[_Pending[ItemT, ResultT]], batch: list[_Pending[ItemT, ResultT]]
    ) -> None:
        batch.append(await queue.get())
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                return

    def _abandon(self, entries: Sequence[_Pending[ItemT, ResultT]]) -> None:
        """Futures left by a cancelled worker or batch: closed if aclose cancelled it, else cancelled."""
        for entry in entries:
            if entry.future.done():
                continue
            if self._closed:
                entry.future.set_exception(BatcherClosedError("the batcher was closed"))
            else:
                entry.future.cancel()

    async def _work(self, state: _LoopState[ItemT, ResultT]) -> None:
        forming: list[_Pending[ItemT, ResultT]] = []
        try:
            while True:
                await state.slots.acquire()
                try:
                    await self._collect(state.queue, forming)
                except BaseException:
                    state.slots.release()
                    raise
                batch, forming = [entry for entry in forming if not entry.future.done()], []
                if not batch:
                    state.slots.release()
                    continue
                task = state.loop.create_task(self._run_pending(state, batch))
                state.running.add(task)
                task.add_done_callback(state.running.discard)
        except asyncio.CancelledError:
            self._abandon(forming)
            raise

    async def _run_pending(self, state: _LoopState[ItemT, ResultT], batch: list[_Pending[ItemT, ResultT]]) -> None:
        try:
            results = await self._run_counted([entry.item for entry in batch])
        except asyncio.CancelledError:
            self._abandon(batch)
            raise
        except Exception as exc:  # the callers decide what a failed batch means
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            return
        finally:
            state.slots.release()
        for entry, result in zip(batch, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)

    async def aclose(self) -> None:
        """Stop the worker and running batches; their callers and queued ones get BatcherClosedError."""
        self._closed = True
        state, self._state = self._state, None
        if state is None:
            return
        if state.loop is asyncio.get_running_loop():  # a finished loop's tasks are done already
            tasks = [task for task in (state.worker, *state.running) if task is not None and not task.done()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        while not state.queue.empty():
            entry = state.queue.get_nowait()
            if not entry.future.done():
                entry.future.set_exception(BatcherClosedError("the batcher was closed"))
