"""The model-client layer: one client per run target, shared by a judge that names it; its cache,
usage totals and lifetime."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path

from tests.targets._api import png, probe

from safemlrm.core import plugins
from safemlrm.core.config import RunConfig, TargetSpec
from safemlrm.core.context import PluginContext
from safemlrm.core.target_build import build_target
from safemlrm.pipeline.build import build_run
from safemlrm.targets._client import ImageCache, RemoteTarget
from safemlrm.testing import plugin_context
from safemlrm.testing.mock_server import MockChatServer

JUDGE_REPLY = "#thereason: fine\n#thescore: 1"


def spec(base_url: str, max_concurrency: int = 2) -> TargetSpec:
    return TargetSpec(
        name="eureka",
        kind="openai",
        params={"model": "m", "base_url": base_url, "max_concurrency": max_concurrency},
    )


async def test_a_judge_naming_a_run_target_shares_its_client_and_its_limit() -> None:
    async with MockChatServer(reply=JUDGE_REPLY, latency_s=0.03) as server:
        ctx = plugin_context(target_specs={"eureka": spec(server.base_url)})
        target = build_target(spec(server.base_url), ctx)
        judge = plugins.judges.create("rubric", {"model": "eureka"}, ctx.with_label("rubric"))
        judge_target = getattr(judge, "target")  # noqa: B009
        assert isinstance(target, RemoteTarget) and isinstance(judge_target, RemoteTarget)
        assert judge_target.client is target.client
        # Both at full tilt: together they never pass the one limit of 2 requests in flight.
        await asyncio.gather(
            target.generate([probe(f"t{i}", f"t{i}") for i in range(12)]),
            judge_target.generate([probe(f"j{i}", f"j{i}") for i in range(12)]),
        )
        assert server.max_in_flight == 2 and server.request_count == 24
        # The session stays open while the judge still holds the client; the last one closes it.
        await target.aclose()
        assert target.client.endpoints and target.client.holders == 1
        await judge.aclose()
        assert target.client.holders == 0 and target.client.endpoints == []


async def test_other_labels_and_other_connections_get_their_own_client() -> None:
    ctx = plugin_context(target_specs={"eureka": spec("http://a:1/v1")})
    run_target = build_target(spec("http://a:1/v1"), ctx)
    other_label = build_target(spec("http://a:1/v1").model_copy(update={"name": "other"}), ctx)
    other_limit = build_target(spec("http://a:1/v1", max_concurrency=3), PluginContext())
    assert isinstance(run_target, RemoteTarget) and isinstance(other_label, RemoteTarget)
    assert isinstance(other_limit, RemoteTarget)
    assert other_label.client is not run_target.client and other_limit.client is not run_target.client
    for t in (run_target, other_label, other_limit):
        await t.aclose()


def test_a_built_run_gives_judge_and_target_one_client(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"id": "a", "prompt": "p", "instruction": "i"}) + "\n", encoding="utf-8")
    config = RunConfig.model_validate(
        {
            "name": "shared",
            "datasets": [{"kind": "jsonl", "params": {"path": str(data)}}],
            "targets": [{"name": "eureka", "kind": "openai", "params": {"model": "m"}}],
            "judges": [{"kind": "rubric", "params": {"model": "eureka"}}],
            "judge_cache": None,
            "html_report": False,
        }
    )
    built = build_run(config, tmp_path / "run", tmp_path)
    target = built.targets[0].target
    judge_target = getattr(built.judges[0].judge, "target")  # noqa: B009
    assert isinstance(target, RemoteTarget) and judge_target.client is target.client
    asyncio.run(built.aclose())


async def test_usage_is_summed_over_replies() -> None:
    async with MockChatServer(reply="one two three") as server:
        target = build_target(spec(server.base_url), PluginContext())
        assert isinstance(target, RemoteTarget)
        gens = await target.generate([probe("a b", "a"), probe("c", "c")])
        await target.aclose()
    assert [g.usage["completion_tokens"] for g in gens] == [3, 3]
    assert target.client.usage["completion_tokens"] == 6 and target.client.usage["prompt_tokens"] == 3


async def test_image_cache_is_bounded_on_both_insertion_paths(tmp_path: Path) -> None:
    cache = ImageCache(size=3)
    refs = [png(tmp_path / f"{i}.png", (4, 4), (i, 0, 0)) for i in range(6)]
    for ref in refs[:5]:
        cache.get(ref, None)  # the synchronous path
    assert len(cache.entries) == 3
    await cache.prefetch(refs, None)  # the off-loop path
    assert len(cache.entries) == 3 and [k[0] for k in cache.entries] == [r.path for r in refs[3:]]
    hit = cache.get(refs[3], None)
    assert cache.get(refs[3], None) is hit and list(cache.entries)[-1][0] == refs[3].path


def test_a_context_sent_to_another_process_takes_no_clients_along() -> None:
    ctx = PluginContext(label="eureka")
    target = build_target(spec("http://a:1/v1"), ctx)
    assert isinstance(target, RemoteTarget) and len(ctx.clients) == 1
    copy = pickle.loads(pickle.dumps(ctx))
    assert len(copy.clients) == 0 and copy.label == "eureka"
