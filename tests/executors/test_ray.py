"""The Ray executor against the local one: the same config gives the same store, on two CPU actors."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tests.helpers import fake_config, harmful_rows, write_jsonl

from safemlrm.core.config import ConfigError, RunConfig
from safemlrm.core.context import PluginContext
from safemlrm.core.store import STORE_FILE, RunStore, load_run
from safemlrm.core.types import ImagePart, ImageRef, Message, Probe, TextPart
from safemlrm.executors import create_target
from safemlrm.executors.config import RaySpec
from safemlrm.pipeline.runner import Pipeline, RunResult

# Small reservations so that two targets with two actors each, and a judge, fit on two cores.
RAY = {"actors": 2, "num_cpus": 0.25}
WITH_IMAGES = [{"kind": "vanilla", "params": {"keep_sample_images": True}}]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="the Ray executor tests need ray: pip install 'safemlrm[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def run(config: RunConfig, run_dir: Path) -> RunResult:
    pipeline = Pipeline(config, run_dir, base_dir=run_dir.parent, progress=False, reports=False)
    return asyncio.run(pipeline.run())


def store_contents(run_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that a run's results consist of (not timestamps or invocation history)."""
    queries = {
        "samples": "SELECT key, data FROM samples",
        "probes": "SELECT key, data FROM probes",
        "generations": "SELECT key, probe_key, target, ok, json_extract(data, '$.text'), "
        "json_extract(data, '$.reasoning'), json_extract(data, '$.error') FROM generations",
        "parsed": "SELECT generation_key, data FROM parsed",
        "judgements": "SELECT key, judge, ok, data FROM judgements",
        "scores": "SELECT generation_key, part, judge, judgement_key FROM scores",
        "items": "SELECT probe_key, target, generation_key, seq FROM items",
        "targets": "SELECT label, info FROM targets",
    }
    with sqlite3.connect(run_dir / STORE_FILE) as conn:
        return {table: sorted(conn.execute(query).fetchall()) for table, query in queries.items()}


@pytest.fixture
def image_data(tmp_path: Path) -> Path:
    rows = harmful_rows(12)
    for i, row in enumerate(rows[:6]):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / f"img{i}.png")
        row["image"] = f"img{i}.png"
    return write_jsonl(tmp_path / "data.jsonl", rows)


@pytest.mark.slow
def test_ray_executor_gives_the_local_store(ray_cluster: Any, image_data: Path, tmp_path: Path) -> None:
    local = run(fake_config(image_data, attacks=WITH_IMAGES), tmp_path / "local")
    config = fake_config(
        image_data,
        attacks=WITH_IMAGES,
        executor="ray",
        ray={**RAY, "ship_images": "always", "judges": ["keyword"]},
    )
    on_ray = run(config, tmp_path / "ray")

    assert on_ray.counters.target_calls == local.counters.target_calls == 24
    contents = store_contents(tmp_path / "ray")
    assert sum('"image"' in data for _, data in contents["probes"]) == 6  # the probes carry images
    assert contents == store_contents(tmp_path / "local")
    # The judge hosted on Ray describes itself as the local one does (its validation record).
    ray_judges, local_judges = RunStore(tmp_path / "ray").judge_infos(), RunStore(tmp_path / "local").judge_infos()
    assert ray_judges["keyword"].validation == local_judges["keyword"].validation
    assert ray_judges["keyword"].validation is not None and ray_judges["keyword"].validation.status == "measured"
    # Resume holds unchanged: the Ray run again makes no target or judge call.
    again = run(config, tmp_path / "ray").counters
    assert again.target_calls == 0 and again.judge_calls == 0 and again.target_cached == 24


@pytest.mark.slow
def test_batches_are_spread_over_the_actors(ray_cluster: Any) -> None:
    from safemlrm.executors.ray import RayTarget

    probes = [
        Probe(
            sample_key=f"k{i}",
            sample_id=f"s{i}",
            attack="vanilla",
            messages=(Message(role="user", content=(TextPart(text=f"p{i}"),)),),
        )
        for i in range(8)
    ]

    async def go() -> tuple[list[int], list[str]]:
        target = RayTarget(
            "fake", {"delay_s": 0.2, "default": "reply {sample_id}"}, PluginContext(label="t"), RaySpec(**RAY)
        )
        try:
            results = await asyncio.gather(*(target.generate([p]) for p in probes))
            return target.pool.calls, [gens[0].text for gens in results]
        finally:
            await target.aclose()

    calls, texts = asyncio.run(go())
    assert calls == [4, 4]
    assert texts == [f"reply s{i}" for i in range(8)]


@pytest.mark.slow
def test_an_actor_gets_image_bytes_and_reads_its_local_copy(ray_cluster: Any, tmp_path: Path) -> None:
    from safemlrm.executors.ray import PluginHost

    image = tmp_path / "cat.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(image)
    data = image.read_bytes()
    import hashlib

    ref = ImageRef(path=str(image), sha256=hashlib.sha256(data).hexdigest())
    probe = Probe(
        sample_key="k",
        sample_id="s",
        attack="vanilla",
        messages=(Message(role="user", content=(TextPart(text="look"), ImagePart(image=ref))),),
    )
    host = PluginHost("targets", "fake", {}, PluginContext(label="t"))
    host.image_dir = tmp_path / "actor-images"

    async def go() -> list[str]:
        await host.start()
        host.plugin.reply_fn = lambda p: p.images[0].path  # the path the model would open
        first = await host.generate([probe], {ref.sha256: data})
        second = await host.generate([probe], {})  # already shipped: not sent again
        return [first[0].text, second[0].text, first[0].probe_key]

    first_path, second_path, key = asyncio.run(go())
    assert first_path == second_path != str(image)
    assert Path(first_path).parent == tmp_path / "actor-images"
    assert Path(first_path).read_bytes() == data
    assert key == probe.key  # keys hash image bytes, not paths


@pytest.mark.slow
def test_a_target_that_fails_in_its_actor_says_why(ray_cluster: Any, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", harmful_rows(2))
    config = fake_config(
        data,
        targets=[{"name": "r", "kind": "replay", "params": {"path": str(tmp_path / "missing.jsonl")}}],
        executor="ray",
        ray=RAY,
    )
    with pytest.raises(RuntimeError, match=r"a Ray actor could not build 'replay'.*replay file not found"):
        run(config, tmp_path / "run")


def test_bad_params_fail_before_ray_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # would fail if anything imported ray
    config = fake_config(tmp_path / "d.jsonl", executor="ray")
    with pytest.raises(Exception, match="no_such_param"):
        create_target(config, "fake", {"no_such_param": 1}, PluginContext(label="base"))


def test_ray_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    config = fake_config(tmp_path / "d.jsonl", executor="ray")
    with pytest.raises(ImportError, match=r"safemlrm\[ray\]"):
        create_target(config, "fake", {}, PluginContext(label="base"))


def test_unknown_labels_in_the_ray_settings_are_config_errors(tmp_path: Path) -> None:
    config = fake_config(tmp_path / "d.jsonl", executor="ray", ray={"targets": ["nope"]})
    with pytest.raises(ConfigError, match=r"ray\.targets: no target or judge labelled 'nope'"):
        create_target(config, "fake", {}, PluginContext(label="base"))


def test_local_executor_never_touches_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    config = fake_config(tmp_path / "d.jsonl", ray={"targets": ["base"]})  # executor: local (default)
    target = create_target(config, "fake", {}, PluginContext(label="base"))
    assert type(target).__name__ == "FakeTarget"


def test_per_label_actor_settings() -> None:
    spec = RaySpec(actors=2, num_gpus=1, by_label={"judge": {"actors": 1, "num_gpus": 0.5}})
    assert (spec.actors_for("t").actors, spec.actors_for("t").num_gpus) == (2, 1)
    assert (spec.actors_for("judge").actors, spec.actors_for("judge").num_gpus) == (1, 0.5)


@pytest.mark.slow
def test_a_tiny_vlm_on_two_ray_actors_gives_the_local_store(
    ray_cluster: Any, image_data: Path, tmp_path: Path
) -> None:
    """The hf target (a random-weight Qwen2.5-VL) in two CPU actors that read shipped image copies."""
    pytest.importorskip("transformers", reason="needs the hf extra: pip install 'safemlrm[hf]'")
    from safemlrm.testing.tiny_models import build_tiny_qwen2_5_vl

    model = build_tiny_qwen2_5_vl(tmp_path / "tiny-vlm")
    params = {"model": str(model), "max_new_tokens": 6, "device": "cpu", "batch_size": 4}
    targets = [{"name": "tiny", "kind": "hf", "parser": "plain", "params": params}]
    local = run(fake_config(image_data, attacks=WITH_IMAGES, targets=targets), tmp_path / "local")
    ray_settings = {**RAY, "ship_images": "always"}
    config = fake_config(image_data, attacks=WITH_IMAGES, targets=targets, executor="ray", ray=ray_settings)
    on_ray = run(config, tmp_path / "ray")

    assert local.counters.target_errors == on_ray.counters.target_errors == 0
    contents = store_contents(tmp_path / "ray")
    assert contents == store_contents(tmp_path / "local")
    generated = [r.generation for r in load_run(tmp_path / "ray").records]
    assert len(generated) == 12 and all(g.ok and g.usage.get("completion_tokens", 0) > 0 for g in generated)
