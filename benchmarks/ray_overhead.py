"""Overhead of the Ray executor against the local executor, on this machine (CPU actors, fake model).

The same config runs in a fresh run directory with `executor: local`, then `executor: ray` with one
actor (the overhead: every batch crosses process boundaries and the object store) and with two actors
(model-bound work spread over replicas). No judge, so the timings are of generation alone. Two
workloads over the same probes:

- `no_work`: a fake target that answers at once, one probe per call: pure per-call overhead.
- `model_like`: batches of 8 that take 50 ms each (a forward pass), one batch in flight per replica,
  as an in-process engine on one GPU does.

Two timings, each the best of `--repeats`: `dispatch_s`, the steady state (the probes sent through
the pipeline's dispatcher to a built target, at most 64 in flight, as a run does), and `pipeline_s`,
a whole run into a fresh store, which also counts building the targets (for Ray: starting the actors,
`actor_start_s`). Ray itself is started once beforehand, as on a cluster (`ray_start_s`).

    .venv/bin/python benchmarks/ray_overhead.py     # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import write_result

from safemlrm.core.config import RunConfig
from safemlrm.core.context import PluginContext
from safemlrm.core.types import Message, Probe, TextPart
from safemlrm.executors import create_target
from safemlrm.pipeline.batching import TargetDispatcher
from safemlrm.pipeline.runner import Pipeline

WORKLOADS: dict[str, dict[str, Any]] = {
    "no_work": {"default": "reply {sample_id}", "max_batch_size": 1, "max_concurrency": 64},
    "model_like": {
        "default": "reply {sample_id}",
        "max_batch_size": 8,
        "max_concurrency": 8,
        "delay_s": 0.05,
    },
}


def config(data: Path, target_params: dict[str, Any], executor: str, actors: int) -> RunConfig:
    return RunConfig.model_validate(
        {
            "name": "ray-overhead",
            "datasets": [{"kind": "jsonl", "params": {"path": str(data)}}],
            "targets": [{"name": "t", "kind": "fake", "parser": "plain", "params": target_params}],
            "judges": [],
            "judge_cache": None,
            "executor": executor,
            "ray": {"actors": actors, "num_cpus": 0.5},
        }
    )


def timed_run(cfg: RunConfig, folder: Path) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    result = asyncio.run(Pipeline(cfg, folder, base_dir=folder.parent, progress=False, reports=False).run())
    return time.perf_counter() - started, result.counters.as_dict()


async def dispatch(cfg: RunConfig, probes: list[Probe]) -> tuple[float, float]:
    """(seconds to build the target, seconds to generate every probe through the dispatcher)."""
    started = time.perf_counter()
    target = create_target(cfg, "fake", cfg.targets[0].params, PluginContext(label="t"))
    built = time.perf_counter()
    dispatcher = TargetDispatcher(target, "t")
    slots = asyncio.Semaphore(64)

    async def one(probe: Probe) -> None:
        async with slots:
            await dispatcher.submit(probe)

    await asyncio.gather(*(one(p) for p in probes))
    done = time.perf_counter()
    await dispatcher.aclose()
    await target.aclose()
    return built - started, done - built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray_start_s = time.perf_counter() - started
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "data.jsonl"
        rows = [
            {"id": f"s{i}", "instruction": f"do {i}", "prompt": f"prompt {i}"} for i in range(args.probes)
        ]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        probes = [
            Probe(
                sample_key=f"k{i}",
                sample_id=f"s{i}",
                attack="vanilla",
                messages=(Message(role="user", content=(TextPart(text=f"prompt {i}"),)),),
            )
            for i in range(args.probes)
        ]
        runs = 0
        for workload, params in WORKLOADS.items():
            pipeline_s: dict[str, float] = {}
            dispatch_s: dict[str, float] = {}
            start_s: dict[str, float] = {}
            for label, executor, actors in (
                ("local", "local", 1),
                ("ray_1_actor", "ray", 1),
                ("ray_2_actors", "ray", 2),
            ):
                cfg = config(data, params, executor, actors)
                best_run = best_dispatch = best_start = float("inf")
                for _ in range(args.repeats):
                    runs += 1
                    wall, counters = timed_run(cfg, folder / f"run{runs}")
                    assert counters["target_calls"] == args.probes, counters
                    build, steady = asyncio.run(dispatch(cfg, probes))
                    best_run, best_dispatch = min(best_run, wall), min(best_dispatch, steady)
                    best_start = min(best_start, build)
                pipeline_s[label], dispatch_s[label] = round(best_run, 3), round(best_dispatch, 3)
                start_s[label] = round(best_start, 3)
                print(f"{workload:>10} {label:>13}: dispatch {best_dispatch:.2f} s, run {best_run:.2f} s")
            calls = args.probes // int(params["max_batch_size"])
            local, one, two = dispatch_s["local"], dispatch_s["ray_1_actor"], dispatch_s["ray_2_actors"]
            results[workload] = {
                "target_params": params,
                "generate_calls": calls,
                "dispatch_s": dispatch_s,
                "pipeline_s": pipeline_s,
                "actor_start_s": {k: v for k, v in start_s.items() if k != "local"},
                "ratio_ray_1_actor_vs_local": round(one / local, 2),
                "ratio_ray_2_actors_vs_local": round(two / local, 2),
                "pipeline_ratio_ray_1_actor_vs_local": round(
                    pipeline_s["ray_1_actor"] / pipeline_s["local"], 2
                ),
                "overhead_per_call_ms": round(1000 * (one - local) / calls, 2),
            }
    ray.shutdown()
    write_result(
        "ray_overhead",
        {
            "command": "python benchmarks/ray_overhead.py",
            "probes": args.probes,
            "repeats": args.repeats,
            "ray_version": ray.__version__,
            "ray_start_s": round(ray_start_s, 2),
            "note": "ratios are of dispatch_s (steady state); pipeline_s also counts starting the actors",
            "workloads": results,
        },
    )


if __name__ == "__main__":
    main()
