"""Faults through the full pipeline: the model and the judge sit behind a mock server that answers 429
with Retry-After, 500, hangs past the timeout, malformed JSON and dropped connections at a 30% rate.

The run completes; every probe ends with a generation or a stored error, every part of every good
generation with a judgement or a stored judge error; nothing is lost or duplicated; a rerun without
faults calls the model only for the failed generations and the judge only for what is missing.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import harmful_rows, write_jsonl

from safemlrm.core.config import RunConfig
from safemlrm.pipeline.runner import Counters, Pipeline
from safemlrm.testing.mock_server import Fault, MockChatServer, bench_reply, last_user_text

N_PROBES = 40
ALWAYS_FAILING = {"Please do thing 3", "Please do thing 7"}  # 500 on every attempt: must end as stored errors
FAULTS = [Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.HANG, Fault.MALFORMED, Fault.DROP]


class Faults:
    """30% of requests fail (6% of each kind), plus two prompts that always fail, until switched off."""

    def __init__(self, seed: int = 7) -> None:
        self.on = True
        self.rng = random.Random(seed)

    def __call__(self, body: dict[str, Any]) -> Fault | None:
        if not self.on:
            return None
        if last_user_text(body) in ALWAYS_FAILING:
            return Fault.SERVER_ERROR
        draw = self.rng.random()
        return FAULTS[int(draw / 0.06)] if draw < 0.30 else None


def config(data: Path, base_url: str) -> RunConfig:
    target_params = {"base_url": base_url, "timeout_s": 0.5, "max_retries": 1, "backoff_base_s": 0.01}
    return RunConfig.model_validate(
        {
            "name": "faults",
            "datasets": [{"kind": "jsonl", "params": {"path": str(data)}}],
            "targets": [
                {
                    "name": "model",
                    "kind": "openai",
                    "parser": "think_tags",
                    "reasoning": True,
                    "params": {**target_params, "model": "mock-model", "max_concurrency": 8},
                }
            ],
            "judges": [
                {
                    "kind": "rubric",
                    "params": {
                        "model": {
                            "name": "judge",
                            "kind": "openai",
                            "params": {**target_params, "model": "mock-judge", "max_concurrency": 16},
                        },
                        "max_attempts": 1,
                    },
                }
            ],
            "judge_cache": None,
            "concurrency": 16,
            "html_report": False,
        }
    )


def requests_by_model(server: MockChatServer) -> Counter[str]:
    return Counter(str(body.get("model")) for body in server.requests)


def store_state(run_dir: Path) -> dict[str, Any]:
    conn = sqlite3.connect(run_dir / "run.sqlite")
    try:
        state = {
            "items": conn.execute("SELECT COUNT(*), COUNT(DISTINCT probe_key) FROM items").fetchone(),
            "generations": dict(conn.execute("SELECT ok, COUNT(*) FROM generations GROUP BY ok").fetchall()),
            "failed_generation_keys": {k for (k,) in conn.execute("SELECT key FROM generations WHERE ok=0")},
            "error_texts": [t for (t,) in conn.execute("SELECT json_extract(data, '$.error') FROM generations")],
            # (generation, part) pairs of good generations and the judgement ok flag linked to each
            "scores": dict(
                ((g, p), ok)
                for g, p, ok in conn.execute(
                    "SELECT s.generation_key, s.part, j.ok FROM scores s JOIN judgements j ON j.key = s.judgement_key"
                )
            ),
            "ok_generation_keys": {k for (k,) in conn.execute("SELECT key FROM generations WHERE ok=1")},
            "duplicate_scores": conn.execute(
                "SELECT COUNT(*) - COUNT(DISTINCT generation_key || part || judge) FROM scores"
            ).fetchone()[0],
        }
    finally:
        conn.close()
    return state


async def run(cfg: RunConfig, run_dir: Path) -> Counters:
    return (await Pipeline(cfg, run_dir, base_dir=run_dir.parent, progress=False, reports=False).run()).counters


@pytest.mark.slow
async def test_faults_lose_nothing_and_a_rerun_retries_only_the_failures(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", harmful_rows(N_PROBES))
    faults = Faults()
    run_dir = tmp_path / "run"
    async with MockChatServer(
        reply=bench_reply, fault_fn=faults, retry_after="0.05", hang_s=5.0, record_requests=True
    ) as server:
        cfg = config(data, server.base_url)
        first = await run(cfg, run_dir)
        outcomes = server.outcomes.copy()
        assert all(outcomes[f.value] > 0 for f in FAULTS), outcomes  # every kind of fault happened

        state = store_state(run_dir)
        assert state["items"] == (N_PROBES, N_PROBES)
        assert sum(state["generations"].values()) == N_PROBES  # a row for every probe: a result or an error
        failed = state["failed_generation_keys"]
        assert first.target_calls == N_PROBES and first.target_errors == len(failed) >= 2
        assert all(
            e is None or ("HTTP" in e or "timed out" in e or "connection" in e or "malformed" in e)
            for e in state["error_texts"]
        )
        expected_pairs = {(g, p) for g in state["ok_generation_keys"] for p in ("reasoning", "answer", "whole")}
        assert set(state["scores"]) == expected_pairs  # each part of each good generation: judged or a stored error
        assert state["duplicate_scores"] == 0
        judge_errors = sum(1 for ok in state["scores"].values() if not ok)

        # a rerun without faults: the failed generations only, then the missing judgements only
        faults.on = False
        server.requests.clear()
        second = await run(cfg, run_dir)
        calls = requests_by_model(server)
        assert second.target_calls == len(failed) == calls["mock-model"]
        assert second.target_cached == N_PROBES - len(failed)
        assert second.judge_calls == judge_errors + 3 * len(failed) == calls["mock-judge"]
        final = store_state(run_dir)
        assert final["generations"] == {1: N_PROBES}
        assert len(final["scores"]) == 3 * N_PROBES and all(final["scores"].values())
        assert final["duplicate_scores"] == 0

        server.requests.clear()
        third = await run(cfg, run_dir)
        assert third.target_calls == third.judge_calls == 0 and not server.requests
