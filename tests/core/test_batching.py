"""The micro-batcher shared by in-process targets, judges and the pipeline's dispatcher."""

from __future__ import annotations

import asyncio

import pytest

from safemlrm.core.batching import BatcherClosedError, MicroBatcher


class Recorder:
    """A batch function that records the batches it saw and doubles each item."""

    def __init__(self, delay_s: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.running = 0
        self.max_running = 0

    async def __call__(self, items: list[int]) -> list[int]:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            self.batches.append(list(items))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.fail_on is not None and self.fail_on in items:
                raise ValueError(f"cannot handle {self.fail_on}")
            return [2 * item for item in items]
        finally:
            self.running -= 1


async def test_concurrent_single_calls_are_collected_into_batches() -> None:
    recorder = Recorder(delay_s=0.01)
    batcher = MicroBatcher(recorder, max_batch_size=4, max_wait_s=0.05)
    results = await asyncio.gather(*(batcher.submit([i]) for i in range(10)))
    assert results == [[2 * i] for i in range(10)]
    assert batcher.batch_size_counts == {4: 2, 2: 1}
    assert sorted(x for batch in recorder.batches for x in batch) == list(range(10))
    assert recorder.max_running == 1  # batches run one at a time
    await batcher.aclose()


async def test_a_long_list_is_split_and_results_keep_their_order() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=3, max_wait_s=0.0)
    items = [5, 1, 4, 2, 8, 7, 3]
    assert await batcher.submit(items) == [2 * i for i in items]
    assert recorder.batches == [[5, 1, 4], [2, 8, 7], [3]]
    await batcher.aclose()


async def test_lists_and_single_calls_mix() -> None:
    recorder = Recorder(delay_s=0.005)
    batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_s=0.02)
    a, b, c = await asyncio.gather(batcher.submit([1, 2, 3]), batcher.submit([10]), batcher.submit([20, 30]))
    assert (a, b, c) == ([2, 4, 6], [20], [40, 60])
    assert batcher.batch_size_counts == {6: 1}
    await batcher.aclose()


async def test_an_empty_request_runs_nothing() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=2)
    assert await batcher.submit([]) == []
    assert recorder.batches == []


async def test_a_failed_batch_fails_only_its_callers() -> None:
    recorder = Recorder(delay_s=0.005, fail_on=3)
    batcher = MicroBatcher(recorder, max_batch_size=2, max_wait_s=0.0)
    outcomes = await asyncio.gather(
        batcher.submit([1, 2]), batcher.submit([3, 4]), batcher.submit([5]), return_exceptions=True
    )
    assert outcomes[0] == [2, 4]
    assert isinstance(outcomes[1], ValueError) and "cannot handle 3" in str(outcomes[1])
    assert outcomes[2] == [10]
    # the worker survives a failed batch
    assert await batcher.submit([6]) == [12]
    await batcher.aclose()


async def test_a_wrong_number_of_results_is_an_error() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batcher = MicroBatcher(short, max_batch_size=4)
    with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
        await batcher.submit([1, 2])
    await batcher.aclose()


async def test_a_cancelled_caller_is_not_run() -> None:
    recorder = Recorder(delay_s=0.05)
    batcher = MicroBatcher(recorder, max_batch_size=1, max_wait_s=0.0)
    first = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0.01)  # first batch is running
    second = asyncio.ensure_future(batcher.submit([2]))
    await asyncio.sleep(0)
    second.cancel()
    assert await first == [2]
    with pytest.raises(asyncio.CancelledError):
        await second
    assert await batcher.submit([3]) == [6]
    assert recorder.batches == [[1], [3]]
    await batcher.aclose()


async def test_a_partial_batch_waits_at_most_max_wait() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=64, max_wait_s=0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await batcher.submit([1]) == [2]
    elapsed = loop.time() - start
    assert 0.04 <= elapsed < 1.0
    await batcher.aclose()


async def test_closed_batcher_refuses_work() -> None:
    batcher = MicroBatcher(Recorder(), max_batch_size=2)
    await batcher.submit([1])
    await batcher.aclose()
    with pytest.raises(BatcherClosedError):
        await batcher.submit([1])


def test_a_batcher_survives_separate_event_loops() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=2, max_wait_s=0.0)
    assert asyncio.run(batcher.submit([1])) == [2]
    assert asyncio.run(batcher.submit([2, 3])) == [4, 6]


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        MicroBatcher(Recorder(), max_batch_size=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        MicroBatcher(Recorder(), max_batch_size=1, max_wait_s=-1)
    with pytest.raises(ValueError, match="max_inflight"):
        MicroBatcher(Recorder(), max_batch_size=1, max_inflight=0)


async def test_single_items_form_batches_and_several_batches_may_run_at_once() -> None:
    recorder = Recorder(delay_s=0.02)
    batcher = MicroBatcher(recorder, max_batch_size=4, max_wait_s=0.0, max_inflight=2)
    results = await asyncio.gather(*(batcher.submit_one(i) for i in range(12)))
    assert results == [2 * i for i in range(12)]
    assert batcher.batch_size_counts == {4: 3}
    assert recorder.max_running == 2
    await batcher.aclose()


async def test_batch_size_one_awaits_directly_under_the_inflight_limit() -> None:
    recorder = Recorder(delay_s=0.01)
    batcher = MicroBatcher(recorder, max_batch_size=1, max_inflight=3)
    tasks_before = len(asyncio.all_tasks())
    calls = [asyncio.ensure_future(batcher.submit_one(i)) for i in range(7)]
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == tasks_before + len(calls)  # no worker, no task per batch
    assert await asyncio.gather(*calls) == [2 * i for i in range(7)]
    assert await batcher.submit([1, 2, 3]) == [2, 4, 6]
    assert recorder.max_running == 3
    assert batcher.batch_size_counts == {1: 10}
    with pytest.raises(ValueError, match="cannot handle 5"):
        await MicroBatcher(Recorder(fail_on=5), max_batch_size=1).submit_one(5)
    await batcher.aclose()


async def test_close_fails_queued_and_running_callers() -> None:
    recorder = Recorder(delay_s=1.0)
    batcher = MicroBatcher(recorder, max_batch_size=2, max_wait_s=0.0)
    running = asyncio.ensure_future(batcher.submit([1, 2]))
    queued = asyncio.ensure_future(batcher.submit([3]))
    await asyncio.sleep(0.01)
    await batcher.aclose()
    for call in (running, queued):
        with pytest.raises(BatcherClosedError):
            await call
    assert recorder.batches == [[1, 2]]


def test_close_leaves_no_pending_task(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    batcher = MicroBatcher(Recorder(), max_batch_size=4, max_wait_s=0.0)
    assert loop.run_until_complete(batcher.submit([1, 2])) == [2, 4]
    loop.run_until_complete(batcher.aclose())
    assert asyncio.all_tasks(loop) == set()
    loop.close()
    assert "Task was destroyed" not in caplog.text


def test_counts_stay_bounded_over_many_calls() -> None:
    batcher = MicroBatcher(Recorder(), max_batch_size=3, max_wait_s=0.0)

    async def many() -> None:
        for start in range(0, 300, 7):
            await batcher.submit(list(range(start, start + 7)))

    asyncio.run(many())
    assert set(batcher.batch_size_counts) <= {1, 2, 3}
    assert sum(size * n for size, n in batcher.batch_size_counts.items()) == 43 * 7
