"""A small async micro-batcher: many concurrent single-item calls become a few batched calls.

Judges get one text per call, many calls at once; an encoder or an in-process judge model is much
faster on a batch. Items that arrive within `max_wait_s` of each other (or until `max_batch` are
waiting) go to `batch_fn` together; at most `max_inflight` batches run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    def __init__(
        self,
        batch_fn: Callable[[list[In]], Awaitable[list[Out]]],
        *,
        max_batch: int,
        max_wait_s: float = 0.005,
        max_inflight: int = 1,
    ) -> None:
        if max_batch < 1 or max_inflight < 1:
            raise ValueError("MicroBatcher: max_batch and max_inflight must be >= 1")
        self._batch_fn = batch_fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_inflight = max_inflight
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batch_sizes: list[int] = []  # for tests and benchmarks

    def _bind(self) -> asyncio.AbstractEventLoop:
        # A judge may be used from several event loops in turn (one asyncio.run per CLI stage);
        # the semaphore belongs to one loop, so it is remade when the loop changes.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._slots = asyncio.Semaphore(self.max_inflight)
            self._pending = []
            self._timer = None
        return loop

    async def submit(self, item: In) -> Out:
        loop = self._bind()
        future: asyncio.Future[Out] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            task = asyncio.ensure_future(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        assert self._slots is not None
        async with self._slots:
            self.batch_sizes.append(len(batch))
            try:
                results = await self._batch_fn([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"batch function returned {len(results)} results for {len(batch)} items"
                    )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
