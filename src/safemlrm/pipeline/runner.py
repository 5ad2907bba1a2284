"""The run pipeline: load -> attack -> generate -> parse -> judge -> analyse -> report.

Stages stream: samples are loaded lazily, and each (probe, target) unit flows through generation,
parsing and judging on its own, with a bounded number of units in flight, so memory stays flat and
servers stay busy. Every stage reads what is already in the run store before doing any work, and
writes its rows as soon as they exist, so a stopped or killed run resumes where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safemlrm.core import plugins
from safemlrm.core.config import RunConfig
from safemlrm.core.hashing import content_hash
from safemlrm.core.judge_cache import JudgementCache
from safemlrm.core.language import UNREADABLE_LABEL
from safemlrm.core.protocols import ReasoningParser
from safemlrm.core.records import TargetInfo
from safemlrm.core.secrets import redact
from safemlrm.core.shard import Shard
from safemlrm.core.store import RunStore, StoreError
from safemlrm.core.types import NAN, Generation, Judgement, ParsedOutput, ParseStatus, Part, Probe, Sample
from safemlrm.pipeline.batching import TargetDispatcher
from safemlrm.pipeline.build import BuiltJudge, BuiltRun, BuiltTarget, build_run, environment
from safemlrm.pipeline.progress import StageProgress
from safemlrm.pipeline.units import Unit, enumerate_work

log = logging.getLogger(__name__)


class RunInterrupted(Exception):
    """The run was stopped (Ctrl-C / SIGTERM); everything computed so far is in the store."""

    def __init__(self, run_dir: Path, counters: Counters) -> None:
        super().__init__(f"run stopped; results so far are kept in {run_dir}; run the same command to resume")
        self.run_dir = run_dir
        self.counters = counters


@dataclass
class Counters:
    samples: int = 0
    probes: int = 0
    units: int = 0
    target_calls: int = 0
    target_cached: int = 0
    target_errors: int = 0
    judge_calls: int = 0
    judge_cached: int = 0
    judge_shared_cached: int = 0  # of judge_cached: from the shared cross-run cache (judge_cache)
    judge_failed: int = 0
    judge_unreadable: int = 0  # of judge_failed: texts in a language the judge cannot read
    parts_skipped_empty: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class RunResult:
    run_dir: Path
    counters: Counters
    reports: dict[str, Path] = field(default_factory=dict)
    elapsed_s: float = 0.0


def generation_key(probe: Probe, target: BuiltTarget, sample_index: int = 0) -> str:
    """The store key of one generation; sample 0 keeps the key a run without samples has, so it resumes."""
    if sample_index == 0:
        return content_hash(["generation", probe.key, target.label, target.identity_key])
    return content_hash(["generation", probe.key, target.label, target.identity_key, sample_index])


def judgement_key(judge: BuiltJudge, instruction: str, text: str) -> str:
    return content_hash(["judgement", judge.identity_key, instruction, text])


def judged_text(parsed: ParsedOutput, part: Part) -> str:
    """The text a judge sees for one part: trimmed, so `whole` and `answer` of an output without
    reasoning are one text, judged once (outputs often start with a space or a newline)."""
    return parsed.text(part).strip()


def _parse(target: BuiltTarget, generation: Generation) -> ParsedOutput:
    return _parse_with(target.parser if generation.ok else None, generation)


def _parse_with(parser: ReasoningParser | None, generation: Generation) -> ParsedOutput:
    if parser is None or not generation.ok:
        return ParsedOutput(raw=generation.text, reasoning="", answer="", status=ParseStatus.ERROR, parser="none")
    return parser.parse(generation)


@dataclass
class _Invocation:
    id: int
    status: str = "interrupted"  # until the stage returns or fails


def _parser_of(info: TargetInfo, built: BuiltRun) -> ReasoningParser:
    """The reasoning parser a stored target was run with (its kind and params are in its identity)."""
    for t in built.targets:
        if t.label == info.label:
            return t.parser
    name = str(info.identity.get("parser") or "think_tags")
    params = info.identity.get("parser_params") or {}
    return plugins.parsers.create(name, params, built.ctx.with_label(name))


class Pipeline:
    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        *,
        base_dir: Path,
        progress: bool = True,
        command: str = "run",
        reports: bool = True,
        shard: Shard | None = None,
    ) -> None:
        self.config = config
        self.shard = shard
        self.run_dir = run_dir
        self.base_dir = base_dir
        self.show_progress = progress
        self.command = f"{command} --shard {shard}" if shard is not None else command
        self.reports = reports
        self.counters = Counters()
        self._inflight_judgements: dict[str, asyncio.Future[Judgement]] = {}

    # ------------------------------------------------------------------ stages
    async def _units(self, built: BuiltRun, store: RunStore, progress: StageProgress) -> AsyncIterator[Unit]:
        """Stages load and attack: samples stream in, each becomes probes for every target."""
        async for work in enumerate_work(built, self.shard):
            store.put_sample(work.sample)
            self.counters.samples += 1
            progress.advance("load")
            for item in work.probes:
                store.put_probe(item.probe)
                self.counters.probes += 1
                progress.advance("attack")
                for unit in item.units:
                    yield unit
            store.maybe_commit()

    async def _generate(
        self, unit: Unit, dispatcher: TargetDispatcher, store: RunStore, invocation: int, progress: StageProgress
    ) -> tuple[str, Generation, ParsedOutput, bool]:
        """Stages generate and parse for one unit; the flag says whether the generation is new."""
        key = generation_key(unit.probe, unit.target, unit.sample_index)
        store.put_item(unit.probe.key, unit.target.label, key, invocation, unit.seq, unit.sample_index)
        stored = store.get_generation_and_parsed(key)
        if stored is not None and stored[0].ok:
            generation, parsed_json = stored
            self.counters.target_cached += 1
            parsed = _parse(unit.target, generation)
            if parsed_json != parsed.model_dump_json():  # the parser changed since: parsing is pure, redo it
                store.put_parsed(key, parsed)
            fresh = False
        else:
            generation = await dispatcher.submit(unit.probe, unit.sample_index)
            self.counters.target_calls += 1
            if not generation.ok:
                self.counters.target_errors += 1
            parsed = _parse(unit.target, generation)
            store.put_generation(key, generation, parsed)
            fresh = True
        progress.advance("generate")
        progress.advance("parse")
        if not generation.ok:  # a failed generation is not judged
            progress.drop("judge", len(self.config.parts) * len(self._judges))
        return key, generation, parsed, fresh

    async def _judge_one(
        self, judge: BuiltJudge, sample: Sample, text: str, part: Part, semaphore: asyncio.Semaphore
    ) -> Judgement:
        async with semaphore:
            try:
                return await judge.judge.judge(sample, text, part)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # judges return failures as values; be safe if one raises
                return Judgement(judge=judge.label, score=NAN, error=f"{type(exc).__name__}: {exc}")

    async def _judge(
        self,
        sample: Sample,
        gen_key: str,
        parsed: ParsedOutput,
        store: RunStore,
        cache: JudgementCache | None,
        semaphores: dict[str, asyncio.Semaphore],
        progress: StageProgress,
        fresh: bool,
    ) -> None:
        """Stage judge: each part of one generation, by each judge; cached by (judge, instruction, text).

        A generation made just now has no score links yet, so only a stored one is looked up (once,
        for all its parts and judges).
        """
        linked = {} if fresh else store.scores_of(gen_key)
        jobs = []
        for part in self.config.parts:
            text = judged_text(parsed, part)
            if not text:
                self.counters.parts_skipped_empty += 1
                progress.drop("judge", len(self._judges))
                continue
            for judge in self._judges:
                jkey = judgement_key(judge, sample.instruction, text)
                if linked.get((part.value, judge.label)) == jkey:
                    self.counters.judge_cached += 1
                    progress.advance("judge")
                    continue
                jobs.append(
                    self._judge_part(sample, gen_key, part, text, jkey, judge, store, cache, semaphores, progress)
                )
        if len(jobs) == 1:
            await jobs[0]
        elif jobs:
            await asyncio.gather(*jobs)

    async def _judge_part(
        self,
        sample: Sample,
        gen_key: str,
        part: Part,
        text: str,
        jkey: str,
        judge: BuiltJudge,
        store: RunStore,
        cache: JudgementCache | None,
        semaphores: dict[str, asyncio.Semaphore],
        progress: StageProgress,
    ) -> None:
        existing = store.get_judgement(jkey)
        if existing is None and cache is not None:
            existing = cache.get(jkey)
            if existing is not None:
                self.counters.judge_shared_cached += 1
                store.copy_judgement(jkey, existing)
        if existing is None and jkey in self._inflight_judgements:  # same text judged by a sibling unit
            existing = await asyncio.shield(self._inflight_judgements[jkey])
            self.counters.judge_cached += 1
            if existing.error is None:
                store.link_score(gen_key, part, judge.label, jkey)
            else:
                store.put_judgement(jkey, existing, gen_key, part, judge.label)
            progress.advance("judge")
            return
        if existing is not None:
            self.counters.judge_cached += 1
            store.link_score(gen_key, part, judge.label, jkey)
            progress.advance("judge")
            return
        future: asyncio.Future[Judgement] = asyncio.get_running_loop().create_future()
        self._inflight_judgements[jkey] = future
        try:
            judgement = await self._judge_one(judge, sample, text, part, semaphores[judge.label])
            future.set_result(judgement)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight_judgements.pop(jkey, None)
        self.counters.judge_calls += 1
        if judgement.error is not None or math.isnan(judgement.score):
            self.counters.judge_failed += 1
            if judgement.label == UNREADABLE_LABEL:
                self.counters.judge_unreadable += 1
        store.put_judgement(jkey, judgement, gen_key, part, judge.label)
        if cache is not None:
            cache.put(jkey, judgement)
        progress.advance("judge")

    # ------------------------------------------------------------------ orchestration
    @contextlib.asynccontextmanager
    async def _invocation(self, built: BuiltRun, store: RunStore) -> AsyncIterator[_Invocation]:
        """One invocation of a stage: recorded in the store, stopped cleanly by Ctrl-C / SIGTERM,
        and marked finished, failed or interrupted with its counters, whatever happens inside."""
        for t in built.targets:
            store.put_target(t.info)
        for j in built.judges:
            store.put_judge(j.info)
        config = redact(self.config.model_dump(mode="json"))
        inv = _Invocation(store.start_invocation(self.command, config, environment()))
        store.commit()
        loop = asyncio.get_running_loop()
        main_task = asyncio.current_task()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows / not main thread
            loop.add_signal_handler(signal.SIGTERM, lambda: main_task.cancel() if main_task else None)
        try:
            yield inv
            inv.status = "finished"
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise RunInterrupted(self.run_dir, self.counters) from None
        except BaseException:
            inv.status = "failed"
            raise
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)
            store.finish_invocation(inv.id, inv.status, self.counters.as_dict())

    async def _stream_units(
        self,
        built: BuiltRun,
        store: RunStore,
        invocation: int,
        cache: JudgementCache | None,
        progress: StageProgress,
    ) -> None:
        """Stages attack, generate, parse (and judge, when the run has judges), streamed per unit."""
        dispatchers = {t.label: TargetDispatcher(t.target, t.label) for t in built.targets}
        semaphores = {j.label: asyncio.Semaphore(max(1, int(j.judge.max_concurrency))) for j in built.judges}
        # Two stages with their own limits, so units waiting for a judge never hold generation slots
        # (a burst of finished generations would otherwise leave the model server idle while they are
        # judged). A unit takes its judge slot before it gives back its generation slot: when the
        # judges fall behind, generation waits, and at most 2 x concurrency units are alive at once.
        generation_slots = asyncio.Semaphore(self.config.concurrency)
        judge_slots = asyncio.Semaphore(self.config.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        async def process(unit: Unit) -> None:
            holds_generation_slot = True
            try:
                gen_key, generation, parsed, fresh = await self._generate(
                    unit, dispatchers[unit.target.label], store, invocation, progress
                )
                if generation.ok and self._judges:
                    await judge_slots.acquire()
                    generation_slots.release()
                    holds_generation_slot = False
                    try:
                        await self._judge(unit.sample, gen_key, parsed, store, cache, semaphores, progress, fresh)
                    finally:
                        judge_slots.release()
                store.maybe_commit()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug, not a model failure: stop the run, keep what exists
                failures.append(exc)
            finally:
                if holds_generation_slot:
                    generation_slots.release()

        try:
            try:
                async for unit in self._units(built, store, progress):
                    await generation_slots.acquire()
                    if failures:
                        generation_slots.release()
                        break
                    self.counters.units += 1
                    task = asyncio.create_task(process(unit))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            except Exception:
                # A bad dataset row (or a broken attack) stops loading: the units already started
                # finish and are stored before the error is reported, so a fixed rerun resumes.
                if tasks:
                    await asyncio.gather(*tasks)
                raise
            progress.loading_done(self.counters.units)
            if tasks:
                await asyncio.gather(*tasks)
            if failures:
                raise failures[0]
        except (asyncio.CancelledError, KeyboardInterrupt):
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            for d in dispatchers.values():
                await d.aclose()

    async def _judge_stored(
        self,
        built: BuiltRun,
        store: RunStore,
        invocation: int,
        cache: JudgementCache | None,
        progress: StageProgress,
    ) -> None:
        """Stage judge alone: every stored generation the run planned, by the configured judges.

        The run's items move to this invocation (as a resumed run's do), so its report shows them
        with these judges. Nothing is generated: a failed generation stays failed and unjudged.
        """
        source = store.latest_planned_invocation()
        if source is None:
            raise StoreError(f"{self.run_dir}: nothing generated yet; run `safemlrm generate` first")
        store.claim_items(int(source["id"]), invocation)
        store.commit()
        parsers = {label: _parser_of(info, built) for label, info in store.target_infos().items()}
        semaphores = {j.label: asyncio.Semaphore(max(1, int(j.judge.max_concurrency))) for j in built.judges}
        slots = asyncio.Semaphore(self.config.concurrency)
        progress.loading_done(store.count_items(invocation))
        tasks: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        async def judge_one(gen_key: str, sample: Sample, generation: Generation, parsed_json: str | None) -> None:
            try:
                parsed = _parse_with(parsers[generation.target], generation)
                if parsed_json != parsed.model_dump_json():  # the parser changed since: parsing is pure, redo it
                    store.put_parsed(gen_key, parsed)
                progress.advance("parse")
                await self._judge(sample, gen_key, parsed, store, cache, semaphores, progress, False)
                store.maybe_commit()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug, not a judge failure: stop, keep what exists
                failures.append(exc)
            finally:
                slots.release()

        try:
            for gen_key, sample, generation, parsed_json in store.iter_generations(invocation):
                self.counters.units += 1
                progress.advance("load")
                if not generation.ok:  # a failed generation is not judged
                    progress.advance("parse")
                    progress.drop("judge", len(self.config.parts) * len(built.judges))
                    continue
                await slots.acquire()
                if failures:
                    slots.release()
                    break
                task = asyncio.create_task(judge_one(gen_key, sample, generation, parsed_json))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
            if failures:
                raise failures[0]
        except (asyncio.CancelledError, KeyboardInterrupt):
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _run_stages(self, *, generate: bool, judge: bool) -> RunResult:
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        store = RunStore(self.run_dir)
        cache = JudgementCache(self.config.judge_cache) if self.config.judge_cache and judge else None
        built = build_run(self.config, self.run_dir, self.base_dir, targets=generate, judges=judge)
        self._judges = built.judges
        progress = StageProgress(
            enabled=self.show_progress, judgements_per_unit=len(self.config.parts) * len(built.judges)
        )
        with progress:
            try:
                async with self._invocation(built, store) as inv:
                    if generate:
                        await self._stream_units(built, store, inv.id, cache, progress)
                    else:
                        await self._judge_stored(built, store, inv.id, cache, progress)
            finally:
                store.close()
                if cache is not None:
                    cache.close()
                await built.aclose()
            reports = self.write_reports(progress) if self.reports else {}
        return RunResult(self.run_dir, self.counters, reports, time.monotonic() - started)

    async def run(self) -> RunResult:
        """All stages in one streaming pass: attack, generate, parse, judge; then the reports."""
        return await self._run_stages(generate=True, judge=True)

    async def generate(self) -> RunResult:
        """Stages attack, generate and parse only (`safemlrm generate`); judge and report come later."""
        return await self._run_stages(generate=True, judge=False)

    async def judge(self) -> RunResult:
        """Stage judge only (`safemlrm judge`), over what the store holds; no target is built or called."""
        return await self._run_stages(generate=False, judge=True)

    def write_reports(self, progress: StageProgress | None = None) -> dict[str, Path]:
        """Stages analyse and report, from the store alone."""
        from safemlrm.core.store import load_run
        from safemlrm.report import report_steps, write_reports

        if progress is not None:
            progress.start_report(1 + len(report_steps(self.config.html_report)))
            progress.report_step("loading the run")
        data = load_run(self.run_dir)
        calls: dict[str, Any] = {
            "this_invocation": self.counters.as_dict(),
        }
        written = write_reports(
            data,
            self.run_dir,
            calls,
            html=self.config.html_report,
            on_step=progress.report_step if progress is not None else None,
        )
        if progress is not None:
            progress.report_done()
        return written


def run_config(
    config: RunConfig, run_dir: Path, *, base_dir: Path, progress: bool = True, shard: Shard | None = None
) -> RunResult:
    """Run (or resume) a config synchronously; the Python API behind `safemlrm run`."""
    return asyncio.run(Pipeline(config, run_dir, base_dir=base_dir, progress=progress, shard=shard).run())


def generate_config(
    config: RunConfig, run_dir: Path, *, base_dir: Path, progress: bool = True, shard: Shard | None = None
) -> RunResult:
    """Stages attack, generate and parse of a config (or resume them); the API behind `safemlrm generate`."""
    pipeline = Pipeline(
        config, run_dir, base_dir=base_dir, progress=progress, command="generate", reports=False, shard=shard
    )
    return asyncio.run(pipeline.generate())


# The fields of a config that `safemlrm judge --config` takes; the rest (datasets, attacks, targets)
# is the run's own, from its store: judging never changes what was generated.
JUDGE_FIELDS = ("judges", "parts", "judge_cache", "asr_threshold", "concurrency")


def stored_config(run_dir: Path, judging: RunConfig | None = None) -> RunConfig:
    """The config of the run's latest generation, with the judge fields of ``judging`` when given.

    Secrets were redacted when the config was stored: API keys come from environment variables.
    """
    store = RunStore(run_dir, create=False)
    try:
        source = store.latest_planned_invocation()
    finally:
        store.close()
    if source is None:
        raise StoreError(f"{run_dir}: nothing generated yet; run `safemlrm generate` first")
    data = dict(source["config"])
    if judging is not None:
        given = judging.model_dump(mode="json")
        data.update({name: given[name] for name in JUDGE_FIELDS})
    return RunConfig.model_validate(data)


def judge_run(config: RunConfig, run_dir: Path, *, base_dir: Path, progress: bool = True) -> RunResult:
    """Stage judge over a run's stored generations (or resume it); the API behind `safemlrm judge`."""
    return asyncio.run(
        Pipeline(config, run_dir, base_dir=base_dir, progress=progress, command="judge", reports=False).judge()
    )
